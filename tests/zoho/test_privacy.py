"""No personal data or secret reaches crmtier's logs through the Zoho path, and reads ask
Zoho only for the fields the rules use (data minimisation)."""

from __future__ import annotations

import logging

from connectors.contract import FieldUpdate, WritePlan


def test_logs_hold_no_canary_pii_or_secret(zoho, zconnect, caplog):
    caplog.set_level(logging.DEBUG)
    connector = zconnect(zoho)
    zoho.server_error("read", times=1)  # a retry logs too
    records = [r for p in connector.read_changed(None) for r in p.records]
    connector.apply(
        WritePlan(field_updates=(FieldUpdate(records[0].profile.id, {"value_tier": "mass"}),))
    )
    text = caplog.text
    for secret in (zoho.app.client_secret, zoho.app.refresh_token, zoho.app.client_id):
        assert secret not in text
    assert "Canary" not in text and "canary" not in text
    sdk = logging.getLogger("SDKLogger")
    assert not sdk.propagate
    assert not [h for h in sdk.handlers if isinstance(h, logging.FileHandler)]


def test_reads_never_request_personal_fields(zoho, zconnect):
    seen: list[str] = []
    zoho.server.inject(
        "read", match=lambda r: seen.append(r.arg("fields") or "*") and False, times=None
    )
    connector = zconnect(zoho)
    for page in connector.read_changed(None):
        assert all(r.profile.model_dump().get("name") is None for r in page.records)
    requested = {f for fields in seen for f in fields.split(",")}
    assert requested and not requested & {
        "Last_Name",
        "First_Name",
        "Email",
        "Phone",
        "National_ID",
        "*",
    }
