"""Per-customer claims and the version guard (issue 22 §1), on SQLite and PostgreSQL.

Expiry is judged by the database clock, so "the holder's ttl ran out" is staged by moving
its claims' expiry into the past, never by waiting; concurrent claimers are threads that
start together on a barrier, and the checks are properties of what each got, whatever the
interleaving was.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync import schema
from sync.claims import Admission, CustomerClaims, owner_id
from sync.claims_schema import (
    CLAIMS_MIGRATIONS,
    WORKER_MIGRATIONS,
    customer_claims,
    webhook_versions,
)
from sync.store import StateStore

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
_CASES = itertools.count()


@pytest.fixture
def claims(store: StateStore) -> Iterator[CustomerClaims]:
    c = CustomerClaims(store)
    yield c
    c.close()


def _expire(store: StateStore, owner: str) -> None:
    """The owner stopped renewing (killed) and its ttl has run out."""
    with store.begin() as conn:
        conn.execute(
            customer_claims.update().where(customer_claims.c.owner == owner).values(expires_at=0.0)
        )


def _holders(store: StateStore) -> dict[str, str | None]:
    with store.engine.connect() as conn:
        return dict(
            conn.execute(sa.select(customer_claims.c.customer_id, customer_claims.c.owner)).all()  # type: ignore[arg-type]
        )


def test_a_claimed_customer_is_not_claimed_by_another_owner_until_released(
    claims: CustomerClaims,
) -> None:
    assert claims.claim(["C1", "C2", "C3"], "A") == {"C1", "C2", "C3"}
    assert claims.claim(["C2", "C3", "C4"], "B") == {"C4"}
    assert claims.claim(["C1", "C2"], "A") == {"C1", "C2"}  # its own: re-entrant
    claims.release(["C2"], "A")
    assert claims.claim(["C2", "C3"], "B") == {"C2"}
    claims.release(["C1"], "B")  # not B's: nothing happens
    assert _holders(claims.store) == {"C1": "A", "C2": "B", "C3": "A", "C4": "B"}
    claims.release_all("A")
    assert claims.claim(["C1", "C3"], "B") == {"C1", "C3"}


def test_holding_gives_the_claims_back_whatever_happens(claims: CustomerClaims) -> None:
    with pytest.raises(RuntimeError), claims.holding(["C1", "C2"], "A") as got:
        assert got == {"C1", "C2"}
        assert claims.claim(["C1"], "B") == set()
        raise RuntimeError("processing failed")
    assert claims.claim(["C1", "C2"], "B") == {"C1", "C2"}


def test_an_expired_claim_of_a_dead_holder_is_taken_over(claims: CustomerClaims) -> None:
    assert claims.claim(["C1", "C2"], "dead") == {"C1", "C2"}
    assert claims.claim(["C1", "C2"], "B") == set()  # still live
    _expire(claims.store, "dead")
    assert claims.claim(["C1", "C2", "C3"], "B") == {"C1", "C2", "C3"}
    assert claims.renew("dead") == 0  # the old holder, back, renews nothing it lost
    assert claims.admit({"C1": T0}, "dead") == Admission(lost=frozenset({"C1"}))
    claims.release(["C1"], "dead")  # nor does it release B's claim
    assert _holders(claims.store)["C1"] == "B"


def test_renew_moves_the_expiry_of_the_owners_claims_ahead(claims: CustomerClaims) -> None:
    claims.claim(["C1", "C2"], "A")
    claims.claim(["C3"], "B")
    _expire(claims.store, "A")
    assert claims.renew("A") == 2
    assert claims.claim(["C1", "C2"], "B") == set()  # alive again


@pytest.mark.parametrize(
    ("admitted_before", "offered", "expected"),
    [
        (None, T0, "admitted"),  # first view of the customer
        (T0, T0, "admitted"),  # the same view again (a rerun): not older
        (T0, T0 + timedelta(microseconds=1), "admitted"),
        (T0, T0 - timedelta(microseconds=1), "superseded"),
        (T0, T0 - timedelta(days=1), "superseded"),
    ],
)
def test_the_version_guard_admits_a_view_only_if_it_is_not_older(
    claims: CustomerClaims,
    admitted_before: datetime | None,
    offered: datetime,
    expected: str,
) -> None:
    claims.claim(["C1"], "A")
    if admitted_before is not None:
        assert claims.admit({"C1": admitted_before}, "A").admitted == {"C1"}
        with claims.store.begin() as conn:  # its page committed
            claims.mark_decided(conn, ["C1"], "A")
    result = claims.admit({"C1": offered}, "A")
    assert getattr(result, expected) == {"C1"}
    assert (result.repeated == {"C1"}) == (offered == admitted_before)
    newest = max(offered, admitted_before or offered)
    assert claims.admitted(["C1"]) == {"C1": newest}


@pytest.mark.parametrize("committed", [True, False])
def test_a_version_is_repeated_only_once_a_committed_page_decided_from_it(
    claims: CustomerClaims, committed: bool
) -> None:
    """REC-A: a version admitted by a run that died (or stopped) before its page committed
    decided nothing, so admitting it again is not a repeat (``PagePlanner.settled`` would
    otherwise take the older committed decision as made from it); nor does another owner's
    commit mark what it does not hold."""
    claims.claim(["C1", "C2"], "A")
    assert claims.admit({"C1": T0, "C2": T0}, "A").admitted == {"C1", "C2"}
    with claims.store.begin() as conn:
        claims.mark_decided(conn, ["C1", "C2"] if committed else [], "A")
        claims.mark_decided(conn, ["C1", "C2"], "B")  # holds neither
    claims.release(["C1", "C2"], "A")
    claims.claim(["C1"], "C")
    again = claims.admit({"C1": T0}, "C")
    assert again.admitted == {"C1"}
    assert again.repeated == ({"C1"} if committed else frozenset())


def test_admission_needs_the_claim(claims: CustomerClaims) -> None:
    claims.claim(["C1"], "A")
    assert claims.admit({"C1": T0, "C2": T0}, "A") == Admission(
        admitted=frozenset({"C1"}), lost=frozenset({"C2"})
    )
    assert claims.admit({"C1": T0 + timedelta(1)}, "B").lost == {"C1"}
    assert claims.admitted(["C1", "C2"]) == {"C1": T0}


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", "C"]), st.integers(min_value=0, max_value=5)),
        min_size=1,
        max_size=12,
    )
)
def test_whatever_the_order_the_newest_admitted_only_ever_rises(
    claims: CustomerClaims, views: list[tuple[str, int]]
) -> None:
    """Owners take turns on one customer, each offering the view it read: an admitted view
    is never older than one admitted before, and the guard ends at the newest offered."""
    customer = f"H{next(_CASES)}"
    newest: datetime | None = None
    for owner, age in views:
        stamp = T0 + timedelta(seconds=age)
        with claims.holding([customer], owner) as got:
            assert got == {customer}
            result = claims.admit({customer: stamp}, owner)
        if customer in result.admitted:
            assert newest is None or stamp >= newest
            newest = stamp
        else:
            assert customer in result.superseded and newest is not None and stamp < newest
    assert claims.admitted([customer]) == {
        customer: max(T0 + timedelta(seconds=a) for _, a in views)
    }


def _claim_together(claims: CustomerClaims, batches: list[list[str]]) -> list[set[str]]:
    """Each batch claimed (then renewed) by its own owner on its own thread, all released
    at one barrier; what each got."""
    barrier = threading.Barrier(len(batches))
    got: list[set[str]] = [set() for _ in batches]
    errors: list[BaseException] = []

    def take(n: int, batch: list[str]) -> None:
        try:
            barrier.wait()
            got[n] = claims.claim(batch, f"T{n}")
            claims.renew(f"T{n}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=take, args=(n, b)) for n, b in enumerate(batches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return got


def test_concurrent_claimers_never_hold_the_same_customer(claims: CustomerClaims) -> None:
    """Four threads claim overlapping batches (in opposite orders) at the same moment, ten
    times over: each customer is got by at most one, every free customer by someone, and
    no statement deadlocks."""
    ids = [f"C{i:03d}" for i in range(120)]
    batches = [ids[:80], ids[40:][::-1], ids[::2], ids[::-3]]
    for _ in range(10):
        got = _claim_together(claims, batches)
        for a, b in itertools.combinations(got, 2):
            assert not a & b
        assert set().union(*got) == set(ids[:80]) | set(ids[40:]) | set(ids[::2]) | set(ids[::-3])
        for n in range(len(batches)):
            claims.release_all(f"T{n}")


def test_owner_ids_differ_between_threads_and_stay_the_same_within_one() -> None:
    seen: list[str] = []
    t = threading.Thread(target=lambda: seen.extend([owner_id(), owner_id()]))
    t.start()
    t.join()
    assert seen[0] == seen[1] != owner_id()


def test_a_store_of_the_old_worker_keeps_its_admitted_versions(store: StateStore) -> None:
    """A store whose webhook worker kept ``webhook_versions``: its rows become the guard of
    every path, and the old table goes (the worker's component records step 2)."""
    store.migrate("webhook_worker", WORKER_MIGRATIONS[:1])
    with store.begin() as conn:
        conn.execute(
            webhook_versions.insert(),
            [
                {"customer_id": "C1", "modstamp": schema.utc_text(T0)},
                {"customer_id": "C2", "modstamp": schema.utc_text(T0 + timedelta(1))},
            ],
        )
    claims = CustomerClaims(store)
    try:
        assert claims.admitted(["C1", "C2", "C3"]) == {"C1": T0, "C2": T0 + timedelta(1)}
        assert store.migrate("webhook_worker", WORKER_MIGRATIONS) == 2
        with store.engine.connect() as conn:
            assert not sa.inspect(conn).has_table("webhook_versions")
        claims.claim(["C1"], "A")
        assert claims.admit({"C1": T0 - timedelta(1)}, "A").superseded == {"C1"}
    finally:
        claims.close()


def test_a_fresh_store_gets_the_claims_table_without_the_old_one(store: StateStore) -> None:
    claims = CustomerClaims(store)
    claims.close()
    assert store.migrate("webhook_worker", WORKER_MIGRATIONS) == 2
    with store.engine.connect() as conn:
        assert not sa.inspect(conn).has_table("webhook_versions")
        assert sa.inspect(conn).has_table("customer_claims")


def test_ttl_must_be_positive(store: StateStore) -> None:
    with pytest.raises(ValueError, match="ttl must be positive"):
        CustomerClaims(store, ttl=timedelta(0))


def test_claim_waiting_takes_a_claim_once_its_holder_lets_go(store: StateStore) -> None:
    """The holder finishes while the claimer pauses (the pause is the test's hook): the
    claimer gets it on its next ask, having paused with a growing backoff."""
    pauses: list[float] = []
    claims = CustomerClaims(store, sleep=pauses.append)
    try:
        claims.claim(["C1"], "worker")

        def holder_finishes(seconds: float) -> None:
            pauses.append(seconds)
            if len(pauses) == 3:
                claims.release(["C1"], "worker")

        claims.sleep = holder_finishes
        assert claims.claim_waiting(["C1", "C2"], "run", timedelta(seconds=60)) == {"C1", "C2"}
        assert pauses == [0.05, 0.1, 0.2]
    finally:
        claims.close()


def test_claim_waiting_gives_up_after_its_bound(store: StateStore) -> None:
    pauses: list[float] = []
    claims = CustomerClaims(store, sleep=pauses.append)
    try:
        claims.claim(["C1"], "worker")
        assert claims.claim_waiting(["C1", "C2"], "run", timedelta(seconds=5)) == {"C2"}
        assert sum(pauses) == pytest.approx(5.0)
        assert max(pauses) <= 2.0
    finally:
        claims.close()


def test_the_claims_of_a_process_gone_from_this_host_are_taken_at_once(
    claims: CustomerClaims,
) -> None:
    """A worker SIGKILLed on this host: its claims are taken over without waiting for
    their ttl, as the stream's lease is. A live holder, or one named in a form that says
    nothing of its process, keeps them."""
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()[:60]
    claims.claim(["C1"], f"{host}:{gone.pid}:1:0123456789ab")
    claims.claim(["C2"], f"{host}:{os.getpid()}:1:0123456789ab")  # this very process
    claims.claim(["C3"], "a worker elsewhere")
    assert claims.claim(["C1", "C2", "C3"], "B") == {"C1"}


def test_a_store_claimed_before_decided_existed_gains_it(store: StateStore) -> None:
    """A store whose claims table predates ``decided`` (made by the claims component's
    first step as it then was): the second step adds the column, and its admitted
    versions count as decided from by no page (so none is taken as a repeat)."""
    with store.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE customer_claims (customer_id VARCHAR(64) PRIMARY KEY, "
                "owner VARCHAR(120), expires_at FLOAT, modstamp VARCHAR(32))"
            )
        )
        conn.execute(
            sa.text("INSERT INTO customer_claims (customer_id, modstamp) VALUES ('C1', :m)"),
            {"m": schema.utc_text(T0)},
        )
    store.migrate("customer_claims", CLAIMS_MIGRATIONS[:1])
    claims = CustomerClaims(store)
    try:
        with store.engine.connect() as conn:
            columns = {c["name"] for c in sa.inspect(conn).get_columns("customer_claims")}
        assert "decided" in columns
        claims.claim(["C1"], "A")
        again = claims.admit({"C1": T0}, "A")
        assert again.admitted == {"C1"} and not again.repeated
    finally:
        claims.close()


