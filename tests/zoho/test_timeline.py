"""A record's timeline is read to its last page ("Timeline of a Record", Zoho CRM API v5,
zoho.com/crm/developer/docs/api/v5/timeline-of-a-record.html): ``per_page`` on the first
request only, later pages by the ``page_token`` the answer names as
``info.next_page_token`` while ``more_records`` (``info`` as Zoho's OpenAPI description,
github.com/zoho/crm-oas ``timelines.json``, gives it). A customer edited more than 200
times keeps the proposal of its override on a later page; reading the first alone lost it
and with it the override's maker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.errors import TransientError
from connectors.sandbox.override_trail import approve_override, propose_override
from connectors.sandbox.server import Response
from connectors.sandbox.zoho_timeline import record_timeline
from connectors.zoho.override_audit import read_override_audit

MAKER, CHECKER, CLERK = "3477061000000901", "3477061000000902", "3477061000000903"
START = datetime(2026, 11, 2, 9, tzinfo=UTC)
EDITS = 250  # later edits of another field: the proposal falls to the timeline's second page


def _edited(zoho) -> str:
    """A customer whose override was proposed, then edited ``EDITS`` times, then approved."""
    cid = zoho.customer_ids()[0]
    propose_override(zoho, cid, user=MAKER, at=START, value_tier="private")
    for n in range(EDITS):
        at = START + timedelta(minutes=n + 1)
        record_timeline(zoho, cid, {"Phone": f"555-{n:04d}"}, CLERK, at)
    approve_override(zoho, cid, user=CHECKER, at=START + timedelta(days=1))
    return cid


def test_sandbox_pages_the_timeline_by_page_token(zoho, api):
    cid = _edited(zoho)
    path = f"/crm/v5/Contacts/{cid}/__timeline"
    first = api("GET", path, params={"per_page": 200}).json()
    assert len(first["__timeline"]) == 200 and first["info"]["more_records"] is True
    token = first["info"]["next_page_token"]
    second = api("GET", path, params={"page_token": token}).json()
    assert len(second["__timeline"]) == EDITS + 2 - 200
    assert second["info"]["more_records"] is False and "next_page_token" not in second["info"]
    both = api("GET", path, params={"per_page": 200, "page_token": token})
    assert both.status_code == 400 and both.json()["code"] == "INVALID_DATA"


def test_connector_reads_every_page_and_finds_the_maker(zoho, zconnect):
    cid = _edited(zoho)
    connector = zconnect(zoho)
    try:
        entries = connector.client.timeline("Contacts", cid)
        assert len(entries) == EDITS + 2
        assert connector.client.usage()["read"] == 2  # one call per page
        record = connector.fetch([cid])[0]
        audit = read_override_audit(connector, [record])[cid]
    finally:
        connector.close()
    assert (audit.maker_id, audit.checker_id) == (MAKER, CHECKER)
    assert audit.proposed_at == START


def test_more_records_without_a_token_is_an_error_not_a_short_timeline(zoho, zconnect):
    """A page saying there is more but naming no ``next_page_token`` cannot be followed:
    reading it as the whole timeline would hide the rest, so the read fails instead."""
    cid = zoho.customer_ids()[0]
    answer = {"__timeline": [], "info": {"per_page": 200, "count": 0, "more_records": True}}
    zoho.server.inject("timeline", response=Response.json(answer), times=None)
    connector = zconnect(zoho)
    try:
        with pytest.raises(TransientError, match="next_page_token"):
            connector.client.timeline("Contacts", cid)
    finally:
        connector.close()
