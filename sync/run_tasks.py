"""A run's task budgets and the fields-only staging mark (``sync.taskbudget`` holds the
rules): loaded when the run starts, the waiting customers revisited before the stream,
settled when it ends."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import sqlalchemy as sa

from sync import taskbudget
from sync.page_step import PageStep
from sync.run_parts import RunParts
from sync.runs import RunStatus


class RunTasks:
    """The task side of the run ``parts`` serve."""

    def __init__(self, parts: RunParts) -> None:
        self.p = parts
        self.follows_staged = False  # this run makes what a fields-only run left out

    def load(self, conn: sa.Connection, read_stream: bool) -> list[str]:
        """At the start of a run: whether it follows a fields-only run (then it re-reads
        every customer, to make the tasks and memberships that run left out), the owners'
        open tasks, and the customers whose waiting tasks this run should revisit."""
        p = self.p
        if (
            read_stream
            and not p.options.only_fields
            and p.e.store.meta_get(conn, p.e.staged_key) == "fields"
        ):
            self.follows_staged = True
            p.options = p.planner.options = replace(p.options, full=True)
        budget = p.planner.budget
        if budget is None:
            return []
        budget.open = taskbudget.load_open(
            conn, p.e.stream, p.options.day(), prune=not p.options.dry_run
        )
        if not read_stream or not p.planner.writeback.tasks:
            return []
        return taskbudget.to_revisit(conn, p.e.stream, p.e.task_limits)

    def revisit(self, step: PageStep, ids: list[str]) -> None:
        """Re-assess the customers whose tasks wait, most urgent first, before the stream:
        waiting tasks come before new ones of the same rule. A customer the CRM no longer
        returns stops waiting."""
        p = self.p
        ids = [cid for cid in ids if cid not in p.recorder.dead_letter_customers]
        p.planner.revisit.update(ids)
        found = step.refetch(ids)
        gone = [cid for cid in ids if cid not in found]
        if gone and not p.options.dry_run:
            with p.e.store.begin() as conn:
                taskbudget.record(conn, p.e.stream, p.run_id, gone, {}, {})

    def settle(self, status: RunStatus) -> None:
        """At the end of a run: what waits now (the run record says so), and the staging
        mark (set by a fields-only run, cleared by the run that follows it)."""
        p = self.p
        budget = p.planner.budget
        if budget is not None:
            p.counts.tasks_deferred.update(budget.deferred)
        if p.options.dry_run:
            return
        with p.e.store.begin() as conn:
            if budget is not None:
                p.counts.tasks_waiting = Counter(taskbudget.waiting_by_rule(conn, p.e.stream))
            if status in ("succeeded", "completed_with_errors"):
                if p.options.only_fields:
                    p.e.store.meta_put(conn, p.e.staged_key, "fields")
                elif self.follows_staged:
                    p.e.store.meta_put(conn, p.e.staged_key, "")
