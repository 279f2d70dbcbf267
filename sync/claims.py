"""Per-customer claims and the customer version guard, in the state store.

Several workers (webhook batches, sync runs, in one process or on several hosts) may
process *different* customers at once; two of them must never tier and write the *same*
customer from two different reads. A worker therefore claims the customers it is about to
process, and processes only those it got:

* **A claim** is a row ``(customer_id, owner, expires_at)``. Claiming a batch is one
  statement, ``INSERT .. ON CONFLICT DO UPDATE .. WHERE <free, ours, or expired> ..
  RETURNING customer_id``: the ids returned are the ones this owner now holds; the rest
  are held by a live owner. Releasing a batch is one statement too. A claim lives ``ttl``
  and is renewed (every third of it, ``sync.leases.Heartbeat``) while its owner holds it,
  so a holder that crashed or froze loses its claims at most one ``ttl`` after its last
  renewal, and another worker takes them over.
* **The version guard** (compare-and-set): each customer's row also keeps the highest
  record modstamp *admitted* for processing. Inside its claim, a worker admits a record
  only if its modstamp is not older than that, and raises it; an older view is
  *superseded*: it is never written (someone already processed a newer one).

The table and its migrations are in ``sync.claims_schema``.

Expiry is judged by the database's clock (``clock_timestamp()`` on PostgreSQL, as
``sync.shared_limits`` does; SQLite's own clock on the embedded store), so hosts whose
clocks differ still agree on when a claim has run out.

Customer ids are the CRM's record ids, keyed alone as the inbox and the old guard keyed
them: one store serves one CRM organisation. Rows lock in ``customer_id`` order in every
statement that takes several, so two PostgreSQL transactions over overlapping batches
queue rather than deadlock.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from sync.claims_schema import CHUNK, CLAIMS_MIGRATIONS, customer_claims
from sync.leases import Heartbeat, process_is_running
from sync.schema import parse_utc, utc_text
from sync.store import StateStore

log = logging.getLogger(__name__)


#: the database's clock in epoch seconds (the one clock every host agrees on), as SQL
#: text: SQLite's, and PostgreSQL's (``_NOW_SQL[True]``)
_NOW_SQL = (
    "((julianday('now') - 2440587.5) * 86400.0)",
    "extract(epoch FROM clock_timestamp())::float8",
)


def db_now(dialect_name: str) -> sa.ColumnElement[float]:
    """The database's clock (``_NOW_SQL``) as an expression."""
    return sa.literal_column(_NOW_SQL[dialect_name == "postgresql"], sa.Float(53))


_THREAD_OWNER = threading.local()


def owner_id() -> str:
    """This thread's claim owner, ``host:pid:thread:random``: the host and process let a
    claimer on the same host see that the holder is gone (``died_here``); the random
    part makes sure a new thread that reuses an ended one's id (or a new process its pid)
    holds none of its claims."""
    owner: str | None = getattr(_THREAD_OWNER, "id", None)
    if owner is None:
        owner = f"{_host()}:{os.getpid()}:{threading.get_native_id()}:{uuid.uuid4().hex[:12]}"
        _THREAD_OWNER.id = owner
    return owner


@dataclass(frozen=True)
class Admission:
    """How a batch of records fared against the version guard."""

    admitted: frozenset[str] = frozenset()  # not older than any admitted: process them
    #: admitted, and the very version a committed page decided from before (``decided``):
    #: that view was taken up already (by this owner's earlier attempt, or by another that
    #: processed it meanwhile); one only admitted by a run that died or stopped before its
    #: page committed was not
    repeated: frozenset[str] = frozenset()
    superseded: frozenset[str] = frozenset()  # a newer view was admitted: never write
    lost: frozenset[str] = frozenset()  # claim no longer ours (expired, taken over)


@dataclass
class _Held:
    """One owner's claims in this process and the heartbeat that renews them."""

    ids: set[str] = field(default_factory=set)
    heartbeat: Heartbeat | None = None


