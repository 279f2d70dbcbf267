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
from connectors.override_audit import APPROVAL_PATH, AUDIT_UNREAD
from connectors.sandbox.override_trail import approve_override, propose_override
from connectors.sandbox.server import Response
from connectors.sandbox.zoho_timeline import record_timeline
from connectors.zoho.override_audit import read_override_audit, read_timeline

MAKER, CHECKER, CLERK = "3477061000000901", "3477061000000902", "3477061000000903"
START = datetime(2026, 11, 2, 9, tzinfo=UTC)
EDITS = 250  # later edits of another field: the proposal falls to the timeline's second page


def _edited(zoho, cid: str | None = None) -> str:
    """A customer whose override was proposed, then edited ``EDITS`` times, then approved."""
    cid = cid or zoho.customer_ids()[0]
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
        entries = read_timeline(connector, cid)
        assert isinstance(entries, list) and len(entries) == EDITS + 2
        assert connector.client.usage()["read"] == 2  # one call per page
        record = connector.fetch([cid])[0]
        audit = read_override_audit(connector, [record])[cid]
    finally:
        connector.close()
    assert (audit.maker_id, audit.checker_id) == (MAKER, CHECKER)
    assert audit.proposed_at == START and audit.issues == ()


def _no_token(zoho, cid):
    """A page says there is more but names no ``next_page_token``."""
    answer = {"__timeline": [], "info": {"per_page": 200, "count": 0, "more_records": True}}
    zoho.server.inject("timeline", response=Response.json(answer), times=None)


def _same_token(zoho, cid):
    """Every page names the token just followed: following it would loop for ever."""
    info = {"per_page": 200, "count": 0, "more_records": True, "next_page_token": "t1"}
    answer = {"__timeline": [], "info": info}
    zoho.server.inject("timeline", response=Response.json(answer), times=None)


def _too_long(zoho, cid):
    """More pages than ``crm.audit_timeline_pages`` (1 here): 252 entries, two pages."""
    _edited(zoho, cid)


UNREAD = [
    pytest.param(_no_token, "names no new next_page_token", 1, id="more-without-token"),
    pytest.param(_same_token, "names no new next_page_token", 2, id="token-repeated"),
    pytest.param(_too_long, "crm.audit_timeline_pages = 1 pages (200 entries)", 1, id="cap"),
]


@pytest.mark.parametrize(("make", "problem", "calls"), UNREAD)
def test_a_timeline_not_read_whole_leaves_no_maker_and_says_why(
    zoho, zconnect, make, problem, calls
):
    """A timeline that cannot be read whole is never read in part (its order is not
    documented, so an unread page may hold the last proposal): the override gets no maker
    or checker, so it is refused, and carries ``DQ_AUDIT_UNREAD`` saying why; one
    record's timeline costs ``crm.audit_timeline_pages`` calls at most. Before, the first
    two failed the whole read (every run again) and the third had no bound."""
    cid = zoho.customer_ids()[0]
    make(zoho, cid)
    connector = zconnect(zoho, audit_timeline_pages=1 if make is _too_long else 25)
    try:
        record = connector.fetch([cid])[0]
        before = connector.client.usage()["read"]
        audit = read_override_audit(connector, [record])[cid]
        spent = connector.client.usage()["read"] - before
    finally:
        connector.close()
    assert (audit.maker_id, audit.checker_id) == (None, None)
    [issue] = audit.issues
    assert (issue.code, issue.field) == (AUDIT_UNREAD, APPROVAL_PATH)
    assert problem in issue.problem and cid not in issue.problem
    assert spent == calls


def test_a_later_page_that_keeps_failing_fails_the_read_not_a_short_timeline(zoho, zconnect):
    """A call that fails past its retries (here every page after the first answers 500) fails the
    read as any read does: the page's decisions wait for the next run; the entries read so
    far never stand for the timeline."""
    cid = _edited(zoho)
    zoho.server.inject(
        "timeline",
        response=Response.json({"code": "INTERNAL_ERROR", "message": "boom"}, 500),
        times=None,
        match=lambda request: request.arg("page_token") is not None,
    )
    connector = zconnect(zoho)
    try:
        record = connector.fetch([cid])[0]
        with pytest.raises(TransientError):
            read_override_audit(connector, [record])
    finally:
        connector.close()
