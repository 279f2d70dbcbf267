"""No personal data or secret reaches crmtier's logs through the Zoho path, and reads ask
Zoho only for the fields the rules use, by name, however many (data minimisation)."""

from __future__ import annotations

import logging

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.sandbox.server import Request
from connectors.zoho.connector import ZohoConnector
from connectors.zoho.mapping import LATER_VERSIONS_FIELDS_CAP, read_fields


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


PERSONAL = {"Last_Name", "First_Name", "Email", "Phone", "National_ID", "Mailing_Street"}


def _small(connector: ZohoConnector) -> ZohoConnector:
    """The default mapping without its override and AML inputs: under Zoho's 50 names."""
    dropped = ("override", "aml")
    kept = {k: v for k, v in connector.mapping.fields.items() if not k.startswith(dropped)}
    mapping = connector.mapping.model_copy(update={"fields": kept})
    return ZohoConnector(connector.config, mapping, connector.writeback, client=connector.client)


@pytest.mark.parametrize("small", [True, False], ids=["up_to_50_fields", "over_50_fields"])
def test_reads_never_request_or_pass_on_personal_fields(zoho, zconnect, small):
    """The read lists exactly the mapped fields, under 50 names as over them, and every
    row holds only those."""
    seen: list[str] = []

    def note(request: Request) -> bool:  # records what each read asks for, injects nothing
        seen.append(request.arg("fields") or "*")
        return False

    zoho.server.inject("read", match=note, times=None)
    connector = _small(zconnect(zoho)) if small else zconnect(zoho)
    wanted = read_fields(connector.mapping, connector.writeback)
    assert (len(wanted) <= LATER_VERSIONS_FIELDS_CAP) is small
    rows = connector.client.read_page(
        connector.module, wanted, modified_after=None, page=1, per_page=200
    ).rows
    assert rows and all(set(row) <= {*wanted, "id"} for row in rows)
    for page in connector.read_changed(None):
        assert all(r.profile.model_dump().get("name") is None for r in page.records)
    requested = {f for fields in seen for f in fields.split(",")}
    assert requested == {*wanted}
    assert not requested & PERSONAL
