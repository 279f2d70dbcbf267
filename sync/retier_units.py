"""The ledger of a re-tier's page units: what each carries, how far it got, what it did.

A row per page unit, ``(run_id, seq)``; seq 0 is the coordinator's own row (``head``),
holding what the first page starts from. This is not a queue: units are handed to workers
by the task engine (``sync.retier.UnitExecutor``); the row is what a worker on any host
needs that the engine does not carry, and what the coordinator adds up:

* ``records``: the page as the coordinator read it (workers read nothing from the CRM),
  encrypted like every stored copy of customer data (``sync.crypto``), with what the
  connector's read learnt besides the records (``connectors.contract.ReadContext``);
* the turn: a unit commits only after the unit before it has (``committed`` or ``done``),
  and hands its successor the run's task budgets as its commit left them (``budget``);
* the result: counts, outcomes, API calls and the write tally (``sync.retier_results``:
  saved whole at the commit and when done, each recording in between adding a row of what
  it changed), or the error that made the unit give up (``failed``);
* ``writing``: the customers whose outbox writes the unit sends after its commit, recorded
  in the commit's transaction, for when its worker dies sending them (``sync.retier_died``);
* ``attempt``: the attempt that owns the committed unit (``owns``): the one that committed
  it, until the unit ends (done, given up, taken over by another attempt, by the
  coordinator finishing the run or by the next run ending a dead coordinator's). An
  attempt sends a write call and records answers only while it owns its unit: a worker
  frozen past ``lock_ttl`` that wakes sends nothing more.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa

from connectors.contract import CrmRecord, Page
from sync.crypto import EncryptedJSON
from sync.migration_steps import Migration, add_column, create_tables
from sync.records import Advance, Json
from sync.retier_results import UnitResult, drop_recorded, retier_unit_answers, with_recorded
from sync.schema import metadata, now_text, parse_utc, runs, utc_text
from sync.taskbudget import Budget
from tiering_core.models import CustomerProfile, DQIssue

UnitStatus = Literal["queued", "committed", "done", "failed", "abandoned"]

retier_units = sa.Table(
    "retier_units",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("stream", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("records", EncryptedJSON("retier_units.records"), nullable=True),
    sa.Column("read_at", sa.String(32), nullable=True),
    sa.Column("hold_until", sa.String(32), nullable=True),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("budget", sa.JSON, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("writing", sa.JSON, nullable=True),
    sa.Column("attempt", sa.String(32), nullable=True),
    sa.Column("updated_at", sa.String(32), nullable=False),
)

#: The units still committed, looked for as every reading run starts (``retier_died.
#: end_dead_runs``): a few rows, where every unit ever stored is kept. Partial, so that no
#: statistics on the mostly ``done`` statuses can talk a planner out of it. Plain DDL
#: (SQLite and PostgreSQL spell a partial index alike) rather than an ``sa.Index`` with
#: ``sqlite_where``/``postgresql_where``: those keyword arguments load both dialects as the
#: module is imported, which every ``crmtier sync`` start would pay for.
_COMMITTED_INDEX = sa.text(
    "CREATE INDEX IF NOT EXISTS retier_units_committed"
    " ON retier_units (stream, run_id) WHERE status = 'committed'"
)


def _create_committed_index(conn: sa.Connection) -> None:
    conn.execute(_COMMITTED_INDEX)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "page units of a re-tier spread over workers",
        lambda conn: metadata.create_all(conn, tables=[retier_units], checkfirst=True),
    ),
    Migration(
        2,
        "the customers a committed page unit is writing",
        add_column(retier_units, "writing"),  # a new store's step 1 created it already
    ),
    Migration(
        3,
        "what each recording of a page unit added to its result",
        create_tables(retier_unit_answers),
    ),
    Migration(
        4,
        "the attempt that owns a committed page unit",
        add_column(retier_units, "attempt"),  # a new store's step 1 created it already
    ),
    Migration(
        5,
        "the index of the page units still committed",
        _create_committed_index,
    ),
)


class UnitGivenUpError(RuntimeError):
    """The unit cannot go on: an earlier page failed, or its run is no longer running (a
    rerun took the stream over); the rerun does the page again."""


class UnitTakenOverError(RuntimeError):
    """This attempt no longer owns its unit (``owns``): another attempt took it over while
    this one was frozen, or the coordinator finished the run. The attempt stops, sending
    and recording nothing more; whoever took the unit over holds its writes left as a
    dead run's (``sync.retier_died``). Not retried: the unit is no longer this job's."""


class TurnTimeoutError(RuntimeError):
    """The unit before this one did not commit in time: the engine retries this one
    later, freeing the worker (the earlier unit may be waiting for a worker itself)."""


@dataclass(frozen=True)
class UnitRef:
    """What the task engine carries: which unit of which run."""

    run_id: str
    seq: int


# --- a page's records as stored --------------------------------------------------------------


def record_json(record: CrmRecord) -> dict[str, Json]:
    return {
        "profile": record.profile.model_dump(mode="json"),
        "modstamp": utc_text(record.modstamp),
        "current": dict(record.current),
        "dq": [issue.model_dump(mode="json") for issue in record.dq_issues],
    }


def record_from_json(data: dict[str, Json]) -> CrmRecord:
    return CrmRecord(
        CustomerProfile.model_validate(data["profile"]),
        parse_utc(data["modstamp"]),
        dict(data["current"]),
        tuple(DQIssue.model_validate(d) for d in data["dq"]),
    )


# --- budgets handed from unit to unit ----------------------------------------------------------


def budget_json(budget: Budget | None) -> dict[str, Json] | None:
    """What a run's task budgets stand at (``deferred`` is counted by each unit)."""
    if budget is None:
        return None
    return {
        "open": [[rule, owner, n] for (rule, owner), n in budget.open.items()],
        "used": dict(budget.used),
        "admitted": sorted(budget.admitted),
    }


