"""Page units of a re-tier run on threads of this process (``sync.retier.UnitExecutor``):
for tests, and wherever no task engine runs. Each thread has its own engine, as a worker
on another host has its own connector and store connection."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from sync.engine import SyncEngine
from sync.errortext import error_text
from sync.retier_units import UnitRef
from sync.retier_worker import give_up, run_unit

log = logging.getLogger(__name__)


class InProcessUnits:
    """Runs units on ``workers`` threads of this process, each thread on its own engine
    from ``engine_for`` (its own connector and store connection, as a worker on another
    host has), retrying a unit ``attempts`` times before giving it up."""

    def __init__(
        self,
        engine_for: Callable[[], SyncEngine],
        *,
        workers: int = 2,
        attempts: int = 3,
        retry_delay: float = 0.5,
        turn_timeout: float = 60.0,
    ) -> None:
        self.engine_for = engine_for
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.turn_timeout = turn_timeout
        self.threads = ThreadPoolExecutor(max(1, workers), thread_name_prefix="retier-unit")
        self.local = threading.local()

    def submit(self, unit: UnitRef) -> None:
        self.threads.submit(self._run, unit)

    def _engine(self) -> SyncEngine:
        engine: SyncEngine | None = getattr(self.local, "engine", None)
        if engine is None:
            engine = self.local.engine = self.engine_for()
        return engine

    def _run(self, ref: UnitRef) -> None:
        for attempt in range(1, self.attempts + 1):
            engine: SyncEngine | None = None
            try:
                engine = self._engine()
                run_unit(engine, ref, turn_timeout=self.turn_timeout)
                return
            except Exception as exc:
                if attempt < self.attempts:
                    log.warning("page unit %d failed (%s); retrying", ref.seq, error_text(exc))
                    time.sleep(self.retry_delay * attempt)
                elif engine is not None:
                    give_up(engine, ref, error_text(exc))
                else:  # no engine to reach the store: the coordinator's stall reports it
                    log.error("page unit %d: no engine (%s)", ref.seq, error_text(exc))

    def close(self) -> None:
        self.threads.shutdown(wait=True)
