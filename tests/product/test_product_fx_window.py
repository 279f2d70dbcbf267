"""``crmtier sync`` on FXiaoke keeps under the tenant's per-endpoint call window end to end:
the window comes from ``crmtier.toml`` through the CLI to the write threads' shared limiter,
and a sandbox that enforces the same window never has to refuse a call.

The other product and sync tests lift the window (``SANDBOX_OPTIONS``) so their syncs do not
wait for it; the limiter's own tests drive it directly or through the connector
(``tests/fxiaoke``). This is the one default-run test of a whole sync through it, on a short
window (FXiaoke's real 100 calls per 20 s is the ``slow`` ``test_fx_real_window.py``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from product_crms import needs
from product_synced import started, sync

#: calls per endpoint per window, on both sides; a first sync of ``CUSTOMERS`` writes one
#: record a call, so it needs the window several times over
BUDGET, WINDOW, CUSTOMERS = 8, 0.5, 20


@needs["fxiaoke"]
def test_a_sync_keeps_every_endpoint_under_the_window_the_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"rate_calls": BUDGET, "rate_window": WINDOW}
    with started("fxiaoke", CUSTOMERS, tmp_path, monkeypatch, **options) as (sandbox, config):
        assert f"calls_per_window = {BUDGET}\n" in config.read_text("utf-8")
        sync(config)
        calls = sandbox.server.calls
        assert calls.count("update") > BUDGET  # the window bound, more than once
        over = {
            kind: most
            for kind in calls.counts()
            if (most := calls.max_in_window(kind, WINDOW)) > BUDGET
        }
        assert not over, over  # the sandbox refused none of them
