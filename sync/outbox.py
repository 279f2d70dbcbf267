"""The write outbox and the dead-letter table.

An outbox row is one planned CRM write (a customer's field update, one task upsert, one
membership change, one closure of a task crmtier made). Rows are inserted in the
transaction that moves the bookmark past the record they come from, so a crash after that
commit loses nothing: the next run drains the pending rows before reading on. Rows are
marked ``done`` in the transaction that records the state and audit rows the write
justifies. Re-sending a row whose outcome was lost is safe because every write is
idempotent (field values, upserts by deterministic external id, closing a closed task).

Items that keep failing go to ``dead_letters`` with their error code and attempt count;
every later run fetches those customers again and retries, until the write succeeds or an
operator acknowledges the letter. A row also keeps whether any call of it went unanswered
(``unanswered``): the CRM may have applied it whatever the later attempts answered
(``may_have_landed``), and a task among those stays in doubt in ``side_effects`` until a
write of it is answered (``sync.state.mark_in_doubt``), whatever becomes of its letter.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import sqlalchemy as sa

from connectors.contract import (
    FieldUpdate,
    MembershipChange,
    TaskClose,
    TaskUpsert,
    WriteKind,
    WritePlan,
)
from connectors.errors import UNANSWERED
from sync.bulkwrite import insert_rows, marker, next_ids
from sync.schema import dead_letters, now_text, outbox
from tiering_core.models import TaskAction


@dataclass(frozen=True)
class OutboxItem:
    id: int
    customer_id: str
    kind: WriteKind
    key: str
    payload: dict[str, Any]
    attempts: int
    run_id: str
    trigger: str
    source_event_id: str | None = None
    action: TaskAction | None = None  # the task itself while in memory (saves re-parsing)
    unanswered: bool = False  # some call of it went unanswered (``may_have_landed``)

    def identity(self) -> tuple[str, str, str]:
        """Two items with the same identity would write the same thing."""
        return (self.kind, self.key, repr(sorted(self.payload.items())))


class NewItem(NamedTuple):
    """A write planned, not yet in the outbox. A tuple, as most customers written make one
    and no more: a frozen dataclass's ``__init__`` sets each field with a call of its own
    (six here), several times the cost of a tuple's."""

    customer_id: str
    kind: WriteKind
    key: str
    payload: dict[str, Any]
    source_event_id: str | None = None
    action: TaskAction | None = None

    def identity(self) -> tuple[str, str, str]:
        return (self.kind, self.key, repr(sorted(self.payload.items())))


#: ids per ``set_status`` statement
_IDS_PER_STATEMENT = 500

#: the columns a new item sets, in the order ``enqueue`` gives them (``last_error`` NULL)
_COLUMNS = (
    "id",
    "stream",
    "run_id",
    "customer_id",
    "kind",
    "key",
    "payload",
    "status",
    "attempts",
    "trigger",
    "source_event_id",
    "created_at",
    "updated_at",
)


def enqueue(
    conn: sa.Connection,
    stream: str,
    run_id: str,
    items: Sequence[NewItem],
    *,
    trigger: str,
) -> list[OutboxItem]:
    """Insert ``items`` as pending rows (ids ascending in ``items`` order, as the database
    would number them one by one) in one bulk statement (``sync.bulkwrite``)."""
    if not items:
        return []
    now = now_text()
    ids = next_ids(conn, outbox, len(items))
    insert_rows(
        conn,
        outbox,
        _COLUMNS,
        [
            (
                new_id,
                stream,
                run_id,
                item.customer_id,
                item.kind,
                item.key,
                item.payload,
                "pending",
                0,
                trigger,
                item.source_event_id,
                now,
                now,
            )
            for new_id, item in zip(ids, items, strict=True)
        ],
    )
    return [
        OutboxItem(
            new_id,
            i.customer_id,
            i.kind,
            i.key,
            i.payload,
            0,
            run_id,
            trigger,
            i.source_event_id,
            i.action,
        )
        for new_id, i in zip(ids, items, strict=True)
    ]


