"""An FXiaoke approval instance listed without its ``instanceId`` does not stop the run.

FXiaoke's listing leaves a null field out of its answer ("Query Object Approval Flow
Instances": ``includeNull``, default false) and its details read requires the id ("Query
Approval Flow Instance Details"), which the sandbox refuses without (10001, a configuration
error). So the customer's approved instance is not read: its override is refused
(``no_checker``, a task to the maker), the record counts as ``DQ_AUDIT_UNREAD`` in the run
report and one warning names it by pseudonym with the field and the problem; every other
customer, a lifted one beside it too, is synced as before."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.override_audit import APPROVAL_PATH, AUDIT_UNREAD
from connectors.sandbox.fxiaoke_flow import FX_INSTANCES
from connectors.sandbox.override_trail import approve_override, propose_override
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.engine import RunOptions, RunReport
from sync.store import StateStore
from tests.sync.conftest import Harness, crm_harness
from tiering_core.privacy import pseudonym

AS_OF = date(2026, 6, 30)
DAY = AS_OF - timedelta(days=1)
MAKER, CHECKER = "FSUID_RM_A", "FSUID_HEAD_B"


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with crm_harness("fxiaoke", tmp_path / "fxiaoke", monkeypatch, 30) as h:
        yield h


def _run(h: Harness, *, full: bool = False) -> RunReport:
    with open_engine(load_config(h.config), as_of=AS_OF) as engine:
        return engine.run(RunOptions(as_of=AS_OF, full=full))


def _at(hour: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=UTC)


def _liftable(h: Harness) -> list[str]:
    """Customers rated affluent or mass, clear of AML trouble (an override may lift them)."""
    connector = load_config(h.config).connector()
    try:
        records = [r for page in connector.read_changed(None) for r in page.records]
    finally:
        connector.close()
    return [
        r.profile.id
        for r in records
        if h.sandbox.written(r.profile.id).get("value_tier") in ("affluent", "mass")
        and h.sandbox.written(r.profile.id).get("aml_risk") in ("low", "medium")
        and r.profile.kind == "individual"
    ]


def _drop_instance_id(h: Harness, customer_id: str) -> None:
    """FXiaoke lists the customer's approval instance with no ``instanceId`` (a null field
    left out of the answer)."""
    store = h.sandbox.store  # type: ignore[attr-defined]
    for rid, at, data in list(store.scan(FX_INSTANCES)):
        if data["dataId"] == customer_id:
            kept = {k: v for k, v in data.items() if k != "instanceId"}
            store.insert_many(FX_INSTANCES, [(rid, at, kept)])


def test_an_instance_listed_without_its_id_is_skipped_named_and_counted(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h, sb = harness, harness.sandbox
    assert _run(h).status == "succeeded"
    lifted, unread, *_ = _liftable(h)
    expires = AS_OF + timedelta(days=30)
    for cid in (lifted, unread):
        propose_override(sb, cid, user=MAKER, at=_at(9), value_tier="private", expires=expires)
        approve_override(sb, cid, user=CHECKER, at=_at(11))
    _drop_instance_id(h, unread)

    with caplog.at_level(logging.WARNING):
        report = _run(h)

    assert report.status == "succeeded", report.error
    assert report.counts.dq_issues[AUDIT_UNREAD] == 1
    assert sb.written(lifted)["value_tier"] == "private"
    assert sb.written(unread)["value_tier"] != "private"
    refused = [t for t in sb.tasks() if t.customer_id == unread and "refused" in t.subject]
    assert len(refused) == 1 and "does not show a checker" in refused[0].subject
    refusals = [
        json.loads(r[3])["rule"]
        for r in h.audit_rows([unread])
        if r[0] == unread and r[1] == "task" and "OVERRIDE_REFUSED" in json.loads(r[4])
    ]
    assert refusals == ["override_refused"]
    store = StateStore.open(h.state_url())
    try:
        ref = pseudonym(unread, store.pseudonym_key())
    finally:
        store.close()
    lines = [r for r in caplog.records if r.getMessage() == "override audit unread"]
    assert [(r.customer, r.field) for r in lines] == [(ref, APPROVAL_PATH)]  # type: ignore[attr-defined]
    assert "instanceId" in lines[0].problem  # type: ignore[attr-defined]
    assert unread not in json.dumps([r.__dict__ for r in lines], default=str)