def restore_budget(budget: Budget | None, data: dict[str, Json] | None) -> None:
    if budget is None or data is None:
        return
    budget.open = Counter({(rule, owner): int(n) for rule, owner, n in data["open"]})
    budget.used = Counter(data["used"])
    budget.admitted = set(data["admitted"])


# --- the rows -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredUnit:
    ref: UnitRef
    stream: str
    status: UnitStatus
    records: list[CrmRecord]
    context: dict[str, Json]  # the connector's read context (``ReadContext``)
    mark: Advance | None
    hold_until: datetime | None
    options: dict[str, Json]
    error: str | None


def put(
    conn: sa.Connection,
    ref: UnitRef,
    stream: str,
    *,
    options: dict[str, Json],
    records: Sequence[CrmRecord] = (),
    context: dict[str, Json] | None = None,
    read_at: datetime | None = None,
    hold_until: datetime | None = None,
    budget: dict[str, Json] | None = None,
    status: UnitStatus = "queued",
) -> None:
    conn.execute(
        retier_units.insert().values(
            run_id=ref.run_id,
            seq=ref.seq,
            stream=stream,
            status=status,
            records={"records": [record_json(r) for r in records], "context": context or {}},
            read_at=utc_text(read_at) if read_at else None,
            hold_until=utc_text(hold_until) if hold_until else None,
            options=options,
            budget=budget,
            updated_at=now_text(),
        )
    )


def load(conn: sa.Connection, ref: UnitRef) -> StoredUnit:
    row = conn.execute(
        sa.select(retier_units).where(
            retier_units.c.run_id == ref.run_id, retier_units.c.seq == ref.seq
        )
    ).one()
    page = row.records or {}
    records = [record_from_json(r) for r in page.get("records", ())]
    mark = Advance(Page(tuple(records)), parse_utc(row.read_at)) if row.read_at else None
    return StoredUnit(
        ref,
        row.stream,
        row.status,
        records,
        dict(page.get("context") or {}),
        mark,
        parse_utc(row.hold_until) if row.hold_until else None,
        dict(row.options),
        row.error,
    )


def set_status(
    conn: sa.Connection,
    ref: UnitRef,
    status: UnitStatus,
    *,
    result: UnitResult | None = None,
    budget: dict[str, Json] | None = None,
    error: str | None = None,
    writing: Collection[str] = (),
    attempt: str | None = None,
) -> None:
    """Move a unit on (``writing`` and ``attempt``: at its commit, the customers it writes
    next and the attempt that owns it); a unit that ends is owned by no attempt, and its
    page is dropped (the outbox and the state rows now hold what it decided). Its
    recordings (``sync.retier_results``) go: into ``result``, its whole result as it
    stands, or, without one, into its stored result as it ends. A unit that ends has its
    row locked before its recordings are read: a recording under way (which share-locks
    the row first, ``owns``) is waited for and read, a later one finds the unit ended and
    adds nothing; read first, one committed in between was neither read nor deleted."""
    values: dict[str, Any] = {"status": status, "updated_at": now_text()}
    ends = status in ("done", "failed", "abandoned")
    if ends:
        locked_status(conn, ref)
    if result is not None:
        values["result"] = result.to_json()
    elif ends:
        values["result"] = with_recorded(conn, ref, _stored_result(conn, ref))
    if result is not None or ends:
        drop_recorded(conn, ref)
    if budget is not None:
        values["budget"] = budget
    if error is not None:
        values["error"] = error[:500]
    if writing:
        values["writing"] = sorted(writing)
    if attempt is not None:
        values["attempt"] = attempt
    if ends:
        values["records"] = values["writing"] = values["attempt"] = None
    conn.execute(
        retier_units.update()
        .where(retier_units.c.run_id == ref.run_id, retier_units.c.seq == ref.seq)
        .values(**values)
    )


def _stored_result(conn: sa.Connection, ref: UnitRef) -> Json:
    return conn.execute(
        sa.select(retier_units.c.result).where(
            retier_units.c.run_id == ref.run_id, retier_units.c.seq == ref.seq
        )
    ).scalar()


