"""An override audit the CRM's reader cannot read whole does not stop the run, nor lets
its override through: the customer's override is refused (a task to whoever the audit
names), the record counts as ``DQ_AUDIT_UNREAD`` in the run report and one warning names
it by pseudonym with the field and the problem; every other customer, a lifted one beside
it too, is synced as before.

FXiaoke: an approval instance listed without its ``instanceId``. FXiaoke's listing leaves a
null field out of its answer ("Query Object Approval Flow Instances": ``includeNull``,
default false) and its details read requires the id ("Query Approval Flow Instance
Details"), which the sandbox refuses without (10001, a configuration error): the approval
is unread (``no_checker``).

Zoho: a timeline page that says there is more but names no ``next_page_token``, which
cannot be followed (``connectors/zoho/override_audit.py``). Before, that failed the whole
read, and as the answer does not change, every run after it failed on the same page. Now
no part of the timeline counts (``no_maker``), and once it reads whole a full run applies
the override: nothing was lost."""

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
from connectors.sandbox.server import Response
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.engine import RunOptions, RunReport
from sync.store import StateStore
from tests.sync.conftest import Harness, crm_harness
from tiering_core.privacy import pseudonym

AS_OF = date(2026, 6, 30)
DAY = AS_OF - timedelta(days=1)
MAKER, CHECKER = "FSUID_RM_A", "FSUID_HEAD_B"
#: A Zoho timeline page saying there is more, with no ``next_page_token`` to follow.
BROKEN_PAGE = {"__timeline": [], "info": {"per_page": 200, "count": 0, "more_records": True}}


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with crm_harness("fxiaoke", tmp_path / "fxiaoke", monkeypatch, 30) as h:
        yield h


@pytest.fixture
def zoho_harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with crm_harness("zoho", tmp_path / "zoho", monkeypatch, 40) as h:
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
    h = harness
    lifted, unread = _approved_pair(h)
    _drop_instance_id(h, unread)
    _run_with_one_unread(h, caplog, lifted, unread)
    _assert_refused_and_named(h, caplog, unread, "does not show a checker", "instanceId")
    refusals = [
        json.loads(r[3])["rule"]
        for r in h.audit_rows([unread])
        if r[0] == unread and r[1] == "task" and "OVERRIDE_REFUSED" in json.loads(r[4])
    ]
    assert refusals == ["override_refused"]


def test_a_zoho_timeline_not_read_whole_is_named_and_counted_then_read_again(
    zoho_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    h, sb = zoho_harness, zoho_harness.sandbox
    lifted, unread = _approved_pair(h)
    sb.server.inject(  # type: ignore[attr-defined]
        "timeline",
        response=Response.json(BROKEN_PAGE),
        times=None,
        match=lambda request: request.params.get("id") == unread,
    )
    _run_with_one_unread(h, caplog, lifted, unread)
    _assert_refused_and_named(h, caplog, unread, "does not show who proposed", "next_page_token")

    sb.server.faults.clear()  # type: ignore[attr-defined]
    assert _run(h, full=True).status == "succeeded"
    assert sb.written(unread)["value_tier"] == "private"


def _approved_pair(h: Harness) -> tuple[str, str]:
    """After a first run, two liftable customers whose override to private was proposed by
    one user and approved by another."""
    assert _run(h).status == "succeeded"
    lifted, unread, *_ = _liftable(h)
    expires = AS_OF + timedelta(days=30)
    for cid in (lifted, unread):
        propose_override(
            h.sandbox, cid, user=MAKER, at=_at(9), value_tier="private", expires=expires
        )
        approve_override(h.sandbox, cid, user=CHECKER, at=_at(11))
    return lifted, unread


def _run_with_one_unread(
    h: Harness, caplog: pytest.LogCaptureFixture, lifted: str, unread: str
) -> None:
    """A run that succeeds, lifts ``lifted`` and counts ``unread`` as unread, unlifted."""
    with caplog.at_level(logging.WARNING):
        report = _run(h)
    assert report.status == "succeeded", report.error
    assert report.counts.dq_issues[AUDIT_UNREAD] == 1
    assert h.sandbox.written(lifted)["value_tier"] == "private"
    assert h.sandbox.written(unread)["value_tier"] != "private"


def _assert_refused_and_named(
    h: Harness, caplog: pytest.LogCaptureFixture, unread: str, cause: str, problem: str
) -> None:
    """One refusal task for ``unread`` giving ``cause``, and one warning naming it by
    pseudonym only, with the approval field and ``problem``."""
    refused = [t for t in h.sandbox.tasks() if t.customer_id == unread and "refused" in t.subject]
    assert len(refused) == 1 and cause in refused[0].subject
    store = StateStore.open(h.state_url())
    try:
        ref = pseudonym(unread, store.pseudonym_key())
    finally:
        store.close()
    lines = [r for r in caplog.records if r.getMessage() == "override audit unread"]
    assert [(r.customer, r.field) for r in lines] == [(ref, APPROVAL_PATH)]  # type: ignore[attr-defined]
    assert problem in lines[0].problem  # type: ignore[attr-defined]
    assert unread not in json.dumps([r.__dict__ for r in lines], default=str)
