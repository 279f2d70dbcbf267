"""Tier overrides end to end on each CRM's sandbox (issue 20 §3, docs/overrides.md).

An RM proposes an override in the CRM, a second user approves it, and the CRM keeps its
own audit of both (Salesforce field history, the Zoho timeline, the FXiaoke approval
flow). ``crmtier sync`` (the engine as ``open_engine`` builds it, over real HTTPS) reads
the override with the customer, the audit for approved overrides only, and writes the
lifted tier with ``MANUAL_OVERRIDE``; a self-approved override is refused with a task to
its maker; an expired one falls back to the computed tier after the usual grace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.contract import CrmRecord
from connectors.sandbox.override_trail import approve_override, propose_override
from crmtier.commands.serve import open_parts
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.engine import RunOptions, RunReport
from tests.sync.conftest import Harness, available_crms, start_sandbox
from tiering_core.policy import load_policy

AS_OF = date(2026, 6, 30)
CUSTOMERS = 40
GRACE = load_policy().value.grace_days


@pytest.fixture(params=["salesforce", "zoho", "fxiaoke"])
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    crm = request.param
    if crm not in available_crms():
        pytest.skip(f"{crm} sandbox/connector not in tree")
    sandbox = start_sandbox(crm, tmp_path / crm, CUSTOMERS)
    h = Harness(sandbox, tmp_path / crm)
    for key, value in h.env.items():
        if key.startswith("CRMTIER_"):
            monkeypatch.setenv(key, value)
    try:
        yield h
    finally:
        sandbox.stop()


def _run(h: Harness, as_of: date = AS_OF, *, full: bool = False) -> RunReport:
    with open_engine(load_config(h.config), as_of=as_of) as engine:
        report = engine.run(RunOptions(as_of=as_of, full=full))
    assert report.status == "succeeded", report.error
    return report


def _records(h: Harness) -> list[CrmRecord]:
    connector = load_config(h.config).connector()
    try:
        return [r for page in connector.read_changed(None) for r in page.records]
    finally:
        connector.close()


def _liftable(h: Harness) -> tuple[list[str], list[str]]:
    """Customers rated affluent or mass and clear of AML trouble, and the CRM's RMs."""
    records = _records(h)
    owners = sorted({r.profile.owner_id for r in records if r.profile.owner_id})
    ids = [
        r.profile.id
        for r in records
        if h.sandbox.written(r.profile.id).get("value_tier") in ("affluent", "mass")
        and h.sandbox.written(r.profile.id).get("aml_risk") in ("low", "medium")
        and r.profile.kind == "individual"
    ]
    assert len(ids) >= 2 and len(owners) >= 2, (ids, owners)
    return ids, owners


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_maker_proposes_checker_approves_sync_honours_then_falls_back(harness: Harness) -> None:
    h, sb = harness, harness.sandbox
    _run(h)
    (lifted, selfish, *_), (maker, checker, *_) = _liftable(h)
    computed = sb.written(lifted)["value_tier"]
    own = _needs_and_channel(sb.written(lifted))
    expires = AS_OF + timedelta(days=30)
    day = AS_OF - timedelta(days=1)
    propose_override(
        sb,
        lifted,
        user=maker,
        at=_at(day, 9),
        value_tier="private",
        reason="family office moving its deposits here",
        expires=expires,
    )
    approve_override(sb, lifted, user=checker, at=_at(day, 11))
    propose_override(sb, selfish, user=maker, at=_at(day, 9), value_tier="wealth", expires=expires)
    approve_override(sb, selfish, user=maker, at=_at(day, 10))
    _run(h)

    written = sb.written(lifted)
    assert written["value_tier"] == "private"
    assert written["service_level"] == "private_banking"
    assert str(written["reasons"]).startswith("MANUAL_OVERRIDE")
    assert sb.written(selfish)["value_tier"] != "wealth"
    refused = [t for t in sb.tasks() if t.customer_id == selfish and "refused" in t.subject]
    assert len(refused) == 1 and refused[0].open
    assert "the maker approved it" in refused[0].subject
    assert not [t for t in sb.tasks() if t.customer_id == lifted and "refused" in t.subject]
    assert _needs_and_channel(written) == own  # an override never moves needs or channel
    # full re-tiers while it holds: the written tier comes back as the previous one, and
    # the override (not the value rule's grace, whose clock stands still) still decides;
    # needs and channel still follow the tier the customer's own data earns
    for day in (AS_OF, AS_OF + timedelta(days=1)):
        _run(h, day, full=True)
        assert str(sb.written(lifted)["reasons"]).startswith("MANUAL_OVERRIDE")
        assert _needs_and_channel(sb.written(lifted)) == own

    # expired yesterday: still private through the usual grace, counted from the expiry
    after = expires + timedelta(days=1)
    _run(h, after, full=True)
    assert sb.written(lifted)["value_tier"] == "private"
    assert "VAL_HELD_GRACE" in str(sb.written(lifted)["reasons"])
    assert _needs_and_channel(sb.written(lifted)) == own
    expired = [
        t for t in sb.tasks() if t.customer_id == lifted and "ended: it has expired" in t.subject
    ]
    assert len(expired) == 1
    _run(h, after + timedelta(days=GRACE - 1), full=True)  # the grace counts from the expiry
    assert sb.written(lifted)["value_tier"] == "private"
    _run(h, after + timedelta(days=GRACE), full=True)
    assert sb.written(lifted)["value_tier"] == computed
    assert _needs_and_channel(sb.written(lifted)) == own


