"""Per-customer state: what crmtier last decided and wrote, and the side effects it made.

``customers`` keeps the committed tiers (the ``previous`` block hysteresis needs), the last
written field values and ``below_floor_since``; ``pending`` holds a decision whose writes
are still in the outbox and is promoted to committed when they are done. ``side_effects``
lists the tasks and campaign memberships crmtier made, by dedupe key, so a rerun never
creates them twice and a membership crmtier no longer wants can be removed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa

from sync.bulkwrite import upsert_rows
from sync.days import parse_day
from sync.planner import QUALIFIED_SINCE, QUALIFIED_TIER, Known
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
            tasks=self.tasks, memberships=dict(self.memberships), task_rules=self.task_rules
        )


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
    """Committed state of these customers (absent ids have none yet)."""
    wanted = sorted(set(ids))
    rows: list[tuple[Any, ...]] = []
    tasks: dict[str, set[str]] = {}
    members: dict[str, dict[str, str]] = {}
    rules: dict[str, dict[str, str]] = {}
    for chunk in _chunks(wanted):
        rows += conn.execute(
            sa.select(*_STATE_COLUMNS).where(
                customers.c.stream == stream, customers.c.customer_id.in_(chunk)
            )
        ).tuples()
        for cid, kind, key, campaign, rule in conn.execute(
            sa.select(
                side_effects.c.customer_id,
                side_effects.c.kind,
                side_effects.c.key,
                side_effects.c.campaign,
                side_effects.c.rule,
            ).where(
                side_effects.c.stream == stream,
                side_effects.c.customer_id.in_(chunk),
                side_effects.c.active.is_(True),
            )
        ).tuples():
            if kind == "task":
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
    run_id (a closed task is its row with ``active`` false)."""
    _upsert(conn, side_effects, stream, rows, ("stream", "kind", "key"))
