"""Per-customer state: what crmtier last decided and wrote, and the side effects it made.

``customers`` keeps the committed tiers (the ``previous`` block hysteresis needs), the last
written field values and ``below_floor_since``; ``pending`` holds a decision whose writes
are still in the outbox and is promoted to committed when they are done. ``side_effects``
lists the tasks and campaign memberships crmtier made, by dedupe key, so a rerun never
creates them twice and a membership crmtier no longer wants can be removed; and the tasks
and memberships it may have made (``in_doubt``: a write call of them went unanswered), so
that a sanctions hit closes or removes them too (``planner.closures_of``,
``withdrawn_memberships``) until a write of them is answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from sync.bulkwrite import decoder, marker, upsert_rows
from sync.days import parse_day
from sync.outbox import OutboxItem, may_have_landed, pending
from sync.planner import QUALIFIED_SINCE, QUALIFIED_TIER, SALES_TASK_RULES, Known
from sync.runs import died
from sync.schema import customers, now_text, side_effects
from tiering_core.models import Previous

_CHUNK = 500


@dataclass(frozen=True)
class CustomerState:
    customer_id: str
    pseudonym: str
    tiers: Mapping[str, str] | None = None
    fields: Mapping[str, Any] | None = None
    assessed_at: date | None = None
    below_floor_since: date | None = None
    input_hash: str | None = None
    pending: Mapping[str, Any] | None = None
    # the run that last decided the customer (parked or recorded a decision): a run
    # knows by it which customers it has already decided (``PagePlanner.settled``)
    run_id: str | None = None
    # the last ``override`` audit row's value (``sync.overrides``)
    override: Mapping[str, Any] | None = None
    tasks: frozenset[str] = frozenset()
    memberships: Mapping[str, str] = field(default_factory=dict)
    task_rules: Mapping[str, str] = field(default_factory=dict)  # open task key -> rule
    # key -> rule of the tasks a write call of which went unanswered, not made since
    tasks_in_doubt: Mapping[str, str] = field(default_factory=dict)
    # campaign -> key of the membership adds alike, neither made nor removed since
    memberships_in_doubt: Mapping[str, str] = field(default_factory=dict)

    def previous(self) -> Previous | None:
        """The ``previous`` block for hysteresis: the committed decision, if any."""
        if self.tiers is None and self.below_floor_since is None:
            return None
        tiers = self.tiers or {}
        return Previous(
            value_tier=tiers.get("value_tier"),
            needs_tier=tiers.get("needs_tier"),
            credit_risk=tiers.get("credit_risk"),
            aml_risk=tiers.get("aml_risk"),
            ops_risk=tiers.get("ops_risk"),
            assessed_at=self.assessed_at,
            below_floor_since=self.below_floor_since,
            qualified_value_tier=tiers.get(QUALIFIED_TIER),
            qualified_below_floor_since=parse_day(tiers.get(QUALIFIED_SINCE)),
        )

    def known(self) -> Known:
        return Known(
            tasks=self.tasks,
            memberships=dict(self.memberships),
            in_doubt=self.memberships_in_doubt,
            task_rules=self.task_rules,
            tasks_in_doubt=self.tasks_in_doubt,
        )


#: the ``side_effects`` columns ``load_states`` reads, in the order it unpacks them
_EFFECT_COLUMNS = ("customer_id", "kind", "key", "campaign", "rule", "active")


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(ids), _CHUNK):
        yield ids[start : start + _CHUNK]


#: the columns a ``CustomerState`` is made of
_STATE_COLUMNS = (
    customers.c.customer_id,
    customers.c.pseudonym,
    customers.c.tiers,
    customers.c.fields,
    customers.c.assessed_at,
    customers.c.below_floor_since,
    customers.c.input_hash,
    customers.c.pending,
    customers.c.run_id,
    customers.c.override,
)


def load_states(conn: sa.Connection, stream: str, ids: Iterable[str]) -> dict[str, CustomerState]:
    """Committed state of these customers (absent ids have none yet). Both queries are the
    driver's own SQL, each column's value through its type's result processing (its JSON
    codec, its decryption in an encrypted store: what SQLAlchemy's select returned): the
    select's expanding ``IN`` and its row processing cost about as much as the rows'
    decoding (a page's 2,000 customers holding state: 15 µs a customer for the customers
    query, 3 µs without them; docs/operations.md, "Loading a page's state")."""
    wanted = sorted(set(ids))
    rows: list[tuple[Any, ...]] = []
    tasks: dict[str, set[str]] = {}
    members: dict[str, dict[str, str]] = {}
    rules: dict[str, dict[str, str]] = {}
    doubted: dict[str, dict[str, str]] = {}
    members_doubted: dict[str, dict[str, str]] = {}
    dialect = conn.dialect
    mark, quote = marker(dialect), dialect.identifier_preparer.quote
    decoders = [decoder(column, dialect) for column in _STATE_COLUMNS]
    state_sql = (  # identifiers from the tables' metadata, quoted; the values bound
        f"SELECT {', '.join(quote(c.name) for c in _STATE_COLUMNS)} FROM {quote(customers.name)} "  # noqa: S608
        f"WHERE {quote('stream')} = {mark} AND {quote('customer_id')} IN "
    )
    effect_sql = (
        f"SELECT {', '.join(map(quote, _EFFECT_COLUMNS))} FROM {quote(side_effects.name)} "  # noqa: S608
        f"WHERE {quote('stream')} = {mark} AND {quote('customer_id')} IN ({{}}) "
        f"AND ({quote('active')} = {mark} OR {quote('in_doubt')} = {mark})"
    )
    for chunk in _chunks(wanted):
        marks = ", ".join([mark] * len(chunk))
        raw = conn.exec_driver_sql(f"{state_sql}({marks})", (stream, *chunk)).all()
        if raw:
            by_column: list[Any] = list(zip(*raw, strict=True))
            for i, decode in enumerate(decoders):
                if decode is not None:
                    by_column[i] = map(decode, by_column[i])
            rows += zip(*by_column, strict=True)
        effects = conn.exec_driver_sql(effect_sql.format(marks), (stream, *chunk, True, True))
        for cid, kind, key, campaign, rule, active in effects:
            if not active:  # in doubt alone
                if kind == "membership":
                    members_doubted.setdefault(cid, {})[campaign] = key
                elif rule:
                    doubted.setdefault(cid, {})[key] = rule
            elif kind == "task":
                tasks.setdefault(cid, set()).add(key)
                if rule:
                    rules.setdefault(cid, {})[key] = rule
            else:
                members.setdefault(cid, {})[campaign] = key
    empty: frozenset[str] = frozenset()
    return {
        cid: CustomerState(
            customer_id=cid,
            pseudonym=pseudonym,
            tiers=tiers,
            fields=fields,
            assessed_at=parse_day(assessed_at),
            below_floor_since=parse_day(below_floor_since),
            input_hash=input_hash,
            pending=pending,
            run_id=run_id,
            override=override,
            tasks=frozenset(tasks[cid]) if cid in tasks else empty,
            memberships=members.get(cid, {}),
            task_rules=rules.get(cid, {}),
            tasks_in_doubt=doubted.get(cid, {}),
            memberships_in_doubt=members_doubted.get(cid, {}),
        )
        for (
            cid,
            pseudonym,
            tiers,
            fields,
            assessed_at,
            below_floor_since,
            input_hash,
            pending,
            run_id,
            override,
        ) in rows
    }


def _upsert(
    conn: sa.Connection,
    table: sa.Table,
    stream: str,
    rows: list[dict[str, Any]],
    keys: tuple[str, ...],
) -> None:
    """Insert-or-update many rows of ``stream`` in bulk (``sync.bulkwrite``), stamped
    ``updated_at`` now; rows that carry the same columns share a statement. A new row takes
    the given ``pseudonym``, an existing one keeps its own. Each row becomes its tuple
    straight, with no widened copy of its dict first."""
    now = now_text()
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    for columns, group in groups.items():
        values = [(stream, *row.values(), now) for row in group]
        names = ("stream", *columns, "updated_at")
        upsert_rows(conn, table, names, values, keys, keep=("pseudonym",))


def save_states(conn: sa.Connection, stream: str, rows: list[dict[str, Any]]) -> None:
    """Upsert customer rows; each row has ``customer_id`` and ``pseudonym`` plus the same
    state columns (a new row takes the pseudonym, an existing one keeps its own)."""
    _upsert(conn, customers, stream, rows, ("stream", "customer_id"))


def save_side_effects(conn: sa.Connection, stream: str, rows: list[dict[str, Any]]) -> None:
    """Upsert made tasks/memberships: rows of kind, key, customer_id, campaign, rule, active,
    in_doubt, run_id (a closed task is its row with ``active`` false; a written one is no
    longer in doubt, ``in_doubt`` None)."""
    _upsert(conn, side_effects, stream, rows, ("stream", "kind", "key"))


#: the columns of an ``in_doubt`` mark, as ``mark_in_doubt`` gives them
_MARK_COLUMNS = (
    "stream", "kind", "key", "customer_id", "campaign", "rule", "run_id", "active", "in_doubt",
    "updated_at",
)  # fmt: skip


def doubtable(item: OutboxItem) -> bool:
    """A task or a membership add: what the CRM may hold once a call of it went
    unanswered, so ``mark_in_doubt`` marks it."""
    return item.kind == "task" or (item.kind == "membership" and bool(item.payload["member"]))


def mark_in_doubt(
    conn: sa.Connection, stream: str, items: Sequence[OutboxItem], run_id: str
) -> None:
    """These tasks' and membership adds' write calls went unanswered: the CRM may hold
    them. Each is in doubt (``in_doubt``) until a write of it is answered, made, closed or
    removed (its ``save_side_effects`` row clears the mark), whatever becomes of its
    outbox row and dead letter: a newer decision that no longer wants it, an operator's
    ``ack`` or a later refusal of it (the CRM answered that call; the unanswered one may
    have made it) say nothing of whether the CRM holds it. One on record keeps its
    ``active``."""
    now = now_text()
    marks = [
        (
            stream,
            "task" if i.kind == "task" else "membership",
            i.key,
            i.customer_id,
            None if i.kind == "task" else i.payload["campaign"],
            i.payload.get("rule") if i.kind == "task" else None,
            run_id,
        )
        for i in items
    ]
    upsert_rows(
        conn,
        side_effects,
        _MARK_COLUMNS,
        [(*mark, False, True, now) for mark in marks],
        ("stream", "kind", "key"),
        keep=("active",),
    )


@dataclass(frozen=True)
class Withdrawable:
    """What the store says crmtier made, or may have made, that a sanctions hit withdraws
    whatever the write switches (``planner.closures_of``, ``withdrawn_memberships``): the
    open or in-doubt sales tasks, and the memberships (made or in doubt) by campaign. The
    start-up gate asks for the sales tasks only while tasks are off, for the memberships
    at every start (a campaign without a CRM id: ``sync.write_readiness``)."""

    sales_tasks: int = 0
    memberships: Mapping[str, int] = field(default_factory=dict)  # campaign -> count


def withdrawable(conn: sa.Connection, stream: str, *, tasks: bool) -> Withdrawable:
    """``Withdrawable`` of ``stream``: its memberships always, its sales tasks when
    ``tasks`` is asked (one query each)."""
    effect = side_effects.c
    of_stream = effect.stream == stream
    sales = 0
    if tasks:
        sales = conn.execute(
            sa.select(sa.func.count()).where(
                of_stream,
                effect.kind == "task",
                effect.rule.in_(sorted(SALES_TASK_RULES)),
                sa.or_(effect.active.is_(True), effect.in_doubt.is_(True)),
            )
        ).scalar_one()
    rows = conn.execute(
        sa.select(effect.campaign, sa.func.count())
        .where(
            of_stream,
            effect.kind == "membership",
            sa.or_(effect.active.is_(True), effect.in_doubt.is_(True)),
        )
        .group_by(effect.campaign)
    ).tuples()
    members = {str(campaign): int(n) for campaign, n in rows}
    for campaign in _queued_adds_in_doubt(conn, stream):
        members[campaign] = members.get(campaign, 0) + 1
    return Withdrawable(int(sales), members)


def _queued_adds_in_doubt(conn: sa.Connection, stream: str) -> list[str]:
    """The campaign of each membership add an earlier run left queued whose call may have
    reached the CRM (``outbox.may_have_landed``: unanswered, or its run died). Recovery
    marks such an add in doubt only after the start gate has counted ``side_effects``, and
    supersedes it where the campaign now takes no member: without it here, a campaign
    switched off since would pass the gate, and a customer sanctioned in that run would
    stay in it until the next start. Few rows: what a stopped run left queued."""
    adds = [i for i in pending(conn, stream, kinds=("membership",)) if doubtable(i)]
    dead = died(conn, {i.run_id for i in adds})
    return [str(i.payload["campaign"]) for i in adds if may_have_landed(i, "", dead)]
