"""One check at FXiaoke's real limit (100 calls / 20 s per endpoint), sized small: 110
changed customers need the 20-second window once, and the sandbox, which enforces the same
limit, never has to refuse a call."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id

N = 110
WINDOW = 20.0


@pytest.mark.slow  # waits out one real 20-second window
def test_writes_respect_the_real_20_second_window(
    make_sandbox: Callable[..., FxiaokeSandbox], connect: Callable[..., FxiaokeConnector]
) -> None:
    sandbox = make_sandbox(customers=N)  # sandbox defaults: 100 calls / 20 s, enforced
    connector = connect(sandbox)  # connector defaults: the same limit, 4 writers
    assert (connector.config.calls_per_window, connector.config.window_seconds) == (100, WINDOW)
    plan = WritePlan(
        field_updates=tuple(FieldUpdate(customer_id(i), {"value_tier": "mass"}) for i in range(N))
    )
    results = connector.apply(plan)
    assert all(r.ok for r in results)
    assert sandbox.server.calls.count("update") == N  # exactly N: none refused and retried
    assert sandbox.server.calls.max_in_window("update", WINDOW) <= 100
    assert connector.client.limiter.waits >= 1
