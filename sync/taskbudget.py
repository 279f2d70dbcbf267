"""Task volume as a bounded quantity: per-run budgets, per-owner caps, and waiting tasks.

A first sync of a bank's book would otherwise hand its relationship managers thousands of
tasks in one morning. Each task rule may carry a ``TaskLimit`` (from the policy): at most
``budget`` new tasks of the rule per run, and at most ``open_per_owner`` open tasks of the
rule per relationship manager (tasks to a team queue are bounded by the budget alone).
Within a run, tasks are admitted in priority order (high, normal, low; then due date);
the others **wait**: they are recorded in ``task_queue`` in the same transaction that
queues the page's other writes, so a crash loses none. The next run first revisits the
waiting customers, most urgent first, up to each rule's budget: it fetches them again and
re-assesses them, so a waiting task is made from the customer's data of that day (and not
at all if the reason for it has gone), with a due date counted from that day.

"Open" is what crmtier can know without reading the CRM's task status: a task it made
(recorded here as ``made``) whose due date has not passed and that it has not closed. A
task it closed itself (a sanctions hit withdraws the customer's sales tasks,
``sync.planner.closures_of``) leaves its owner's count in the transaction that records
the CRM's answer (``Recorder.record_results``), one superseded before it ever went out
when it is superseded, giving back its share of the run's budget (``sync.dispatch``);
not one the CRM may hold all the same (an earlier write of it went unanswered:
``sync.maybe_made``; found absent, it may land yet: ``effect_rows.stays_in_doubt``).

An owner's cap holds across runs and webhook passes that commit side by side (on threads,
processes or hosts): the open counts a run loaded when it started are stale once another
pass has made a task for the same owner. So each page's admission is decided again inside
the transaction that records it (``Budget.recount``): the owners' open tasks are counted
from the store there, after taking a transaction-scoped lock per (stream, rule, owner) on
PostgreSQL (``pg_advisory_xact_lock``, released at commit or rollback: PostgreSQL manual,
"Advisory Lock Functions"); SQLite needs none, as the store begins every transaction with
``BEGIN IMMEDIATE`` and so lets one writer in at a time. Two passes admitting tasks to one
owner then take turns, and the second sees the first's tasks.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from sync.schema import now_text, task_queue
from tiering_core.models import TaskAction
from tiering_core.policy import Policy

PRIORITY_RANK = {"high": 0, "normal": 1, "low": 2}


@dataclass(frozen=True)
class TaskLimit:
    """A rule's bounds; None: unbounded (regulatory deadlines are not throttled)."""

    budget: int | None = None
    open_per_owner: int | None = None


def task_limits(policy: Policy) -> dict[str, TaskLimit]:
    """The policy's task-volume bounds by rule (rules without any: unbounded, e.g.
    regulatory deadlines)."""
    return {
        name: TaskLimit(rule.budget_per_run, rule.open_per_owner)
        for name, rule in policy.strategy.tasks
        if rule.budget_per_run is not None or rule.open_per_owner is not None
    }


def order_key(task: TaskAction, customer_id: str) -> tuple[int, str, str, str]:
    """Admission order: priority, then due date, then stable ids."""
    return (PRIORITY_RANK.get(task.priority, 9), task.due.isoformat(), customer_id, task.dedupe_key)