def pending(
    conn: sa.Connection,
    stream: str,
    customers: Collection[str] | None = None,
    kinds: Collection[str] | None = None,
) -> list[OutboxItem]:
    """Rows not yet written, oldest first (left by an earlier run that stopped or died, or
    by this run's coordinator, ``sync.retier``); with ``customers``, only theirs; with
    ``kinds``, only those kinds."""
    query = sa.select(outbox).where(outbox.c.stream == stream, outbox.c.status == "pending")
    if customers is not None:
        query = query.where(outbox.c.customer_id.in_(sorted(customers)))
    if kinds is not None:
        query = query.where(outbox.c.kind.in_(sorted(kinds)))
    rows = conn.execute(query.order_by(outbox.c.id))
    return [
        OutboxItem(
            int(r.id),
            r.customer_id,
            r.kind,
            r.key,
            dict(r.payload),
            int(r.attempts),
            r.run_id,
            r.trigger,
            r.source_event_id,
            unanswered=bool(r.unanswered),
        )
        for r in rows
    ]


def adopt(conn: sa.Connection, items: Iterable[OutboxItem], run_id: str) -> None:
    """Label these pending rows with the run about to send them (``run_id``). A row keeps
    the run that queued it until then; were that run one that stopped cleanly (its rows
    never went out) and this one to die while sending them, the next run would take them
    for never sent and re-send them blindly: a task made twice, or a sales task sent to a
    customer sanctioned since (``may_have_landed`` asks ``runs.died`` of the row's run).
    Only rows of runs that did not die are given: a dead run's stay in doubt as they are."""
    ids = sorted(i.id for i in items)
    for start in range(0, len(ids), 500):
        conn.execute(
            outbox.update()
            .where(outbox.c.id.in_(ids[start : start + 500]), outbox.c.status == "pending")
            .values(run_id=run_id)
        )


def set_status(
    conn: sa.Connection,
    ids: Iterable[int],
    status: str,
    *,
    attempts: int | None = None,
    error: str | None = None,
) -> None:
    """Set these items' ``status`` (and ``attempts``, ``last_error``; ``unanswered`` once
    that error is ``UNANSWERED``, never unset), ``updated_at`` now,
    in statements of up to ``_IDS_PER_STATEMENT`` ids straight through the driver, as
    ``sync.bulkwrite`` writes rows: SQLAlchemy's ``in_()`` made every id a bound literal
    of its own, two fifths of the CPU of a run's ``done`` marks (measured: 3.9 -> 2.4 µs an
    item on SQLite, most of the rest the database's own index upkeep)."""
    id_list = list(ids)
    values: dict[str, Any] = {"status": status, "updated_at": now_text()}
    if attempts is not None:
        values["attempts"] = attempts
    if error is not None:
        values["last_error"] = error[:200]
        if error == UNANSWERED:
            values["unanswered"] = True
    quote = conn.dialect.identifier_preparer.quote
    mark = marker(conn.dialect)
    assign = ", ".join(f"{quote(column)} = {mark}" for column in values)
    # identifiers from the table's own metadata, quoted; every value is a bound parameter
    head = f"UPDATE {quote(outbox.name)} SET {assign} WHERE {quote(outbox.c.id.name)} IN ("  # noqa: S608
    for start in range(0, len(id_list), _IDS_PER_STATEMENT):
        chunk = id_list[start : start + _IDS_PER_STATEMENT]
        conn.exec_driver_sql(
            head + ", ".join([mark] * len(chunk)) + ")", (*values.values(), *chunk)
        )


def may_have_landed(item: OutboxItem, run_id: str, died: Collection[str]) -> bool:
    """Whether the CRM may hold this outstanding write though no answer says so: a call of
    it went unanswered (``unanswered``: a timeout may have reached the CRM, whatever the
    later attempts answered), or the run that queued it may have died with it in flight
    (``died``: ``sync.runs.died`` of the runs whose writes were adopted). Not one that was
    never sent (``run_id``'s own, or a stopped run's: its re-send is exact), nor one whose
    every call the CRM answered with a refusal (a locked record: it made nothing). The one
    test of recovery's held sales tasks and of the dispatcher's writes in doubt."""
    return item.unanswered or (item.run_id != run_id and item.run_id in died)


def to_write_plan(
    items: Sequence[OutboxItem], maybe_made: Callable[[OutboxItem], bool]
) -> WritePlan:
    """Items in a fixed kind order; ``apply`` answers one result per item in this order.
    A task the CRM may hold already (``maybe_made``: the run's ``sync.maybe_made``) is
    sent again (``TaskUpsert.resend``): the connector keeps what the CRM's users changed."""
    fields = [FieldUpdate(i.customer_id, i.payload) for i in items if i.kind == "field_update"]
    tasks = [
        TaskUpsert(
            i.customer_id,
            i.action or TaskAction.model_validate(i.payload),
            resend=maybe_made(i),
        )
        for i in items
        if i.kind == "task"
    ]
    members = [
        MembershipChange(i.customer_id, i.payload["campaign"], bool(i.payload["member"]), i.key)
        for i in items
        if i.kind == "membership"
    ]
    closes = [
        TaskClose(i.customer_id, i.key, str(i.payload["rule"]))
        for i in items
        if i.kind == "task_close"
    ]
    return WritePlan(tuple(fields), tuple(tasks), tuple(members), tuple(closes))


