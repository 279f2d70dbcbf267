"""The inputs each customer was last assessed on: what ``simulate`` and ``explain`` replay.

The sync keeps, per customer, the canonical profile it assessed (without ``previous``,
which the committed state gives) and the CRM's write-back values as it read them. With the
committed state (``sync.state``) that is everything an assessment and its plan depend on
besides the policy and the date, so a candidate policy can be run over the whole book from
the store alone, and a decision explained without reading the CRM again. This module owns
the table (writing a page's inputs, reading them back by chunk); the engine's columns
laid out straight from the stored JSON are ``sync.stored_columns``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, cast

import sqlalchemy as sa

from connectors.contract import CrmRecord
from sync.bulkwrite import decoder, upsert_rows
from sync.days import day_text, parse_day
from sync.schema import INPUTS_MIGRATIONS, assessed_inputs, customers, now_text
from sync.state import CustomerState
from sync.store import StateStore
from tiering_core.models import CustomerProfile


def ensure_table(store: StateStore) -> None:
    """Create the table on a store written before it existed (idempotent, cheap)."""
    store.migrate("inputs", INPUTS_MIGRATIONS)


def profile_text(profile: CustomerProfile) -> str:
    """The profile as stored: its inputs, not the hysteresis block the state store keeps."""
    # the model's serializer called straight (as ``sync.reader.input_hash`` does): same text
    text: bytes = CustomerProfile.__pydantic_serializer__.to_json(
        profile, exclude=_NOT_STORED, exclude_none=True
    )
    return text.decode("utf-8")


_NOT_STORED = {"previous"}  # read only


def save_inputs(conn: sa.Connection, stream: str, records: Sequence[CrmRecord], as_of: str) -> None:
    """Upsert the inputs of these assessed records (one statement for the page), stamped
    ``updated_at`` now; of a customer read twice in a page, the last read counts. Each
    record becomes its row's tuple straight (no dict a row first, no grouping by columns:
    every row has them all)."""
    if not records:
        return
    now = now_text()
    rows = [
        (stream, r.profile.id, profile_text(r.profile), dict(r.current), as_of, now)
        for r in records
    ]
    upsert_rows(conn, assessed_inputs, _INPUT_COLUMNS, rows, ("stream", "customer_id"))


#: the ``assessed_inputs`` columns in the order ``save_inputs`` gives them
_INPUT_COLUMNS = ("stream", "customer_id", "profile", "current", "as_of", "updated_at")


@dataclass(frozen=True)
class StoredCustomer:
    """One customer as the store last saw it: inputs, CRM values and committed state."""

    customer_id: str
    pseudonym: str
    profile_json: str
    current: Mapping[str, Any]
    as_of: str
    state: CustomerState

    @cached_property
    def profile(self) -> CustomerProfile:
        """The stored inputs, validated."""
        return CustomerProfile.model_validate_json(self.profile_json)

    def assessed(self) -> CustomerProfile:
        """The profile as the engine assesses it: with the committed state as ``previous``."""
        return self.profile.model_copy(update={"previous": self.state.previous()})

    def crm_values(self) -> dict[str, Any]:
        """The CRM's write-back values now: as read, then what crmtier has written since."""
        return {**self.current, **(self.state.fields or {})}

    def crm_value(self, name: str) -> Any:
        """One of ``crm_values()``, without building them all."""
        fields = self.state.fields or {}
        return fields[name] if name in fields else self.current.get(name)


class StoredJSON(Mapping[str, Any]):
    """A stored JSON object, decoded the first time it is read.

    ``simulate`` reads a million customers, and most of their CRM values (``current``,
    the committed ``fields``) are never looked at: decoding them up front was a fifth of
    the run. ``decode`` is the column's own result processing (its JSON codec, and its
    decryption in an encrypted store), so a value reads exactly as SQLAlchemy would read
    it."""

    __slots__ = ("_decode", "_raw", "_value")

    def __init__(self, raw: Any, decode: Callable[[Any], Any] | None) -> None:
        self._raw, self._decode, self._value = raw, decode, None

    @property
    def value(self) -> Mapping[str, Any]:
        if self._value is None:
            value = self._raw if self._decode is None else self._decode(self._raw)
            self._value = value if value is not None else {}
        return cast("Mapping[str, Any]", self._value)

    def __getitem__(self, key: str) -> Any:
        return self.value[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.value.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.value

    def __iter__(self) -> Iterator[str]:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)


