"""One sync run: starts it, runs what comes before the stream, the stream's pages and the
last writes through the run's steps, and settles and records how it ended (``sync.engine``
describes the run; ``SyncEngine`` starts one).

The run only coordinates. Its parts are built in ``sync.run_parts``; a page goes through
``sync.page_step``; the task budgets are loaded and settled by ``sync.run_tasks``; an
earlier run's writes are recovered by ``sync.run_outbox``; the report is ``sync.run_report``.
A re-tier spread over workers hands the stream's pages to its units (``StreamHandOff``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import closing
from typing import Protocol

import sqlalchemy as sa

from connectors.calltally import counting
from connectors.contract import CrmRecord
from connectors.errors import ConfigError, RateLimitedError
from sync import household_store, outbox, retier_died, run_outbox, runs
from sync.errortext import error_text
from sync.page_step import PageStep
from sync.records import Advance, Stop
from sync.run_parts import RunParts
from sync.run_report import RunReport, report_of
from sync.run_tasks import RunTasks
from sync.runs import RunStatus

log = logging.getLogger(__name__)


class StreamHandOff(Protocol):
    """Where a run sends the stream's pages when this process does not plan and commit
    them itself: a re-tier spread over workers (``sync.retier.Coordinator``)."""

    @property
    def calls(self) -> Mapping[str, int]:
        """API calls the pages' work made in other processes, by kind (for the report)."""

    def page(self, records: list[CrmRecord], mark: Advance) -> None:
        """Hand one page of the stream on."""

    def after_read(self) -> None:
        """After the stream's last page, before the run's last writes: wait for the pages
        handed on; raise ``Stop`` when one of them failed."""

    def merge(self) -> None:
        """Add what the pages handed on did into the run's counts and outcomes, once (a run
        stopped early still counts them); raise ``Stop`` when they cannot be waited for."""

    def finishing(self, conn: sa.Connection) -> None:
        """First in the transaction that records the run finished: settle the pages
        handed on that have not finished (no page may commit once this has begun)."""