def plan_order(items: Sequence[OutboxItem]) -> list[OutboxItem]:
    rank = {"field_update": 0, "task": 1, "membership": 2, "task_close": 3}
    return sorted(items, key=lambda i: rank[i.kind])


# --- dead letters ---------------------------------------------------------------------


def dead_letter(
    conn: sa.Connection,
    stream: str,
    item: OutboxItem,
    *,
    pseudonym: str,
    error_code: str,
    reason: str,
    run_id: str,
) -> None:
    """Open (or refresh) the dead letter of this item."""
    now = now_text()
    where = (
        dead_letters.c.stream == stream,
        dead_letters.c.kind == item.kind,
        dead_letters.c.key == item.key,
        dead_letters.c.status == "open",
    )
    values = {
        "error_code": error_code[:64],
        "reason": reason[:300],
        "attempts": item.attempts,
        "run_id": run_id,
        "last_at": now,
    }
    if not conn.execute(dead_letters.update().where(*where).values(**values)).rowcount:
        conn.execute(
            dead_letters.insert().values(
                stream=stream,
                customer_id=item.customer_id,
                pseudonym=pseudonym,
                kind=item.kind,
                key=item.key,
                status="open",
                first_at=now,
                **values,
            )
        )


def open_dead_letter_customers(conn: sa.Connection, stream: str) -> list[str]:
    return sorted(
        {
            str(cid)
            for cid in conn.execute(
                sa.select(dead_letters.c.customer_id).where(
                    dead_letters.c.stream == stream, dead_letters.c.status == "open"
                )
            ).scalars()
        }
    )


def resolve_dead_letters(
    conn: sa.Connection,
    stream: str,
    customer_ids: Iterable[str],
    status: str = "resolved",
) -> None:
    """Close these customers' open letters: their writes all went through (``resolved``),
    or their newer decision writes nothing (``superseded``: the CRM shows what it wants;
    a lettered write no longer wanted is not to be retried, and one still wanted would
    be planned again). A task in doubt stays so whatever becomes of its letter
    (``sync.state.mark_in_doubt``)."""
    ids = sorted(set(customer_ids))
    for start in range(0, len(ids), 500):
        conn.execute(
            dead_letters.update()
            .where(
                dead_letters.c.stream == stream,
                dead_letters.c.customer_id.in_(ids[start : start + 500]),
                dead_letters.c.status == "open",
            )
            .values(status=status, last_at=now_text())
        )


def ack_dead_letters(conn: sa.Connection, stream: str, ids: Sequence[int] | None) -> int:
    """Operator acknowledgement: stop retrying these letters (all open ones when None)."""
    query = dead_letters.update().where(
        dead_letters.c.stream == stream, dead_letters.c.status == "open"
    )
    if ids is not None:
        query = query.where(dead_letters.c.id.in_(list(ids)))
    return int(conn.execute(query.values(status="acked", last_at=now_text())).rowcount)


def letter_statuses(conn: sa.Connection, stream: str, ids: Sequence[int]) -> dict[int, str]:
    """These letters' statuses (``open``, ``resolved``, ``superseded``, ``acked``) by id;
    an id the stream has no letter of is absent."""
    letter = dead_letters.c
    query = sa.select(letter.id, letter.status).where(
        letter.stream == stream, letter.id.in_(sorted(set(ids)))
    )
    return {int(i): str(status) for i, status in conn.execute(query).tuples()}


def list_dead_letters(
    conn: sa.Connection, stream: str, customer: str | None = None
) -> list[dict[str, Any]]:
    """Open letters, oldest first; only ``customer``'s (CRM record id or pseudonym) if given."""
    query = (
        sa.select(dead_letters)
        .where(dead_letters.c.stream == stream, dead_letters.c.status == "open")
        .order_by(dead_letters.c.id)
    )
    if customer is not None:
        query = query.where(
            sa.or_(dead_letters.c.customer_id == customer, dead_letters.c.pseudonym == customer)
        )
    return [dict(r._mapping) for r in conn.execute(query)]