@dataclass
class Budget:
    """One run's admissions. ``open`` counts open tasks per (rule, owner) as loaded at the
    start of the run plus those admitted since."""

    limits: Mapping[str, TaskLimit]
    open: Counter[tuple[str, str]] = field(default_factory=Counter)
    used: Counter[str] = field(default_factory=Counter)
    admitted: set[str] = field(default_factory=set)  # dedupe keys admitted this run
    deferred: Counter[str] = field(default_factory=Counter)  # by rule, this run
    # keys of the page's tasks its owner's stored count holds already (``recount``)
    placed: set[str] = field(default_factory=set)

    def admit(self, task: TaskAction) -> bool:
        """Whether ``task`` may be made now; counts it when it may. A task admitted earlier
        in the run (its customer read twice) is admitted again without counting."""
        if task.dedupe_key in self.admitted:
            return True
        limit = self.limits.get(task.rule)
        if limit is not None:
            if limit.budget is not None and self.used[task.rule] >= limit.budget:
                return False
            owner = (task.rule, task.owner_id or "")
            new = task.owner_id and task.dedupe_key not in self.placed  # not in its count yet
            if (
                limit.open_per_owner is not None
                and new
                and self.open[owner] >= limit.open_per_owner
            ):
                return False
            self.used[task.rule] += 1
            if new:
                self.open[owner] += 1
        self.admitted.add(task.dedupe_key)
        return True

    def release(self, task: TaskAction) -> None:
        """A task this run admitted that will never be made (superseded before it went
        out: ``sync.dispatch``): its share of the rule's budget and its owner's open count
        go back, and it is admitted no more, so a later read of its customer that wants it
        again is admitted afresh, within the budget and its owner's cap (it passed without
        counting, and so could take its owner past the cap)."""
        if task.dedupe_key not in self.admitted:
            return
        self.admitted.discard(task.dedupe_key)
        if task.rule in self.limits:
            self.used[task.rule] = max(0, self.used[task.rule] - 1)
            if task.owner_id:
                owner = (task.rule, task.owner_id)
                self.open[owner] = max(0, self.open[owner] - 1)

    def recount(
        self, conn: sa.Connection, stream: str, as_of: date, tasks: Iterable[TaskAction]
    ) -> None:
        """Before a page's tasks are admitted, in the transaction that records them: lock
        the capped (rule, owner) pairs these tasks name and take their open counts from
        the store, which holds every task made by this run and by any pass that
        committed before (an owner's count loaded at the start of the run is stale once
        a pass beside it made one). A task among them that holds its place there already
        (``placed``: in doubt, planned again by a customer who still wants it; its re-send
        looks its key up) is not counted twice: at the cap with it, it competed with itself,
        and waited, never sent again to settle its doubt."""
        capped = {rule for rule, limit in self.limits.items() if limit.open_per_owner}
        mine = [t for t in tasks if t.rule in capped and t.owner_id]
        pairs = sorted({(t.rule, t.owner_id) for t in mine if t.owner_id})
        self.placed = set()
        if not pairs:
            return
        _lock_owners(conn, stream, pairs)
        stored = _open_counts(conn, stream, as_of, pairs)
        for pair in pairs:
            self.open[pair] = stored[pair]
        self.placed = _placed(conn, stream, as_of, mine)


@contextmanager
def kept(budget: Budget | None, tasks: Sequence[TaskAction]) -> Iterator[None]:
    """Entered around a page's transaction with the page's planned ``tasks``: should it
    fail, the budget goes back to what it was when the transaction began. Its admissions
    and deferrals are made in that transaction (``split``, recorded by ``record``) and
    roll back with it; a run that kept them would report tasks ``deferred``
    (``RunCounts.tasks_deferred``, added up from ``deferred`` when the run ends) that
    ``task_queue`` never held, which the next run decides again (``Recorder.page`` does
    the same for the run's counts). Only what the page's tasks can change is copied (their
    owners' open counts and dedupe keys; the per-rule counters are small): copying the
    run's whole ``admitted`` set a page would make a long run quadratic."""
    if budget is None:
        yield
        return
    pairs = {(t.rule, t.owner_id or "") for t in tasks}
    open_before = {pair: budget.open[pair] for pair in pairs if pair in budget.open}
    had = {t.dedupe_key for t in tasks if t.dedupe_key in budget.admitted}
    used, deferred = Counter(budget.used), Counter(budget.deferred)
    try:
        yield
    except BaseException:
        for pair in pairs:
            if pair in open_before:
                budget.open[pair] = open_before[pair]
            else:
                budget.open.pop(pair, None)
        budget.admitted -= {t.dedupe_key for t in tasks} - had
        budget.used, budget.deferred = used, deferred
        raise


def split(
    budget: Budget, tasks_by_customer: Sequence[tuple[str, Sequence[TaskAction]]]
) -> tuple[dict[str, list[TaskAction]], dict[str, list[TaskAction]]]:
    """(admitted, waiting) tasks by customer id, deciding in priority order over the page."""
    ordered = sorted(
        ((cid, task) for cid, tasks in tasks_by_customer for task in tasks),
        key=lambda pair: order_key(pair[1], pair[0]),
    )
    admitted: dict[str, list[TaskAction]] = {}
    waiting: dict[str, list[TaskAction]] = {}
    for cid, task in ordered:
        if budget.admit(task):
            admitted.setdefault(cid, []).append(task)
        else:
            budget.deferred[task.rule] += 1
            waiting.setdefault(cid, []).append(task)
    return admitted, waiting


