"""The inputs each customer was last assessed on: what ``simulate`` and ``explain`` replay.

The sync keeps, per customer, the canonical profile it assessed (without ``previous``,
which the committed state gives) and the CRM's write-back values as it read them. With the
committed state (``sync.state``) that is everything an assessment and its plan depend on
besides the policy and the date, so a candidate policy can be run over the whole book from
the store alone, and a decision explained without reading the CRM again.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from connectors.contract import CrmRecord
from sync.schema import INPUTS_MIGRATIONS, assessed_inputs, customers, now_text
from sync.state import CustomerState, _upsert
from sync.store import StateStore
from tiering_core.models import CustomerProfile


def ensure_table(store: StateStore) -> None:
    """Create the table on a store written before it existed (idempotent, cheap)."""
    store.migrate("inputs", INPUTS_MIGRATIONS)


def profile_text(profile: CustomerProfile) -> str:
    """The profile as stored: its inputs, not the hysteresis block the state store keeps."""
    return profile.model_dump_json(exclude={"previous"}, exclude_none=True)


def save_inputs(
    conn: sa.Connection, stream: str, records: Sequence[CrmRecord], as_of: str
) -> None:
    """Upsert the inputs of these assessed records (one statement for the page)."""
    if not records:
        return
    now = now_text()
    rows = {
        r.profile.id: {
            "stream": stream,
            "customer_id": r.profile.id,
            "profile": profile_text(r.profile),
            "current": dict(r.current),
            "as_of": as_of,
            "updated_at": now,
        }
        for r in records
    }
    _upsert(conn, assessed_inputs, list(rows.values()), ("stream", "customer_id"))


@dataclass(frozen=True)
class StoredCustomer:
    """One customer as the store last saw it: inputs, CRM values and committed state."""

    customer_id: str
    pseudonym: str
    profile: CustomerProfile
    current: Mapping[str, Any]
    as_of: str
    state: CustomerState

    def crm_values(self) -> dict[str, Any]:
        """The CRM's write-back values now: as read, then what crmtier has written since."""
        return {**self.current, **(self.state.fields or {})}


def iter_stored(
    store: StateStore, stream: str, *, chunk: int = 20_000, ids: Sequence[str] | None = None
) -> Iterator[list[StoredCustomer]]:
    """The stream's stored customers in CRM id order, ``chunk`` at a time: keyset paging,
    one short transaction a chunk (a long read would hold SQLite's write lock from the
    sync), constant memory on a book of millions; only ``ids`` when given. Tasks and
    memberships are not loaded here (``sync.state.load_states`` gives them for the few
    customers that need them)."""
    last = ""
    query = (
        sa.select(
            assessed_inputs.c.customer_id,
            assessed_inputs.c.profile,
            assessed_inputs.c.current,
            assessed_inputs.c.as_of,
            customers.c.pseudonym,
            customers.c.tiers,
            customers.c.fields,
            customers.c.assessed_at,
            customers.c.below_floor_since,
        )
        .join(
            customers,
            sa.and_(
                customers.c.stream == assessed_inputs.c.stream,
                customers.c.customer_id == assessed_inputs.c.customer_id,
            ),
        )
        .where(assessed_inputs.c.stream == stream)
        .order_by(assessed_inputs.c.customer_id)
    )
    if ids is not None:
        query = query.where(assessed_inputs.c.customer_id.in_(list(ids)))
    while True:
        with store.begin() as conn:
            rows = conn.execute(
                query.where(assessed_inputs.c.customer_id > last).limit(chunk)
            ).all()
        if not rows:
            return
        yield [
            StoredCustomer(
                customer_id=row.customer_id,
                pseudonym=row.pseudonym,
                profile=CustomerProfile.model_validate_json(row.profile),
                current=row.current,
                as_of=row.as_of,
                state=CustomerState(
                    customer_id=row.customer_id,
                    pseudonym=row.pseudonym,
                    tiers=row.tiers,
                    fields=row.fields,
                    assessed_at=row.assessed_at,
                    below_floor_since=row.below_floor_since,
                ),
            )
            for row in rows
        ]
        last = rows[-1].customer_id
