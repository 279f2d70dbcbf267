"""CRM limits held in the PostgreSQL state store, so N workers share one limit.

``connectors/limits.py`` says why and which vendor limits these are. Here is how, with the
database clock as the one clock of every host:

* **Slots** (FXiaoke's calls per window, Salesforce's concurrent calls): a limit of N is N
  rows, ``(name, slot, free_at)``. Taking a slot is one statement: pick a row whose
  ``free_at`` has passed (``FOR UPDATE SKIP LOCKED``, so takers never queue on each other)
  and set ``free_at = now + lease``. Giving it back after the call sets ``free_at = now +
  window``. Any N+1 calls of one name therefore share a row, and the later started at least
  a window after the earlier *ended*: at most N calls in any window, exactly as the
  in-process ``SlidingWindowLimiter`` guarantees, now across processes and hosts. With
  ``window=0`` the rows are concurrency slots. A holder killed mid-call never gives its
  row back; the row frees itself when the lease runs out, so the lease must outlast the
  longest call plus the window (``lease`` below).
* **Quota** (Zoho credits per 24 h): one row per ``(name, period)`` whose ``used`` is raised
  by an ``INSERT .. ON CONFLICT DO UPDATE .. WHERE used + cost <= limit`` that grants a
  block, or what is left below the limit: atomic, one round trip, never past the limit.
  A process takes a *block* of units at a time and
  spends it locally, so most calls cost no round trip; a block not spent by the end of its
  period is dropped, never carried over, and a killed process's unspent block is simply
  lost to the period (the limit errs on the safe side).

No statement here calls the CRM; ``round_trips`` counts this module's own statements (the
bench divides it by CRM calls).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from connectors import limits
from sync.migration_steps import Migration
from sync.store import StateStore

_meta = sa.MetaData()
slot_rows = sa.Table(
    "crm_limit_slots",
    _meta,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("slot", sa.Integer, primary_key=True),
    sa.Column("free_at", sa.Float(53), nullable=False, server_default="0"),
    sa.Column("holder", sa.String(64)),
)
quota_rows = sa.Table(
    "crm_limit_quota",
    _meta,
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("period", sa.BigInteger, primary_key=True),
    sa.Column("used", sa.BigInteger, nullable=False),
    sa.Column("granted", sa.BigInteger, nullable=False),  # what the last taker got
)

MIGRATIONS = (
    Migration(
        1,
        "crm_limit_slots, crm_limit_quota: CRM call slots and credit budgets that every "
        "worker on the store shares",
        lambda conn: _meta.create_all(conn, checkfirst=True),
    ),
)

_NOW = "extract(epoch FROM clock_timestamp())"
_TAKE_SLOT = sa.text(f"""
WITH pick AS (
    SELECT slot FROM crm_limit_slots
    WHERE name = :name AND slot < :limit AND free_at <= {_NOW}
    ORDER BY free_at LIMIT 1 FOR UPDATE SKIP LOCKED
), took AS (
    UPDATE crm_limit_slots s SET free_at = {_NOW} + :lease, holder = :holder
    FROM pick WHERE s.name = :name AND s.slot = pick.slot
    RETURNING s.slot
)
SELECT (SELECT slot FROM took) AS slot,
       (SELECT min(free_at) FROM crm_limit_slots WHERE name = :name AND slot < :limit)
         - {_NOW} AS wait
""")  # noqa: S608 (no value is pasted in: _NOW is a constant expression)
_GIVE_SLOT = sa.text(f"""
UPDATE crm_limit_slots SET free_at = {_NOW} + :window, holder = NULL
WHERE name = :name AND slot = :slot AND holder = :holder
""")  # noqa: S608
_MAKE_SLOTS = sa.text("""
INSERT INTO crm_limit_slots (name, slot, free_at)
SELECT :name, g, 0 FROM generate_series(0, :limit - 1) AS g
ON CONFLICT DO NOTHING
""")
_TAKE_UNITS = sa.text(f"""
INSERT INTO crm_limit_quota (name, period, used, granted)
SELECT :name, floor({_NOW} / :period)::bigint, least(:n, :limit), least(:n, :limit)
WHERE :cost <= :limit
ON CONFLICT (name, period) DO UPDATE
SET used = crm_limit_quota.used + least(:n, :limit - crm_limit_quota.used),
    granted = least(:n, :limit - crm_limit_quota.used)
