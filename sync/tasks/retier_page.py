"""Job kind ``crmtier.retier_page``: one page unit of a re-tier spread over workers.

``crmtier sync --full`` with ``[workers] engine = "procrastinate"`` is the coordinator
(``sync.retier.retier``): it stores each page it reads as a unit and defers one job per unit
(``ProcrastinateUnits``). Any ``crmtier worker`` takes the job and runs the unit against its
own sync engine (``sync.retier_worker.run_unit``). A failed attempt raises, and the engine retries
the job with its exponential backoff (a unit whose turn has not come yet, in a second); a
job stalled by a dead worker runs again on another once the visibility timeout passes (a
unit is safe to run again). After the last attempt
the unit is given up (``give_up``): the coordinator's run then fails naming the page, and
the job stays ``failed`` in the queue as the engine's dead letter.
"""

from __future__ import annotations

from procrastinate import App, JobContext

from sync.errortext import error_text
from sync.retier_units import TurnTimeoutError, UnitRef
from sync.retier_worker import give_up, run_unit
from sync.tasks.engine import Worksite

TASK = "crmtier.retier_page"
QUEUE = "retier"
#: retries of a unit before it is given up (a turn that times out is one of them)
MAX_ATTEMPTS = 5


class ProcrastinateUnits:
    """``sync.retier.UnitExecutor`` on the task engine: one job per unit."""

    def __init__(self, app: App) -> None:
        self.app = app

    def submit(self, unit: UnitRef) -> None:
        self.app.configure_task(name=TASK, queue=QUEUE).defer(run_id=unit.run_id, seq=unit.seq)


def register(app: App, site: Worksite) -> None:
    """Put the page-unit job on ``app`` for this process's ``site``."""
    # a unit whose turn has not come (the page before it is not committed yet) was not
    # tried: it runs again in a second, its attempts not running out
    retry = site.settings.retry(MAX_ATTEMPTS, soon=(TurnTimeoutError,))

    @app.task(name=TASK, queue=QUEUE, pass_context=True, retry=retry)
    def retier_page(context: JobContext, run_id: str, seq: int) -> None:
        ref = UnitRef(run_id, seq)
        try:
            customers = run_unit(
                site.engine, ref, turn_timeout=site.settings.stalled_after.total_seconds()
            )
        except Exception as exc:
            waiting = isinstance(exc, TurnTimeoutError)
            last = context.job.attempts >= MAX_ATTEMPTS and not waiting  # no more retries
            site.record(TASK, 0, "dead" if last else "retry")
            if last:
                give_up(site.engine, ref, error_text(exc))
            raise
        site.record(TASK, customers, "done")