@dataclass
class StoredChunk:
    """A chunk of stored customers as columns (one list a stored column), as ``simulate``
    reads a whole book: the columns it needs for every customer (the profile texts, the
    committed tiers, the day assessed) straight from the rows, a ``StoredCustomer`` built
    only for the few it plans (``customer``). Building one per customer up front cost as
    much as reading the rows."""

    ids: Sequence[str]
    pseudonyms: Sequence[str]
    profiles: Sequence[str]
    current: Sequence[Any]  # raw, decoded by ``decode_current`` when read
    as_of: Sequence[str]
    tiers: Sequence[Mapping[str, str] | None]
    fields: Sequence[Any]  # raw, decoded by ``decode_fields`` when read
    assessed_at: Sequence[str | None]
    below_floor_since: Sequence[str | None]
    decode_current: Callable[[Any], Any] | None = None
    decode_fields: Callable[[Any], Any] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def of(cls, customers: Sequence[StoredCustomer]) -> StoredChunk:
        """Customers already built (read from the CRM, or a test's) as a chunk."""
        return cls(
            [c.customer_id for c in customers],
            [c.pseudonym for c in customers],
            [c.profile_json for c in customers],
            [c.current for c in customers],
            [c.as_of for c in customers],
            [c.state.tiers for c in customers],
            [c.state.fields for c in customers],
            [day_text(c.state.assessed_at) for c in customers],
            [day_text(c.state.below_floor_since) for c in customers],
        )

    @classmethod
    def joined(cls, first: StoredChunk, then: Sequence[StoredChunk]) -> StoredChunk:
        """``first``'s customers followed by ``then``'s. Raw CRM values stay raw when every
        part decodes them alike (all read from one store); otherwise each part's are
        wrapped to decode on their own (a chunk read from the CRM beside stored ones)."""
        parts = [first, *then]
        alike = all(
            (p.decode_current, p.decode_fields) == (first.decode_current, first.decode_fields)
            for p in parts
        )

        def column(name: str) -> list[Any]:
            return [x for part in parts for x in getattr(part, name)]

        def values(name: str, decoder: str) -> list[Any]:
            if alike:
                return column(name)
            return [
                x
                if x is None or getattr(p, decoder) is None
                else StoredJSON(x, getattr(p, decoder))
                for p in parts
                for x in getattr(p, name)
            ]

        return cls(
            column("ids"),
            column("pseudonyms"),
            column("profiles"),
            values("current", "decode_current"),
            column("as_of"),
            column("tiers"),
            values("fields", "decode_fields"),
            column("assessed_at"),
            column("below_floor_since"),
            decode_current=first.decode_current if alike else None,
            decode_fields=first.decode_fields if alike else None,
        )

    def customer(self, i: int) -> StoredCustomer:
        fields = self.fields[i]
        return StoredCustomer(
            self.ids[i],
            self.pseudonyms[i],
            self.profiles[i],
            StoredJSON(self.current[i], self.decode_current),
            self.as_of[i],
            CustomerState(
                customer_id=self.ids[i],
                pseudonym=self.pseudonyms[i],
                tiers=self.tiers[i],
                fields=None if fields is None else StoredJSON(fields, self.decode_fields),
                assessed_at=parse_day(self.assessed_at[i]),
                below_floor_since=parse_day(self.below_floor_since[i]),
            ),
        )

    def crm_value(self, i: int, name: str) -> Any:
        """``StoredCustomer.crm_value`` of the ``i``-th customer, decoding only what it
        must (the committed fields, the CRM's values only when those lack ``name``)."""
        if self.fields[i] is not None:
            fields = StoredJSON(self.fields[i], self.decode_fields)
            if name in fields:
                return fields[name]
        return StoredJSON(self.current[i], self.decode_current).get(name)


def iter_chunks(
    store: StateStore, stream: str, *, chunk: int = 20_000, ids: Sequence[str] | None = None
) -> Iterator[StoredChunk]:
    """The stream's stored customers in CRM id order, ``chunk`` at a time, as columns:
    keyset paging, one short transaction a chunk (a long read would hold SQLite's write
    lock from the sync), constant memory on a book of millions; only ``ids`` when given.
    Tasks and memberships are not loaded here (``sync.state.load_states`` gives them for
    the few customers that need them). The CRM values are decoded when first read; the
    committed tiers, a few hundred distinct texts in a whole book, once each."""
    dialect = store.engine.dialect
    current, fields = (assessed_inputs.c.current, customers.c.fields)
    decode_tiers = decoder(customers.c.tiers, dialect)
    decoded: dict[Any, Any] = {None: None}

    def tiers(raw: Any) -> Any:
        if decode_tiers is None or not isinstance(raw, str):
            return raw if decode_tiers is None or raw is None else decode_tiers(raw)
        if raw not in decoded:
            decoded[raw] = decode_tiers(raw)
        return decoded[raw]

    query = (
        sa.select(
            assessed_inputs.c.customer_id,
            customers.c.pseudonym,
            assessed_inputs.c.profile,
            sa.type_coerce(current, sa.Text),
            assessed_inputs.c.as_of,
            sa.type_coerce(customers.c.tiers, sa.Text),
            sa.type_coerce(fields, sa.Text),
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
    last = ""
    while True:
        with store.begin() as conn:
            rows = conn.execute(
                query.where(assessed_inputs.c.customer_id > last).limit(chunk)
            ).all()
        if not rows:
            return
        cid, pseudonym, profile, current_raw, as_of, tiers_raw, fields_raw, at, below = zip(
            *rows, strict=True
        )
        yield StoredChunk(
            cid,
            pseudonym,
            profile,
            current_raw,
            as_of,
            [tiers(t) for t in tiers_raw],
            fields_raw,
            at,
            below,
            decode_current=decoder(current, dialect),
            decode_fields=decoder(fields, dialect),
        )
        last = rows[-1][0]


def iter_stored(
    store: StateStore, stream: str, *, chunk: int = 20_000, ids: Sequence[str] | None = None
) -> Iterator[list[StoredCustomer]]:
    """``iter_chunks``, each customer built (``explain``, and tests, read a few)."""
    for part in iter_chunks(store, stream, chunk=chunk, ids=ids):
        yield [part.customer(i) for i in range(len(part))]
