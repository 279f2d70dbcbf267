"""``crmtier doctor``'s ``workers`` line: with a spread full sync (``[workers]
spread_full_sync``, on by default with ``engine = "procrastinate"``) ``crmtier sync --full``
needs a ``crmtier worker`` alive to take its pages, and refuses to start without one
(``sync.tasks.liveness``). The doctor counts them the same way, so an operator sees the
problem before the run does. A store it cannot read says which store (its password
masked), why and what to do (``crmtier.store_failures.unreadable``)."""

from __future__ import annotations

from datetime import timedelta

from connectors.contract import SchemaCheck
from crmtier.commands.doctor_lines import error, ok
from crmtier.config import CrmtierConfig
from crmtier.store_failures import STORE_READ_ERRORS, opening, unreadable
from sync.store_engine import create_engine
from sync.tasks.liveness import START_A_WORKER, live_workers

NAME = "workers"
#: the queue's tables are applied by the first ``crmtier worker`` (``sync.tasks.engine``)
QUEUE_SCHEMA_FIX = (
    "the task engine's tables are missing or of another crmtier version: start crmtier "
    "worker to apply them, or upgrade crmtier if a newer one applied them"
)


def check_workers(config: CrmtierConfig) -> list[SchemaCheck]:
    """The live workers, when full syncs are spread over them; no line otherwise."""
    section = config.workers
    if not section.spread_full_sync:  # which the config allows with procrastinate only
        return []
    stalled_after = timedelta(seconds=section.stalled_after_seconds)
    url = config.state_url().get_secret_value()
    try:
        with opening(url):
            engine = create_engine(url)
            try:
                alive = live_workers(engine, stalled_after)
            finally:
                engine.dispose()
    except STORE_READ_ERRORS as exc:  # anything else is a bug: its traceback
        why = unreadable(exc, url, QUEUE_SCHEMA_FIX)
        return [error(NAME, f"could not count them: {why.detail}", why.fix)]
    window = f"heartbeat in the last {stalled_after.total_seconds():.0f} s"
    if alive == 0:
        detail = f"none alive ({window}): crmtier sync --full would refuse to start"
        return [error(NAME, detail, START_A_WORKER)]
    return [ok(NAME, f"{alive} alive ({window}); full syncs are spread over them")]