def locked_status(conn: sa.Connection, ref: UnitRef) -> UnitStatus:
    """The unit's status, its row locked until the transaction ends: an attempt marking it
    done meanwhile (``ensure_owner``, exclusive) is waited for, and its status seen."""
    query = (
        sa.select(retier_units.c.status)
        .where(retier_units.c.run_id == ref.run_id, retier_units.c.seq == ref.seq)
        .with_for_update()
    )
    return conn.execute(query).scalar_one()  # type: ignore[no-any-return]


def run_is_running(conn: sa.Connection, run_id: str, *, share_lock: bool = False) -> bool:
    """Whether the run is still running; with ``share_lock``, its row stays share-locked
    until the transaction ends (a unit's commit: ``lock_run``)."""
    query = sa.select(runs.c.status).where(runs.c.id == run_id)
    if share_lock:
        query = query.with_for_update(read=True)
    return conn.execute(query).scalar() == "running"


def lock_run(conn: sa.Connection, run_id: str) -> None:
    """Lock the run's row until the transaction ends: the coordinator finishing the run.
    A unit's commit share-locks it first in its transaction (``run_is_running``), so the
    two never interleave: a commit under way is finished first, and found committed; a
    commit after it finds the run stopped. PostgreSQL row locks; SQLite's store runs
    one write transaction at a time (``BEGIN IMMEDIATE``), which serialises them alike."""
    conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id).with_for_update())


def owns(conn: sa.Connection, ref: UnitRef, attempt: str, *, exclusive: bool = False) -> bool:
    """Whether ``attempt`` still owns the unit (fencing): asked in the transaction that
    records its answers or marks it done, and right before each write call. Only a
    committed unit is taken over; before its commit an attempt is guarded by its
    customers' claims (it may send writes it adopted, ``run_outbox.take_over``). The row
    stays share-locked until the transaction ends (``exclusive``: locked, for a
    transaction that updates it next), so a take-over (which updates it) waits for that
    transaction, or came first and is seen."""
    row = conn.execute(
        sa.select(retier_units.c.status, retier_units.c.attempt)
        .where(retier_units.c.run_id == ref.run_id, retier_units.c.seq == ref.seq)
        .with_for_update(read=not exclusive)
    ).one()
    return bool(row.status == "queued" or (row.status == "committed" and row.attempt == attempt))


def ensure_owner(
    conn: sa.Connection, ref: UnitRef, attempt: str, *, exclusive: bool = False
) -> None:
    """Raise ``UnitTakenOverError`` unless ``attempt`` still owns the unit (``owns``)."""
    if not owns(conn, ref, attempt, exclusive=exclusive):
        raise UnitTakenOverError(f"page unit {ref.seq} was taken over: this attempt stops")


def wait_turn(
    engine: sa.Engine, ref: UnitRef, *, timeout: float, poll: float = 0.02
) -> dict[str, Json] | None:
    """Wait until the unit before ``ref`` has committed; the task budgets it left."""
    deadline = time.monotonic() + timeout
    before = UnitRef(ref.run_id, ref.seq - 1)
    while True:
        with engine.connect() as conn:
            row = conn.execute(
                sa.select(retier_units.c.status, retier_units.c.budget).where(
                    retier_units.c.run_id == before.run_id, retier_units.c.seq == before.seq
                )
            ).one()
            if row.status in ("committed", "done"):
                return row.budget  # type: ignore[no-any-return]
            if row.status in ("failed", "abandoned"):
                raise UnitGivenUpError(f"page unit {before.seq} of the run did not commit")
            if not run_is_running(conn, ref.run_id):
                raise UnitGivenUpError("the run is no longer running")
        if time.monotonic() >= deadline:
            raise TurnTimeoutError(f"page unit {before.seq} has not committed yet")
        time.sleep(poll)


def left_budget(conn: sa.Connection, run_id: str) -> dict[str, Json] | None:
    """The run's task budgets as the last of its units to commit left them (None before
    the first unit): what the coordinator plans from after the units."""
    return conn.execute(
        sa.select(retier_units.c.budget)
        .where(retier_units.c.run_id == run_id, retier_units.c.status == "done")
        .order_by(retier_units.c.seq.desc())
        .limit(1)
    ).scalar()


def progress(conn: sa.Connection, run_id: str) -> Counter[str]:
    """How many of the run's page units (the head left out) stand at each status."""
    query = (
        sa.select(retier_units.c.status, sa.func.count())
        .where(retier_units.c.run_id == run_id, retier_units.c.seq > 0)
        .group_by(retier_units.c.status)
    )
    return Counter({status: int(n) for status, n in conn.execute(query)})


def finished(conn: sa.Connection, run_id: str) -> list[tuple[int, UnitStatus, Json, str | None]]:
    """The run's page units in order: seq, status, result, error."""
    query = (
        sa.select(
            retier_units.c.seq, retier_units.c.status, retier_units.c.result, retier_units.c.error
        )
        .where(retier_units.c.run_id == run_id, retier_units.c.seq > 0)
        .order_by(retier_units.c.seq)
    )
    return [(int(r.seq), r.status, r.result, r.error) for r in conn.execute(query)]
