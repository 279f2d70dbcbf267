"""docs/targets.md R9 for the FXiaoke connector (slow: run with ``-m slow``): with 5% of calls reset
and 1% answered too late, a read of 10,000 customers still yields each exactly once and a write of
500 changes lands exactly once each, within 3x the fault-free call count."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id
from connectors.sandbox.server import Request

N = 10_000
WRITES = 500


@pytest.mark.slow
def test_read_and_write_converge_under_network_faults(
    make_sandbox: Callable[..., FxiaokeSandbox], connect: Callable[..., FxiaokeConnector]
) -> None:
    sandbox = make_sandbox(customers=N, rate_window=0.2)
    rng = random.Random(9)
    draws = iter([rng.random() for _ in range(20_000)])  # list iteration is atomic

    def chance(p: float) -> Callable[[Request], bool]:
        return lambda _: next(draws) < p

    for kind in ("query", "update"):
        sandbox.server.inject(kind, drop=True, times=None, match=chance(0.05))
        sandbox.server.inject(kind, delay=1.5, times=None, match=chance(0.01))
    connector = connect(sandbox, read_timeout=1.0, sleep=lambda _: None)

    ids = [r.profile.id for page in connector.read_changed(None) for r in page.records]
    assert len(ids) == N and len(set(ids)) == N
    assert sandbox.server.calls.count("query") <= 3 * (N // 100 + 1)

    plan = WritePlan(
        field_updates=tuple(
            FieldUpdate(customer_id(i), {"value_tier": "affluent"}) for i in range(WRITES)
        )
    )
    results = connector.apply(plan)
    assert all(r.ok for r in results), [r for r in results if not r.ok][:3]
    assert sandbox.server.calls.count("update") <= 3 * WRITES
    assert all(sandbox.written(customer_id(i))["value_tier"] == "affluent" for i in range(WRITES))
