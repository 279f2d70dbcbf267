"""The parts of one sync run, wired together: reader, claims, planner, dispatcher, write
pool and recorder (``sync.engine`` describes what each does).

One set of parts serves one run: the one-process run (``sync.run.Run``) and each page unit
of a re-tier spread over workers (``sync.retier``) build their own and pass them to the
steps they run (``sync.page_step``, ``sync.run_tasks``, ``sync.run_outbox``)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import timedelta
from typing import TYPE_CHECKING

from connectors.calltally import CallTally
from sync import runs
from sync.claims import owner_id
from sync.dispatch import Dispatcher
from sync.maybe_made import MaybeMade
from sync.planning import PagePlanner
from sync.reader import Reader
from sync.recorder import Recorder
from sync.run_claims import RunClaims
from sync.runs import RunCounts
from sync.settings import RunOptions
from sync.writepool import WritePool

if TYPE_CHECKING:
    from sync.engine import SyncEngine


class RunParts:
    """A run's parts, built for ``engine`` and ``options``; lives as long as the run."""

    def __init__(
        self,
        engine: SyncEngine,
        options: RunOptions,
        source_events: dict[str, str] | None = None,
        *,
        caller_holds: Collection[str] | None = None,
        run_id: str | None = None,
    ) -> None:
        self.e = engine
        self.options = options  # a run that follows a fields-only one turns ``full`` on
        # a run's own id; a page unit of a re-tier spread over workers (``sync.retier``)
        # passes its coordinator's, which its state rows, outbox items and audit rows cite
        self.run_id = run_id or runs.new_run_id()
        # the CRM calls made for this run alone: the connector may serve others at once
        self.calls = CallTally()
        events = source_events or {}
        # what the CRM may hold already: one rule for the recorder, pool and dispatcher
        maybe_made = MaybeMade(self.run_id)
        self.recorder = Recorder(
            engine.store,
            engine.stream,
            self.run_id,
            key=engine.key,
            audit_keys=engine.audit_keys,
            trigger=options.trigger,
            actor=options.actor,
            retry_attempts=engine.settings.record_retry_attempts,
            decisions={},
            maybe_made=maybe_made,
            keep_outcomes=options.keep_outcomes,
        )
        # a dry run writes nothing, so it claims nothing; the webhook worker's records come
        # claimed, and a worker never waits for a claim (a run may be waiting for its own)
        self.claims = RunClaims(
            None if options.dry_run else engine.claims,
            owner_id(),
            engine.settings.claim_wait if caller_holds is None else timedelta(0),
            ref=self.recorder.ref,
            caller_holds=caller_holds or (),
        )
        self.reader = Reader(
            engine.connector, engine.stream, engine.settings, self.counts, engine.policy_version
        )
        self.planner = PagePlanner(
            engine.assess,
            engine.writeback,
            self.recorder,
            options,
            policy_version=engine.policy_version,
            task_limits=engine.task_limits,
            adjustments=engine.adjustments,
            source_events=events,
        )
        self.pool = WritePool(
            engine.connector,
            engine.settings,
            holding=self.reader.holding_writes,
            record=self.recorder.record_results,
            after_record=self.progress,
            maybe_made=maybe_made,
            withdrawn=self.recorder.withdrawn,
        )
        self.dispatcher = Dispatcher(
            self.pool,
            self.recorder,
            engine.stream,
            self.run_id,
            options.trigger,
            events,
            budget=self.planner.budget,
        )

    @property
    def counts(self) -> RunCounts:
        return self.recorder.counts

    def progress(self) -> None:
        """Tell the engine's ``on_progress`` the counts and API calls so far."""
        if self.e.on_progress is not None:
            self.e.on_progress(self.counts, self.calls.total())