class CustomerClaims:
    """Claims on customers, and the version guard, over one state store.

    Owners are strings unique per process and thread (``owner_id``). While an owner holds
    any claim, a heartbeat renews all of its claims every third of ``ttl``."""

    def __init__(
        self,
        store: StateStore,
        *,
        ttl: timedelta = timedelta(minutes=1),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if ttl <= timedelta(0):
            raise ValueError("customer claims: ttl must be positive")
        self.store = store
        self.ttl = ttl
        self.sleep = sleep
        self._held: dict[str, _Held] = {}
        self._lock = threading.Lock()
        store.migrate("customer_claims", CLAIMS_MIGRATIONS)

    # --- claim and release -------------------------------------------------------------

    def claim(self, ids: Collection[str], owner: str) -> set[str]:
        """Claim these customers for ``owner``; returns those it now holds (free ones,
        its own, and those whose holder's claim expired or whose holder, on this host, is
        a process that is gone). One statement per 2,000 ids, and two more when some are
        held by others, to look at their holders."""
        wanted = sorted(set(ids))
        if not wanted:
            return set()
        got: set[str] = set()
        with self.store.begin() as conn:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                got |= self._upsert(conn, chunk, owner)
                held = [c for c in chunk if c not in got]
                if held and _free_the_dead(conn, held):
                    got |= self._upsert(conn, held, owner)
        if got:
            self._hold(owner, got)
        return got

    def _upsert(self, conn: sa.Connection, ids: list[str], owner: str) -> set[str]:
        """The one claiming statement: the ids returned are the ones ``owner`` now holds.

        Written as driver SQL: SQLAlchemy compiled a multi-row ``VALUES`` anew for every
        chunk (three bound parameters a row, ~0.5 ms of CPU per customer claimed), the
        largest single cost of a page. Both backends name a ``VALUES`` list's columns
        ``column1``, ``column2``; every value is a bound parameter."""
        postgres = conn.dialect.name == "postgresql"
        mark = "%s" if postgres else "?"
        now = _NOW_SQL[postgres]
        rows = ", ".join([f"({mark}, {mark})"] * len(ids))
        statement = (
            "INSERT INTO customer_claims (customer_id, owner, expires_at) "  # noqa: S608
            f"SELECT column1, column2, {now} + {mark} FROM (VALUES {rows}) AS v WHERE true "
            "ON CONFLICT (customer_id) DO UPDATE SET owner = excluded.owner, "
            "expires_at = excluded.expires_at WHERE customer_claims.owner IS NULL "
            "OR customer_claims.owner = excluded.owner "
            f"OR customer_claims.expires_at <= {now} RETURNING customer_id"
        )
        params = (self.ttl.total_seconds(), *[v for c in ids for v in (c, owner)])
        return set(conn.exec_driver_sql(statement, params).scalars())

    def claim_waiting(self, ids: Collection[str], owner: str, within: timedelta) -> set[str]:
        """Claim ``ids``, waiting for those another owner holds: asks again after 50 ms,
        doubling up to 2 s, until all are got or the pauses add up to ``within`` (make it
        longer than ``ttl``, so a dead holder's claims run out meanwhile). Returns what it
        got; the caller decides what the rest means."""
        wanted = set(ids)
        got = self.claim(wanted, owner)
        pause, waited, budget = 0.05, 0.0, within.total_seconds()
        while got != wanted and waited < budget:
            step = min(pause, budget - waited)
            self.sleep(step)
            waited += step
            pause = min(pause * 2, 2.0)
            got |= self.claim(wanted - got, owner)
        return got

    def release(self, ids: Collection[str], owner: str) -> None:
        """Give these claims back (those ``owner`` still holds); the versions stay."""
        wanted = sorted(set(ids))
        if not wanted:
            return
        with self.store.begin() as conn:
            for start in range(0, len(wanted), CHUNK):
                chunk = wanted[start : start + CHUNK]
                conn.execute(
                    customer_claims.update()
                    .where(customer_claims.c.customer_id.in_(_locked(conn, owner, chunk)))
                    .values(owner=None, expires_at=None)
                )
        self._let_go(owner, wanted)

    def release_all(self, owner: str) -> None:
        """Give back every claim ``owner`` holds (the end of a run or a worker's stop)."""
        with self.store.begin() as conn:
            conn.execute(
                customer_claims.update()
                .where(customer_claims.c.customer_id.in_(_locked(conn, owner, None)))
                .values(owner=None, expires_at=None)
            )
        self._let_go(owner, None)

    def renew(self, owner: str) -> int:
        """Move the expiry of all of ``owner``'s claims ``ttl`` ahead; how many it holds."""
        with self.store.begin() as conn:
            result = conn.execute(
                customer_claims.update()
                .where(customer_claims.c.customer_id.in_(_locked(conn, owner, None)))
                .values(expires_at=db_now(conn.dialect.name) + self.ttl.total_seconds())
            )
        return int(result.rowcount)

    @contextmanager
    def holding(self, ids: Collection[str], owner: str) -> Iterator[set[str]]:
        """Claim ``ids``; yields the ones got, released on exit whatever happens."""
        got = self.claim(ids, owner)
        try:
            yield got
        finally:
            self.release(got, owner)

    # --- the version guard -------------------------------------------------------------

    def admit(self, versions: Mapping[str, datetime], owner: str) -> Admission:
        """Compare-and-set on each customer's version, inside ``owner``'s claims: a record
        whose modstamp is not older than the newest admitted for its customer is admitted
        (its modstamp becomes the newest), an older one is superseded, and one whose claim
        ``owner`` no longer holds is lost (its processing must wait: someone else may be
        at it). One transaction; the rows stay locked until it commits."""
        ids = sorted(versions)
        admitted: set[str] = set()
        repeated: set[str] = set()
        superseded: set[str] = set()
        held: dict[str, tuple[str | None, str | None]] = {}
        with self.store.begin() as conn:
            postgres = conn.dialect.name == "postgresql"
            mark, lock = ("%s", " FOR UPDATE") if postgres else ("?", "")
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start : start + CHUNK]
                # driver SQL, as the claiming upsert: an expanding IN cost ~10 µs an id
                query = (
                    "SELECT customer_id, modstamp, decided FROM customer_claims "  # noqa: S608
                    f"WHERE customer_id IN ({', '.join([mark] * len(chunk))}) "
                    f"AND owner = {mark} ORDER BY customer_id{lock}"
                )
                rows = conn.exec_driver_sql(query, (*chunk, owner))
                held.update((cid, (newest, decided)) for cid, newest, decided in rows)
            raised = []
            for cid, (newest, decided) in held.items():
                text = utc_text(versions[cid])
                if newest is not None and text < newest:
                    superseded.add(cid)
                    continue
                admitted.add(cid)
                if newest == text:
                    if decided == text:
                        repeated.add(cid)
                else:
                    raised.append((text, cid))
            if raised:  # the driver's own loop: SQLAlchemy's took ~10 µs a row
                conn.exec_driver_sql(
                    f"UPDATE customer_claims SET modstamp = {mark} WHERE customer_id = {mark}",  # noqa: S608
                    raised,
                )
        lost = set(ids) - admitted - superseded
        return Admission(
            frozenset(admitted), frozenset(repeated), frozenset(superseded), frozenset(lost)
        )

    def mark_decided(self, conn: sa.Connection, ids: Collection[str], owner: str) -> None:
        """In the transaction that commits a page: the versions ``owner`` admitted for these
        customers (those it still holds) are now decided from (``Admission.repeated``).
        Locked in id order first, as every statement over several rows here: the owner's
        heartbeat (``renew``) and other owners' claims lock them so, and an ``UPDATE``
        alone locks in the order its scan meets them, which deadlocked against those."""
        wanted = sorted(set(ids))
        postgres = conn.dialect.name == "postgresql"
        mark = "%s" if postgres else "?"
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            where = f"WHERE customer_id IN ({', '.join([mark] * len(chunk))}) AND owner = {mark}"
            if postgres:  # in id order first: an UPDATE locks in its scan's (heap) order
                conn.exec_driver_sql(
                    f"SELECT customer_id FROM customer_claims {where} "  # noqa: S608
                    "ORDER BY customer_id FOR UPDATE",
                    (*chunk, owner),
                )
            conn.exec_driver_sql(
                f"UPDATE customer_claims SET decided = modstamp {where}",  # noqa: S608
                (*chunk, owner),
            )

    def admitted(self, ids: Collection[str]) -> dict[str, datetime]:
        """The newest modstamp admitted per customer (those with one)."""
        wanted = sorted(set(ids))
        out: dict[str, datetime] = {}
        with self.store.engine.connect() as conn:
            for start in range(0, len(wanted), CHUNK):
                query = sa.select(customer_claims.c.customer_id, customer_claims.c.modstamp).where(
                    customer_claims.c.customer_id.in_(wanted[start : start + CHUNK]),
                    customer_claims.c.modstamp.is_not(None),
                )
                out.update({r.customer_id: parse_utc(r.modstamp) for r in conn.execute(query)})
        return out

    # --- the heartbeat -----------------------------------------------------------------

    def _hold(self, owner: str, ids: set[str]) -> None:
        with self._lock:
            held = self._held.setdefault(owner, _Held())
            held.ids |= ids
            if held.heartbeat is None:
                held.heartbeat = Heartbeat(
                    f"claims:{owner}", lambda: self._beat(owner), self.ttl / 3
                )

    def _let_go(self, owner: str, ids: Collection[str] | None) -> None:
        with self._lock:
            held = self._held.get(owner)
            if held is None:
                return
            held.ids = set() if ids is None else held.ids - set(ids)
            if held.ids:
                return
            del self._held[owner]
        if held.heartbeat is not None:
            held.heartbeat.stop()

    def _beat(self, owner: str) -> bool:
        """One heartbeat: renew, and say so when claims were taken over meanwhile (the
        owner missed beats: frozen, or the store was unreachable for a ``ttl``); the
        version guard keeps the taken-over customers from being written by both."""
        held = self._held.get(owner)
        expected = len(held.ids) if held is not None else 0
        renewed = self.renew(owner)
        if renewed < expected:
            log.warning("claims: %d of %d were taken over", expected - renewed, expected)
        return True

    def close(self) -> None:
        """Stop the heartbeats (the claims run out by themselves after ``ttl``)."""
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for h in held:
            if h.heartbeat is not None:
                h.heartbeat.stop()