WHERE crm_limit_quota.used + :cost <= :limit
RETURNING granted, (crm_limit_quota.period + 1) * :period - {_NOW} AS left_s
""")


class PgLimits:
    """``SharedLimits`` on a PostgreSQL engine.

    ``lease``: how long a taken slot stays taken if its holder never gives it back (killed):
    longer than the longest CRM call plus the window (the CRMs' read timeouts are at most
    600 s, ``connectors/settings.py``). ``poll``: the longest a waiting taker sleeps before
    asking again (a slot given back early is seen within it). ``block``: quota units a
    process takes per round trip.
    """

    def __init__(
        self,
        engine: sa.Engine,
        *,
        lease: float = 660.0,
        poll: float = 0.05,
        block: int = 10,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        # each statement is atomic on its own: no BEGIN/COMMIT round trips around it
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.lease = lease
        self.poll = poll
        self.block = block
        self.sleep = sleep
        self._trip_lock = threading.Lock()
        self.round_trips = 0
        self.waits = 0

    def slots(self, name: str, limit: int, window: float) -> PgSlots:
        if limit < 1 or window < 0:
            raise ValueError(f"limit {name}: needs limit >= 1 and window >= 0")
        return PgSlots(self, name, limit, window)

    def quota(self, name: str, limit: int, period: float) -> PgQuota:
        if limit < 1 or period <= 0:
            raise ValueError(f"quota {name}: needs limit >= 1 and period > 0")
        return PgQuota(self, name, limit, period)

    def execute(
        self, statement: sa.TextClause, **params: object
    ) -> sa.Row[tuple[object, ...]] | None:
        """One statement in its own transaction: one round trip, counted."""
        with self._trip_lock:
            self.round_trips += 1
        with self._autocommit.connect() as conn:
            result = conn.execute(statement, params)
            return result.first() if result.returns_rows else None


class PgSlots:
    """N call slots per key of ``name`` (FXiaoke counts per interface: the key)."""

    def __init__(self, owner: PgLimits, name: str, limit: int, window: float) -> None:
        self.owner = owner
        self.name = name
        self.limit = limit
        self.window = window
        self._made: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, key: str) -> Iterator[None]:
        row = f"{self.name}:{key}"
        self._make(row)
        taken = self._take(row)
        try:
            yield
        finally:
            self.owner.execute(_GIVE_SLOT, name=row, window=self.window, **taken.params())

    def _make(self, row: str) -> None:
        with self._lock:
            if row in self._made:
                return
            self.owner.execute(_MAKE_SLOTS, name=row, limit=self.limit)
            self._made.add(row)

    def _take(self, row: str) -> _Taken:
        lease = self.owner.lease + self.window
        while True:
            holder = f"{os.getpid()}:{uuid.uuid4().hex[:16]}"
            got = self.owner.execute(
                _TAKE_SLOT, name=row, limit=self.limit, lease=lease, holder=holder
            )
            if got is not None and got.slot is not None:
                return _Taken(int(got.slot), holder)
            self.owner.waits += 1
            wait = float(got.wait) if got is not None and got.wait is not None else 0.0
            self.owner.sleep(max(self._pause(wait), 0.002))

    def _pause(self, wait: float) -> float:
        """How long to sleep before asking again. With a window, no slot can free sooner
        than the earliest ``free_at`` nor sooner than a window from now (a call still in
        flight frees its slot a window after it ends), so sleep until then: no polling.
        Concurrency slots free the moment a call ends, so ask again every ``poll``."""
        if self.window > 0:
            return min(wait, self.window)
        return min(wait, self.owner.poll)


@dataclass(frozen=True)
class _Taken:
    slot: int
    holder: str

    def params(self) -> dict[str, object]:
        return {"slot": self.slot, "holder": self.holder}


class PgQuota:
    """``limit`` units per ``period`` seconds of the database clock, taken in blocks."""

    def __init__(self, owner: PgLimits, name: str, limit: int, period: float) -> None:
        self.owner = owner
        self.name = name
        self.limit = limit
        self.period = period
        self._left = 0  # units taken from the store and not yet spent
        self._until = 0.0  # monotonic time the block's period ends
        self._lock = threading.Lock()

    def take(self, cost: int) -> bool:
        if cost <= 0:
            return True
        with self._lock:
            if time.monotonic() >= self._until:
                self._left = 0  # a block never outlives its period
            while self._left < cost:
                if not self._refill(cost - self._left):
                    return False
            self._left -= cost
            return True

    def _refill(self, short: int) -> bool:
        """Take a block from the store: ``block`` units, or what is left of the period's
        limit if less, and at least ``short``. A block of a later period than the one in
        hand replaces it (units are never carried into another period)."""
        got = self.owner.execute(
            _TAKE_UNITS,
            name=self.name,
            period=self.period,
            n=max(short, self.owner.block),
            cost=short,
            limit=self.limit,
        )
        if got is None or int(got.granted) < short:  # refused (never short when granted)
            return False
        until = time.monotonic() + float(got.left_s)
        if until > self._until + 1.0:
            self._left = 0
        self._left += int(got.granted)
        self._until = until
        return True


def share(store: StateStore) -> PgLimits | None:
    """Install limits shared through ``store`` when it is PostgreSQL (several workers may
    use it); the embedded SQLite store keeps the in-process limiters. Returns what was
    installed."""
    if store.engine.dialect.name != "postgresql":
        limits.install(None)
        return None
    store.migrate("crm_limits", MIGRATIONS)
    shared = PgLimits(store.engine)
    limits.install(shared)
    return shared
