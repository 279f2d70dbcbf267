"""What the lock reads after refused customer updates cost, and what they read.

A plan's refusals are looked into together: one ``data/query`` per 100 refused records,
projecting the two lock fields and never the customer's personal fields; nothing for a
code that says FXiaoke is busy; and a lock read that fails, even one the app may not make,
leaves the refusal as it was instead of stopping the run.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.fxiaoke.locks import LOCKED
from connectors.fxiaoke.query import ID, by_ids
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.fxiaoke_routes import error_response
from connectors.sandbox.fxiaoke_schema import ACCOUNT
from connectors.sandbox.generator import customer_id
from tests.fxiaoke.fx_helpers import PII_FIELDS, Connect, capture, updates

LOCK_FIELDS = [ID, "lock_status", "life_status"]


Bodies = list[dict[str, Any]]


def _lock_reads(sandbox: FxiaokeSandbox) -> tuple[Bodies, Bodies, Bodies]:
    """The bodies of the calls a lock read can make: ``data/get``, ``data/query`` and the
    approval instances' read."""
    return capture(sandbox, "get"), capture(sandbox, "query"), capture(sandbox, "approvalInstances")


def test_the_refusals_of_a_plan_cost_one_query_of_their_lock_fields(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """Three refused records (two of them locked) among six: one query of the three, for
    ``_id``, ``lock_status`` and ``life_status`` only; one approval read, for the refused
    record whose fields show no lock; no ``data/get`` (the whole customer)."""
    locked = [customer_id(1), customer_id(2)]
    refused = customer_id(3)
    for cid in locked:
        sandbox.lock_record(cid)
    sandbox.reject_record(refused)
    gets, queries, approvals = _lock_reads(sandbox)
    results = connect(sandbox, sleep=lambda _: None).apply(updates(6))
    outcome = {r.key: r.error_code for r in results if not r.ok}
    assert outcome == {locked[0]: LOCKED, locked[1]: LOCKED, refused: "32000"}
    assert gets == []
    (query,) = queries
    info = query["data"]["search_query_info"]
    assert info["fieldProjection"] == LOCK_FIELDS and not PII_FIELDS & set(info["fieldProjection"])
    assert info["filters"] == [
        {"field_name": ID, "field_values": sorted([*locked, refused]), "operator": "IN"}
    ]
    assert [a["dataId"] for a in approvals] == [refused]


def test_the_lock_reads_take_a_page_of_ids_a_query() -> None:
    """``by_ids``, which the lock reads (and the campaign gate) query through: 100 distinct
    ids a body, so no answer outgrows its one page (the sandbox's window of 100 calls per
    20 s makes 101 refused updates too slow a test; the campaign gate's test reads 130
    campaigns through it against the sandbox)."""
    ids = [customer_id(i) for i in range(101)]
    bodies = list(by_ids(ACCOUNT, [*ids, ids[0]], LOCK_FIELDS))
    asked = [b["search_query_info"]["filters"][0]["field_values"] for b in bodies]
    assert [len(chunk) for chunk in asked] == [100, 1]
    assert [i for chunk in asked for i in chunk] == sorted(ids)
    assert all(b["search_query_info"]["fieldProjection"] == LOCK_FIELDS for b in bodies)


@pytest.mark.parametrize("code", [-1, 50009])
def test_a_busy_tenant_is_no_refusal_and_costs_no_lock_read(
    sandbox: FxiaokeSandbox, connect: Connect, code: int
) -> None:
    """系统繁忙 / 服务异常 on a locked record: FXiaoke failed, the record was not refused, so
    the outcome is the transient one and no read adds to the load."""
    cid = customer_id(2)
    sandbox.lock_record(cid)
    sandbox.reject_record(cid, code=code)
    reads = _lock_reads(sandbox)
    (got,) = connect(sandbox, sleep=lambda _: None).apply(_tier(cid))
    assert (got.ok, got.error_code, got.retryable) == (False, "TRANSIENT", True)
    assert reads == ([], [], [])


@pytest.mark.parametrize("kind", ["query", "approvalInstances"])
def test_a_lock_read_the_app_may_not_make_keeps_the_refusal(
    sandbox: FxiaokeSandbox,
    connect: Connect,
    kind: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """15003 (the app has no access to this API) on a lock read: the refused record keeps
    its dead letter and the other records their writes; the run is not stopped by a read
    that only names the reason."""
    refused, free = customer_id(2), customer_id(3)
    sandbox.reject_record(refused)
    sandbox.server.inject(kind, response=error_response(15003, "APP没有访问权限"), times=None)
    with caplog.at_level(logging.WARNING, logger="connectors.fxiaoke.locks"):
        got, wrote = connect(sandbox, sleep=lambda _: None).apply(_tier(refused, free))
    assert wrote.ok and sandbox.written(free) == {"value_tier": "wealth"}
    assert (got.key, got.ok, got.error_code) == (refused, False, "32000")
    assert [r.message for r in caplog.records] == ["fxiaoke lock state not read"]
    assert "15003" in str(caplog.records[0].__dict__["error"])


def _tier(*ids: str) -> WritePlan:
    return WritePlan(field_updates=tuple(FieldUpdate(c, {"value_tier": "wealth"}) for c in ids))
