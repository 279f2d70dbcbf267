"""A run killed at any point while it decides tier overrides, then rerun to completion,
leaves the audit rows and the store of a fault-free run: each override row once, in the
transaction of the decision it belongs to (docs/overrides.md, "The audit trail").

The run under test reads customers with a refused override (self-approved, no checker),
an applied service-tier override (no tier change) and an applied value-tier override (a
tier change): the first three are recorded with their refusal task's answer or as
unchanged customers, the last with its field write's. ``crmtier sync`` runs as a real
process, SIGKILLed at each instrumented point (``sync/killpoints.py``) on a fresh
installation over the same book, and the rerun makes no new CRM change first.
"""

from __future__ import annotations

import signal
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from connectors.sandbox.override_trail import approve_override, propose_override
from sync.killpoints import POINTS
from tests.sync.conftest import Harness, available_crms, start_sandbox
from tests.sync.test_sync_crash import AS_OF, _assert_same_as_oracle, _complete

CUSTOMERS = 30
DAY = date.fromisoformat(AS_OF) - timedelta(days=1)
EXPIRES = DAY + timedelta(days=31)


def _at(hour: int) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hour, tzinfo=UTC)


def _overrides(h: Harness, ids: list[str]) -> None:
    """The same four overrides, proposed and approved as CRM users (two of the org's
    account owners: a task to a user the org does not have would be dead-lettered), on
    every installation (``ids``: customers an override may lift)."""
    sb = h.sandbox
    users = sorted({data["OwnerId"] for _, _, data in sb.store.scan("Account")})  # type: ignore[attr-defined]
    maker, checker = users[:2]
    selfish, unchecked, service, lifted = ids[:4]
    for cid in (selfish, unchecked, lifted):
        propose_override(sb, cid, user=maker, at=_at(9), value_tier="private", expires=EXPIRES)
    propose_override(sb, service, user=maker, at=_at(9), service_tier="private", expires=EXPIRES)
    approve_override(sb, selfish, user=maker, at=_at(10))
    sb.edit_customer(unchecked, {"override.approved": True})  # the CRM's audit shows no one
    for cid in (service, lifted):
        approve_override(sb, cid, user=checker, at=_at(11))


@pytest.mark.slow
def test_a_kill_at_each_point_leaves_each_override_row_once(tmp_path: Path) -> None:
    if "salesforce" not in available_crms():
        pytest.skip("the Salesforce sandbox or connector is not in the tree")
    sandbox = start_sandbox("salesforce", tmp_path / "sf", CUSTOMERS)
    try:
        h = Harness(sandbox, tmp_path / "sf")
        h.fresh_state("oracle")
        _complete(h)
        ids = h.customer_ids()
        liftable = [
            cid
            for cid in ids
            if sandbox.written(cid).get("value_tier") in ("affluent", "mass")
            and sandbox.written(cid).get("aml_risk") in ("low", "medium")
        ]
        _overrides(h, liftable)
        _complete(h)
        oracle = h.snapshot(ids)
        rows = [row for row in oracle["audit"] if row[1] == "override"]
        assert len(rows) == 4, rows
        kills = 0
        for point in POINTS:
            sandbox.seed(CUSTOMERS)
            h.fresh_state(point)
            _complete(h)
            _overrides(h, liftable)
            run = h.run("--as-of", AS_OF, kill_at=f"{point}:1")
            kills += run.returncode == -signal.SIGKILL
            _complete(h)
            _assert_same_as_oracle(h, ids, oracle)
        assert kills == len(POINTS)
    finally:
        sandbox.stop()
