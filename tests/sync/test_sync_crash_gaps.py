"""Recovery gaps a SIGKILL opened on the write path, each shown against the real Salesforce
sandbox over HTTPS with ``crmtier sync`` as a subprocess, as tests/sync/test_sync_crash.py
does: a fault-free run's end state is the reference; the run under test is killed at a
named point (``sync/killpoints.py``) and rerun with no other traffic in between.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.sandbox.optional import writeback_targets
from tests.sync.conftest import Harness, available_crms, start_sandbox
from tests.sync.test_sync_crash import AS_OF, _complete

CUSTOMERS = 30


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    if "salesforce" not in available_crms():
        pytest.skip("the Salesforce sandbox or connector is not in the tree")
    sandbox = start_sandbox("salesforce", tmp_path / "sf", CUSTOMERS)
    try:
        yield Harness(sandbox, tmp_path / "sf")
    finally:
        sandbox.stop()


@pytest.mark.parametrize("point", [None, "after_tier:1", "before_commit:1"])
def test_a_tier_field_overwritten_in_the_crm_is_restored_after_a_kill_before_commit(
    harness: Harness, point: str | None
) -> None:
    """REC-A: someone overwrites a tier field in the CRM (inputs unchanged, same day). A
    fault-free run reads the record, sees the CRM no longer shows its decision and writes
    it again. A run killed after it admitted that record version (``sync.claims``) but
    before its page committed must leave the rerun doing the same: the version was
    admitted, yet no decision was ever made from it."""
    sb = harness.sandbox
    _complete(harness)
    cid = harness.customer_ids()[0]
    decided = sb.written(cid)
    target = writeback_targets("salesforce", sb.mapping)["value_tier"]
    wrong = "mass" if decided["value_tier"] != "mass" else "private"
    sb.store.update(sb.org.customer_object, cid, {target: wrong})
    assert sb.written(cid)["value_tier"] == wrong

    if point is not None:  # None: the fault-free run the others must match
        killed = harness.run("--as-of", AS_OF, kill_at=point)
        assert killed.returncode == -signal.SIGKILL
    report = _complete(harness)
    assert sb.written(cid) == decided, report["counts"]
