"""``crmtier doctor``'s ``workers`` line: with a spread full sync (``[workers]
spread_full_sync``, on by default with ``engine = "procrastinate"``) ``crmtier sync --full``
needs a ``crmtier worker`` alive to take its pages, and refuses to start without one
(``sync.tasks.liveness``). The doctor counts them the same way, so an operator sees the
problem before the run does."""

from __future__ import annotations

from datetime import timedelta

from connectors.contract import SchemaCheck
from crmtier.commands.doctor_lines import error, ok
from crmtier.config import CrmtierConfig
from sync.store_engine import create_engine
from sync.tasks.liveness import START_A_WORKER, live_workers

NAME = "workers"


def check_workers(config: CrmtierConfig) -> list[SchemaCheck]:
    """The live workers, when full syncs are spread over them; no line otherwise."""
    section = config.workers
    if not section.spread_full_sync:  # which the config allows with procrastinate only
        return []
    stalled_after = timedelta(seconds=section.stalled_after_seconds)
    try:
        engine = create_engine(config.state_url().get_secret_value())
        try:
            alive = live_workers(engine, stalled_after)
        finally:
            engine.dispose()
    except Exception as exc:  # the state store line says why; never print the URL
        return [error(NAME, f"could not count them: {type(exc).__name__}", "fix the state store")]
    window = f"heartbeat in the last {stalled_after.total_seconds():.0f} s"
    if alive == 0:
        detail = f"none alive ({window}): crmtier sync --full would refuse to start"
        return [error(NAME, detail, START_A_WORKER)]
    return [ok(NAME, f"{alive} alive ({window}); full syncs are spread over them")]