class Run:
    """One run over the parts ``parts`` built; lives only as long as ``SyncEngine.run`` (or
    ``process_records``, or ``sync.retier.retier`` with its ``hand_off``)."""

    def __init__(self, parts: RunParts, hand_off: StreamHandOff | None = None) -> None:
        self.p = parts
        self.step = PageStep(parts)
        self.tasks = RunTasks(parts)
        self.hand_off = hand_off
        self.from_start = False  # no bookmark when the run started: it reads every customer

    def execute(self, *, read_stream: bool, records: Sequence[CrmRecord]) -> RunReport:
        """Run it, its record kept alive by a heartbeat until it is finished."""
        p = self.p
        stream, dry, ttl = p.e.stream, p.options.dry_run, p.e.settings.lock_ttl
        interrupted = runs.Interrupted()
        with p.e.store.begin() as conn:
            if not dry:
                interrupted = runs.mark_interrupted(conn, stream, p.run_id, reader=read_stream)
            runs.start(
                conn,
                p.run_id,
                stream,
                trigger=p.options.trigger,
                dry_run=dry,
                owner=p.claims.owner,
                ttl=ttl,
            )
        heartbeat = runs.keep_alive(p.e.store, p.run_id, p.claims.owner, ttl)
        try:
            with counting(p.calls):
                return self._execute(read_stream, records, interrupted.readers)
        finally:
            heartbeat.stop()

    def _execute(
        self, read_stream: bool, records: Sequence[CrmRecord], interrupted: int
    ) -> RunReport:
        p = self.p
        stream, dry = p.e.stream, p.options.dry_run
        with p.e.store.begin() as conn:
            p.reader.load(conn)
            self.from_start = p.reader.bookmark is None  # a first run reads everyone
            run_outbox.load_dead_letters(p, conn)
            waiting = self.tasks.load(conn, read_stream)
        log.info(
            "run started",
            extra={"run_id": p.run_id, "stream": stream, "trigger": p.options.trigger},
        )
        status: RunStatus = "succeeded"
        error: str | None = None
        config_error = read_only = False
        try:
            if not dry:
                if read_stream:  # a re-tier whose coordinator died: its units left ended
                    retier_died.end_dead_runs(p.e.store, stream)
                only = None if read_stream else {r.profile.id for r in records}
                run_outbox.recover(p, only, self.step.refetch)
            if read_stream:
                if not dry:
                    self.step.refetch(sorted(p.recorder.dead_letter_customers))
                self.tasks.revisit(self.step, waiting)
                self._read_stream()
            else:
                self.step.process(list(records), None)
            p.pool.drain(final=True)
        except Stop as stop:
            status, error, config_error = stop.status, str(stop), stop.config
            read_only = stop.read_only
        except RateLimitedError as exc:  # while reading: checkpointed up to the last page
            status, error = "paused_quota", f"CRM quota or rate limit: {exc}"
        except ConfigError as exc:  # for the admin, not a bug: one line, no traceback
            status, error, config_error = "failed", error_text(exc), True
            log.error("run failed: %s", error, extra={"run_id": p.run_id})
        except Exception as exc:  # the run record must say what happened, whatever it was
            status, error = "failed", error_text(exc)
            log.exception("run failed", extra={"run_id": p.run_id})
        finally:
            p.pool.shutdown()
            p.claims.release_all()
        status, error = self._verdict(
            status, error, read_stream=read_stream, interrupted=interrupted
        )
        self.tasks.settle(status)
        if p.e.policy is not None and not dry:
            household_store.settle(
                p.e.store,
                stream,
                p.e.policy,
                read_all=read_stream
                and (p.options.full or self.from_start)
                and p.options.limit is None,
                succeeded=status in ("succeeded", "completed_with_errors"),
            )
        calls_elsewhere = self.hand_off.calls if self.hand_off is not None else {}
        report = report_of(p, status, error, self.step.preview, calls_elsewhere)
        report.config_error = config_error and status == "failed"
        report.read_only = read_only and status == "paused_quota"
        with p.e.store.begin() as conn:
            if self.hand_off is not None:
                self.hand_off.finishing(conn)
            runs.finish(
                conn,
                p.run_id,
                status,
                p.counts,
                report.api_calls,
                error,
                min_calls=report.min_calls,
            )
            report.dead_letters_open = len(outbox.open_dead_letter_customers(conn, stream))
        log.info(
            "run finished",
            extra={"run_id": p.run_id, "status": status, "counts": p.counts.as_json()},
        )
        return report

    def _read_stream(self) -> None:
        """The stream's pages, each planned and committed here or handed on."""
        with closing(self.p.reader.pages(self.p.options)) as pages:
            for page, mark in pages:
                if self.hand_off is None:
                    self.step.process(page, mark)
                else:
                    self.hand_off.page(page, mark)
        if self.hand_off is not None:
            self.hand_off.after_read()

    def _verdict(
        self, status: RunStatus, error: str | None, *, read_stream: bool, interrupted: int
    ) -> tuple[RunStatus, str | None]:
        """The run's final status from how it ended and whether its counts add up."""
        p = self.p
        if self.hand_off is not None:
            try:
                self.hand_off.merge()
            except Stop as stop:
                if status != "failed":
                    status, error = stop.status, str(stop)
        if status == "paused_quota":
            p.recorder.defer_open_decisions()
        if status == "succeeded" and p.counts.dead_lettered:
            status = "completed_with_errors"
        if status != "failed" and not p.counts.reconciles():
            status, error = "failed", f"counts do not reconcile: {p.counts.as_json()}"
        if (
            status != "failed"
            and read_stream
            and interrupted
            and p.reader.bookmark is not None
            and not p.options.full
            and p.counts.read == 0
        ):
            status = "failed"
            error = "read 0 records after an interrupted run; the bookmark record must be re-read"
        return status, error
