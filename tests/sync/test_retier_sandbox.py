"""A full re-tier spread over two ``crmtier worker`` processes on the Salesforce sandbox
ends where the same re-tier in one process does: the CRM's fields (tiers and reason texts),
tasks and memberships, the audit rows, the run's counts, and the data calls by kind, call
for call (real processes on a PostgreSQL store and the task engine's queue)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sync.retier_sandbox import run_side

pytestmark = pytest.mark.postgres


def test_two_workers_end_where_one_process_does(tmp_path: Path) -> None:
    customers, page = 700, 200  # four units, the last one partial
    one = run_side(tmp_path / "one", customers, None, latency=0.0, page_size=page)
    spread = run_side(tmp_path / "spread", customers, 2, latency=0.0, page_size=page)
    assert spread.report["status"] == one.report["status"] == "succeeded"
    assert spread.report["counts"] == one.report["counts"]
    assert spread.report["counts"]["read"] == customers
    assert spread.calls == one.calls
    assert spread.calls["query"] + spread.calls.get("query_more", 0) == -(-customers // page)
    assert spread.crm == one.crm
    assert spread.audit == one.audit