def _free_the_dead(conn: sa.Connection, ids: list[str]) -> bool:
    """Expire the claims of the holders of ``ids`` that are processes of this host that
    are gone (or zombies), as the stream's lease does (``sync.leases``): a worker
    SIGKILLed here does not keep its customers for a whole ttl. True if any was."""
    owners = conn.execute(
        sa.select(customer_claims.c.owner)
        .distinct()
        .where(customer_claims.c.customer_id.in_(ids), customer_claims.c.owner.is_not(None))
    ).scalars()
    dead = [o for o in owners if died_here(o)]
    if dead:
        conn.execute(
            customer_claims.update().where(customer_claims.c.owner.in_(dead)).values(expires_at=0.0)
        )
    return bool(dead)


def died_here(owner: str) -> bool:
    """Whether ``owner`` (``owner_id``'s ``host:pid:thread:random``) is a process of this
    host that will never run again; owners of any other form are never judged so."""
    parts = owner.rsplit(":", 3)
    if len(parts) != 4 or parts[0] != _host() or not parts[1].isdigit():
        return False
    return not process_is_running(int(parts[1]))


def _host() -> str:
    return socket.gethostname()[:60]


def _locked(
    conn: sa.Connection, owner: str, ids: list[str] | None
) -> sa.Select[tuple[str]] | list[str]:
    """The ids among ``ids`` (all, when None) that ``owner`` holds, locked in id order on
    PostgreSQL first, so a statement over several rows never deadlocks another."""
    query = sa.select(customer_claims.c.customer_id).where(customer_claims.c.owner == owner)
    if ids is not None:
        query = query.where(customer_claims.c.customer_id.in_(ids))
    if conn.dialect.name != "postgresql":
        return query
    locked = query.order_by(customer_claims.c.customer_id).with_for_update()
    return list(conn.execute(locked).scalars())
