"""A CRM's bulk path is chosen by the run's field updates, not by one page's.

A page holds at most ``page_size`` customers (Salesforce: 2,000, and the engine sent a
batch of 200 per call), so a connector that compared one ``apply()`` with its
``bulk_threshold`` never saw it crossed. The engine now collects a run's field updates
across pages: ``bulk_batch`` at a time while the read goes on, the rest at the end in one
``apply()`` when it is above the threshold, else in ordinary batches.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.contract import WritePlan, WriteResult
from sync.engine import RunOptions
from tests.sync.test_write_pipeline import AS_OF, BATCH, PAGE, PagedCrm, engine_for


class BulkCrm(PagedCrm):
    """``PagedCrm`` with a bulk path: records the size of every field-update plan."""

    def __init__(self, pages: int, threshold: int, bulk_batch: int) -> None:
        super().__init__(pages)
        self.capabilities = replace(
            PagedCrm.capabilities, bulk_threshold=threshold, bulk_batch=bulk_batch
        )
        self.plans: list[int] = []

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        with self.lock:
            self.plans.append(len(plan.field_updates))
        return super().apply(plan)


def _run(tmp: Path, crm: BulkCrm) -> None:
    report = engine_for(crm, tmp).run(RunOptions(as_of=AS_OF))
    assert report.status == "succeeded", report.error
    assert report.counts.written == len(crm.ids)


@pytest.mark.parametrize(
    ("pages", "threshold", "bulk_batch", "plans"),
    [
        # a run's updates at or under the threshold: ordinary batches
        (1, 30, 100, [BATCH] * (PAGE // BATCH)),
        # over it only across two pages: one bulk plan at the end of the read
        (2, 30, 100, [2 * PAGE]),
        # a long run: full bulk plans as the read goes, the rest (> threshold) at the end
        (10, 30, 100, [100, 100, 40]),
        # the rest at the end is under the threshold: ordinary batches again
        (5, 30, 100, [100] + [BATCH] * (20 // BATCH)),
    ],
)
def test_field_updates_reach_the_bulk_path_by_the_runs_count(
    tmp_path: Path, pages: int, threshold: int, bulk_batch: int, plans: list[int]
) -> None:
    crm = BulkCrm(pages, threshold, bulk_batch)
    _run(tmp_path, crm)
    assert crm.plans == plans
    assert set(crm.tiers) == set(crm.ids)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    pages=st.integers(1, 8),
    threshold=st.integers(1, 80),
    extra=st.integers(1, 60),
)
def test_every_update_goes_once_in_a_batch_or_a_bulk_plan(
    pages: int, threshold: int, extra: int
) -> None:
    """Whatever the sizes: each customer is written once, and every plan is an ordinary
    batch or a bulk plan (above the threshold, at most ``bulk_batch``)."""
    bulk_batch = threshold + extra
    crm = BulkCrm(pages, threshold, bulk_batch)
    with tempfile.TemporaryDirectory() as tmp:
        _run(Path(tmp), crm)
    assert sum(crm.plans) == len(crm.ids) == len(crm.tiers)
    assert all(n <= BATCH or threshold < n <= bulk_batch for n in crm.plans), crm.plans
