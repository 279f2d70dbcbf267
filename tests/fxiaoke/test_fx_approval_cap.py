"""The approval instance reads after refused updates are capped per run.

FXiaoke's approval instance read takes one record (``dataId``), so each refused record
whose fields show no lock costs a call of its own (connectors/fxiaoke/locks.py). A sync run
sends its FXiaoke updates one record a plan (``max_write_batch`` 1): a mass refusal, every
plan of a run, would read the tenant once per record. The run's allowance of
``APPROVAL_READS_PER_RUN`` stops that; the next run has its own; outside a run the plan is
the unit.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from connectors.calltally import CallTally, carry, counting
from connectors.contract import FieldUpdate, WritePlan
from connectors.fxiaoke.locks import APPROVAL_READS_PER_RUN
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id
from tests.fxiaoke.fx_helpers import Connect, MakeSandbox, capture, updates

OVER = APPROVAL_READS_PER_RUN + 3


@pytest.fixture
def refusing(make_sandbox: MakeSandbox) -> FxiaokeSandbox:
    """A tenant refusing every update of its first ``OVER`` customers, none of them locked
    (each refusal asks for an approval read); its window wide enough for the test's calls."""
    sandbox = make_sandbox(customers=OVER + 2, rate_calls=10_000)
    for i in range(OVER):
        sandbox.reject_record(customer_id(i))
    return sandbox


def _one(i: int) -> WritePlan:
    return WritePlan(field_updates=(FieldUpdate(customer_id(i), {"value_tier": "wealth"}),))


def test_a_run_of_one_record_plans_reads_approvals_up_to_its_allowance(
    refusing: FxiaokeSandbox, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """``OVER`` refused one-record plans in one run, sent from four threads as the write
    pool sends them: one lock field query each, 100 approval reads, the other three
    refusals kept as answered with a warning each naming the run's count so far; the next
    run reads again."""
    approvals = capture(refusing, "approvalInstances")
    connector = connect(refusing, sleep=lambda _: None)
    with (
        caplog.at_level(logging.WARNING, logger="connectors.fxiaoke.locks"),
        counting(CallTally()) as run,
        ThreadPoolExecutor(4) as pool,
    ):
        sent = [pool.submit(carry(connector.apply), _one(i)) for i in range(OVER)]
        results = [r for f in sent for r in f.result()]
    assert [r.error_code for r in results] == ["32000"] * OVER
    assert len(approvals) == APPROVAL_READS_PER_RUN
    assert run["query"] == OVER + APPROVAL_READS_PER_RUN  # approvalInstances/query counts so
    assert len({a["dataId"] for a in approvals}) == APPROVAL_READS_PER_RUN
    capped = sorted(r.__dict__["not_read_in_run"] for r in caplog.records)
    assert capped == [1, 2, 3] and {r.__dict__["not_read"] for r in caplog.records} == {1}
    with counting(CallTally()):
        connector.apply(_one(0))
    assert [a["dataId"] for a in approvals[APPROVAL_READS_PER_RUN:]] == [customer_id(0)]


def test_one_plan_outside_a_run_reads_approvals_up_to_the_allowance(
    refusing: FxiaokeSandbox, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    """One plan of ``OVER`` refusals, no run open: one lock field query per 100 records, 100
    approval reads, one warning naming the three not read; a fresh record is written."""
    approvals = capture(refusing, "approvalInstances")
    queries = capture(refusing, "query")
    with caplog.at_level(logging.WARNING, logger="connectors.fxiaoke.locks"):
        results = connect(refusing, sleep=lambda _: None).apply(updates(OVER + 1))
    assert [r.error_code for r in results] == ["32000"] * OVER + [None]
    assert (len(queries), len(approvals)) == (2, APPROVAL_READS_PER_RUN)
    (capped,) = caplog.records
    assert (capped.__dict__["not_read"], capped.__dict__["reads_per_run"]) == (3, 100)