def _needs_and_channel(written: dict[str, object]) -> tuple[object, object]:
    """The needs tier and preferred channel the CRM shows (both written every run)."""
    return written["needs_tier"], written["preferred_channel"]


def test_the_webhook_workers_fetch_carries_the_audit_too(harness: Harness) -> None:
    """``crmtier serve``'s inbox worker fetches through the engine's connector
    (``webhooks/runtime.py``), so a customer fetched for a CRM notification is judged on
    the same audit as in a sync. (Tests under ``tests/`` import ``webhooks`` as the test
    package, so this one calls that fetch itself.)"""
    h, sb = harness, harness.sandbox
    records = _records(h)
    cid = records[0].profile.id
    maker, checker = "RM-A", "HEAD-B"
    if h.crm == "salesforce":
        maker, checker = "005000000000901AAA", "005000000000902AAA"
    elif h.crm == "zoho":
        maker, checker = "3477061000000901", "3477061000000902"
    day = AS_OF - timedelta(days=1)
    propose_override(sb, cid, user=maker, at=_at(day, 9), value_tier="private", expires=AS_OF)
    approve_override(sb, cid, user=checker, at=_at(day, 10))
    parts = open_parts(load_config(h.config))
    try:
        fetched = parts.engine.connector.fetch([cid])  # what webhooks.runtime gives its worker
    finally:
        parts.close()
    override = fetched[0].profile.override
    assert override is not None
    assert (override.maker_id, override.checker_id) == (maker, checker)
    assert override.approved_at == _at(day, 10)


def test_the_audit_trail_records_maker_checker_and_times(harness: Harness) -> None:
    h, sb = harness, harness.sandbox
    _run(h)
    (lifted, *_), (maker, checker, *_) = _liftable(h)
    day = AS_OF - timedelta(days=1)
    expires = AS_OF + timedelta(days=30)
    propose_override(sb, lifted, user=maker, at=_at(day, 9), value_tier="private", expires=expires)
    approve_override(sb, lifted, user=checker, at=_at(day, 11))
    _run(h)
    rows = [row for row in h.audit_rows([lifted]) if row[0] == lifted and row[1] == "override"]
    assert len(rows) == 1
    new = json.loads(rows[0][3])
    assert (new["outcome"], new["maker"], new["checker"]) == ("applied", maker, checker)
    assert new["approved_at"] == _at(day, 11).isoformat()
    assert new["expires"] == expires.isoformat()