# --- the task_queue table -------------------------------------------------------------------


def _row(stream: str, cid: str, task: TaskAction, status: str, run_id: str) -> dict[str, Any]:
    return {
        "stream": stream,
        "key": task.dedupe_key,
        "customer_id": cid,
        "rule": task.rule,
        "owner_id": task.owner_id,
        "priority": PRIORITY_RANK.get(task.priority, 9),
        "due": task.due.isoformat(),
        "status": status,
        "run_id": run_id,
        "updated_at": now_text(),
    }


def record(
    conn: sa.Connection,
    stream: str,
    run_id: str,
    planned: Iterable[str],
    admitted: Mapping[str, Sequence[TaskAction]],
    waiting: Mapping[str, Sequence[TaskAction]],
) -> None:
    """The page's outcome: each ``planned`` customer's waiting tasks are replaced by this
    plan's (a task no longer wanted stops waiting), and admitted bounded tasks are
    recorded as made, for the owners' open counts."""
    _delete(conn, stream, task_queue.c.customer_id, sorted(set(planned)), "waiting")
    rows = [
        _row(stream, cid, task, "waiting", run_id)
        for cid, tasks in waiting.items()
        for task in tasks
    ]
    made = [
        _row(stream, cid, task, "made", run_id) for cid, tasks in admitted.items() for task in tasks
    ]
    # A key keeps one row. A made task's key may be one that waited before (replaced). A
    # waiting task's key may have a "made" row: a task whose write was dead-lettered after
    # unanswered calls (the CRM may hold it) is planned again and may wait for the run's
    # budget (not for room under its owner's cap, which counts it: ``Budget.placed``); its
    # "made" row stays, so it keeps counting against its owner's cap, and it is not also
    # recorded as waiting (inserting beside that row broke the key's uniqueness and failed
    # every run after).
    if rows:
        held = _made(conn, stream, [r["key"] for r in rows])
        rows = [r for r in rows if r["key"] not in held]
    if made:
        _delete(conn, stream, task_queue.c.key, [r["key"] for r in made])
    if rows or made:
        conn.execute(task_queue.insert(), [*rows, *made])


def _made(conn: sa.Connection, stream: str, keys: Sequence[str]) -> set[str]:
    """Those of ``keys`` the stream records as made, 500 a query."""
    out: set[str] = set()
    for start in range(0, len(keys), 500):
        out.update(
            conn.execute(
                sa.select(task_queue.c.key).where(
                    task_queue.c.stream == stream,
                    task_queue.c.status == "made",
                    task_queue.c.key.in_(keys[start : start + 500]),
                )
            ).scalars()
        )
    return out


def unmake(conn: sa.Connection, stream: str, keys: Sequence[str]) -> None:
    """Tasks no longer open: admitted but superseded before they were sent, or closed in
    the CRM (its answer recorded). No longer counted as made."""
    _delete(conn, stream, task_queue.c.key, keys, "made")


def _delete(
    conn: sa.Connection,
    stream: str,
    column: sa.Column[str],
    values: Sequence[str],
    status: str | None = None,
) -> None:
    """Delete the stream's rows whose ``column`` is among ``values`` (and whose status is
    ``status``, when given), 500 values a statement."""
    for start in range(0, len(values), 500):
        where = [task_queue.c.stream == stream, column.in_(values[start : start + 500])]
        if status is not None:
            where.append(task_queue.c.status == status)
        conn.execute(task_queue.delete().where(*where))


def load_open(
    conn: sa.Connection, stream: str, as_of: date, *, prune: bool = True
) -> Counter[tuple[str, str]]:
    """Open tasks per (rule, owner): made, owned by a person, not yet due. With ``prune``,
    rows of tasks already due are dropped first (nothing counts them any more)."""
    if prune:
        conn.execute(
            task_queue.delete().where(
                task_queue.c.stream == stream,
                task_queue.c.status == "made",
                task_queue.c.due < as_of.isoformat(),
            )
        )
    return Counter({(rule, owner): int(n) for rule, owner, n in conn.execute(_open(stream, as_of))})