@pytest.mark.postgres
def test_a_page_commit_marking_decided_queues_behind_a_heartbeat_never_deadlocks(
    pg_store: StateStore,
) -> None:
    """Every statement over several claims rows locks them in ``customer_id`` order (the
    module's rule), so two transactions over the same rows queue. The page commit's
    ``mark_decided`` and the heartbeat's ``renew`` meet on the owner's rows; an ``UPDATE``
    that locks them in the order its scan meets them (the heap's, C2 before C1 here, as a
    bitmap scan of a big table does) deadlocks against ``renew`` (id order), and
    PostgreSQL aborts one: the page's commit, failing the run, or the heartbeat."""
    claims = CustomerClaims(pg_store)
    try:
        claims.claim(["C2"], "A")  # the heap holds C2 before C1
        claims.claim(["C1"], "A")
        errors: list[BaseException] = []

        def page_commit() -> None:
            try:
                with pg_store.begin() as conn:
                    for scan in ("indexscan", "bitmapscan", "indexonlyscan"):  # heap order
                        conn.exec_driver_sql(f"SET LOCAL enable_{scan} = off")
                    claims.mark_decided(conn, ["C1", "C2"], "A")
            except BaseException as exc:  # reported below
                errors.append(exc)

        def heartbeat() -> None:
            try:
                claims.renew("A")
            except BaseException as exc:  # reported below
                errors.append(exc)

        def waiting(n: int) -> None:
            """Until ``n`` transactions wait on a claims row (each then holds or waits
            for the row's tuple lock on this schema's table)."""
            query = sa.text(
                "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'tuple' "
                "AND relation = 'customer_claims'::regclass"
            )
            with pg_store.engine.connect() as probe:
                while probe.execute(query).scalar_one() < n:
                    probe.rollback()
                    time.sleep(0.01)

        threads = [threading.Thread(target=heartbeat), threading.Thread(target=page_commit)]
        with pg_store.begin() as blocker:  # holds C1 until both wait behind it
            blocker.exec_driver_sql(
                "SELECT 1 FROM customer_claims WHERE customer_id = 'C1' FOR UPDATE"
            )
            for n, thread in enumerate(threads, start=1):
                thread.start()
                waiting(n)
        for thread in threads:
            thread.join()
        assert not errors, errors
    finally:
        claims.close()