def _open(stream: str, as_of: date) -> sa.Select[tuple[str, str, int]]:
    """The count of open tasks per (rule, owner): made, owned by a person, not yet due."""
    return (
        sa.select(task_queue.c.rule, task_queue.c.owner_id, sa.func.count())
        .where(
            task_queue.c.stream == stream,
            task_queue.c.status == "made",
            task_queue.c.owner_id.is_not(None),
            task_queue.c.due >= as_of.isoformat(),
        )
        .group_by(task_queue.c.rule, task_queue.c.owner_id)
    )


#: first key of the per-owner admission locks (``pg_advisory_xact_lock(int, int)``); the
#: migration lock (``sync.schema``) uses another
_OWNER_LOCK = 0x63727462  # "crtb"


def _lock_key(stream: str, rule: str, owner: str) -> int:
    """A stable signed 32-bit key for one (stream, rule, owner): two keys that collide
    only make their passes take turns."""
    digest = hashlib.blake2b(f"{stream}\0{rule}\0{owner}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_owners(conn: sa.Connection, stream: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Take the owners' admission locks on PostgreSQL, in key order, so two transactions
    over overlapping owners queue rather than deadlock."""
    if conn.dialect.name != "postgresql":
        return
    keys = sorted({_lock_key(stream, rule, owner) for rule, owner in pairs})
    lock = sa.text("SELECT pg_advisory_xact_lock(:first, :key)")
    for key in keys:
        conn.execute(lock, {"first": _OWNER_LOCK, "key": key})


def _placed(conn: sa.Connection, stream: str, as_of: date, tasks: Sequence[TaskAction]) -> set[str]:
    """The keys of ``tasks`` the store counts as open for the same rule and owner."""
    want = {(t.dedupe_key, t.rule, t.owner_id) for t in tasks}
    q = task_queue.c
    found: set[str] = set()
    for start in range(0, len(tasks), 500):
        keys = [t.dedupe_key for t in tasks[start : start + 500]]
        rows = conn.execute(
            sa.select(q.key, q.rule, q.owner_id).where(
                q.stream == stream, q.status == "made", q.due >= as_of.isoformat(), q.key.in_(keys)
            )
        )
        found.update(key for key, rule, owner in rows if (key, rule, owner) in want)
    return found


def _open_counts(
    conn: sa.Connection, stream: str, as_of: date, pairs: Sequence[tuple[str, str]]
) -> Counter[tuple[str, str]]:
    """Open tasks (made, not yet due) of these (rule, owner) pairs, as the store has them."""
    counts: Counter[tuple[str, str]] = Counter()
    for start in range(0, len(pairs), 500):
        chunk = pairs[start : start + 500]
        query = _open(stream, as_of).where(
            sa.tuple_(task_queue.c.rule, task_queue.c.owner_id).in_(chunk)
        )
        counts.update({(rule, owner): int(n) for rule, owner, n in conn.execute(query)})
    return counts


def to_revisit(conn: sa.Connection, stream: str, limits: Mapping[str, TaskLimit]) -> list[str]:
    """Customers with waiting tasks, most urgent first, at most each rule's budget of them
    per rule (the run could not admit more)."""
    query = (
        sa.select(task_queue.c.customer_id, task_queue.c.rule)
        .where(task_queue.c.stream == stream, task_queue.c.status == "waiting")
        .order_by(
            task_queue.c.priority, task_queue.c.due, task_queue.c.customer_id, task_queue.c.key
        )
    )
    taken: Counter[str] = Counter()
    out: dict[str, None] = {}
    for cid, rule in conn.execute(query):
        limit = limits.get(rule)
        budget = limit.budget if limit is not None else None
        if budget is not None and taken[rule] >= budget:
            continue
        taken[rule] += 1
        out.setdefault(cid)
    return list(out)


def waiting_by_rule(conn: sa.Connection, stream: str) -> dict[str, int]:
    query = (
        sa.select(task_queue.c.rule, sa.func.count())
        .where(task_queue.c.stream == stream, task_queue.c.status == "waiting")
        .group_by(task_queue.c.rule)
    )
    return {rule: int(n) for rule, n in conn.execute(query)}
