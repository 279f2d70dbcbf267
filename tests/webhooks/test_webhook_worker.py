"""The inbox worker's own rules, against a small in-memory CRM: coalescing, exactly-once per
event, re-fetch + version guard (docs/targets.md W12), CRM outage and recovery (W7), clean stop.

The end-to-end path through the real sandboxes and the sync engine is in
``test_webhook_end_to_end.py``; here the CRM is a dict so each rule is seen in isolation."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.contract import CrmRecord
from connectors.errors import AuthExpiredError, RateLimitedError, ReadOnlyError, TransientError
from connectors.salesforce.errors import classify as salesforce_error
from connectors.webhook_events import ChangeEvent
from connectors.zoho.errors import classify_call as zoho_error
from sync.claims import CustomerClaims
from sync.claims_schema import customer_claims
from sync.inbox import Inbox
from sync.store import StateStore
from sync.worker import BatchReport, InboxWorker, WorkerOptions
from tiering_core.models import CustomerProfile

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
_EXAMPLES = itertools.count()


class MemoryCrm:
    """Customers with a value and a modstamp; counts fetches; can be taken down."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, datetime]] = {}
        self.fetches: list[list[str]] = []
        self.down: Exception | None = None
        self.lag: dict[str, tuple[int, datetime]] = {}  # what a lagging replica returns once

    def set(self, customer_id: str, value: int, modstamp: datetime) -> None:
        self.values[customer_id] = (value, modstamp)

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        if self.down is not None:
            raise self.down
        self.fetches.append(list(ids))
        out = []
        for cid in ids:
            found = self.lag.pop(cid, None) or self.values.get(cid)
            if found is not None:
                value, stamp = found
                profile = CustomerProfile(id=cid, modified_at=stamp, aum_avg_3m=float(value))
                out.append(CrmRecord(profile=profile, modstamp=stamp))
        return out


class Writer:
    """Stands for the sync engine's processing path: records what it would write."""

    def __init__(self) -> None:
        self.written: dict[str, float | None] = {}
        self.calls: list[dict[str, str]] = []

    def __call__(
        self, records: Sequence[CrmRecord], source_event_ids: Mapping[str, str]
    ) -> Mapping[str, str]:
        self.calls.append(dict(source_event_ids))
        out = {}
        for record in records:
            before = self.written.get(record.profile.id)
            self.written[record.profile.id] = record.profile.aum_avg_3m
            out[record.profile.id] = (
                "unchanged" if before == record.profile.aum_avg_3m else "written"
            )
        return out


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _worker(
    inbox: Inbox, crm: MemoryCrm, writer: Writer, clock: Clock, **options: object
) -> InboxWorker:
    return InboxWorker(inbox, crm.fetch, writer, options=WorkerOptions(**options), clock=clock)  # type: ignore[arg-type]


def _ev(key: str, customer: str, version: datetime | None = None) -> ChangeEvent:
    return ChangeEvent("salesforce", key, customer, "update", version)


def test_events_are_coalesced_per_customer(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    for i in range(3):
        crm.set(f"C{i}", i * 100, T0)
    inbox.add([[_ev(f"e{n}", f"C{n % 3}") for n in range(10)]], T0)
    report = _worker(inbox, crm, writer, clock).drain()
    assert crm.fetches == [["C0", "C1", "C2"]]
    assert report.outcomes == {"written": 10}
    assert writer.calls == [{"C0": "e9", "C1": "e7", "C2": "e8"}]  # the latest event is cited
    assert inbox.stats(T0).depth == 0


def test_window_bounds_the_wait_and_batch_size_cuts_it_short(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    worker = _worker(inbox, crm, writer, clock, batch_size=3, window=timedelta(milliseconds=200))
    assert worker.wait_before_next_batch() == 0.05  # idle poll
    inbox.add([[_ev("a", "C1")]], T0)
    assert worker.wait_before_next_batch() == 0.2
    clock.now = T0 + timedelta(milliseconds=150)
    assert round(worker.wait_before_next_batch(), 3) == 0.05
    clock.now = T0 + timedelta(milliseconds=250)
    assert worker.wait_before_next_batch() == 0
    clock.now = T0
    inbox.add([[_ev("b", "C2"), _ev("c", "C3")]], T0)
    assert worker.wait_before_next_batch() == 0


def test_claims_of_a_dead_worker_are_taken_again_without_new_traffic(inbox: Inbox) -> None:
    """A worker SIGKILLed mid-batch leaves its events claimed. Once the lease lapses they
    are due at once for the next worker, with no new event needed to wake it, and each is
    processed once."""
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    for i in range(3):
        crm.set(f"C{i}", i, T0)
    inbox.add([[_ev(f"e{i}", f"C{i}") for i in range(3)]], T0)
    lease = timedelta(seconds=2)
    assert len(inbox.claim("killed", 10, T0, lease)) == 3  # then the process died
    worker = _worker(inbox, crm, writer, clock, lease=lease)
    clock.now = T0 + lease
    assert worker.wait_before_next_batch() == 0.05  # still held: idle
    assert worker.drain().events == 0
    clock.now = T0 + lease + timedelta(milliseconds=1)
    assert worker.wait_before_next_batch() == 0  # lapsed: due now
    assert worker.drain().outcomes == {"written": 3}
    assert [sorted(call) for call in writer.calls] == [["C0", "C1", "C2"]]
    assert inbox.stats(clock.now).depth == 0


def test_redelivered_event_is_processed_once(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.set("C1", 5, T0)
    worker = _worker(inbox, crm, writer, clock)
    for _ in range(10):
        inbox.add([[_ev("same", "C1")]], T0)
        worker.drain()
    assert len(writer.calls) == 1


def test_stale_read_is_retried_not_written(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.set("C1", 2, T0 + timedelta(seconds=10))
    crm.lag["C1"] = (1, T0)  # the first read comes from a replica that lags
    inbox.add([[_ev("e1", "C1", version=T0 + timedelta(seconds=10))]], T0)
    worker = _worker(inbox, crm, writer, clock)
    assert worker.drain().outcomes == {"stale_read": 1}
    assert writer.written == {}
    clock.now = T0 + timedelta(seconds=2)
    assert worker.drain().outcomes == {"written": 1}
    assert writer.written == {"C1": 2.0}


def test_a_version_never_seen_is_given_up_after_max_attempts(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.set("C1", 1, T0)  # the notification claims a version the CRM never shows
    inbox.add([[_ev("e1", "C1", version=T0 + timedelta(hours=1))]], T0)
    worker = _worker(inbox, crm, writer, clock, max_attempts=3)
    outcomes = []
    for step in range(3):
        clock.now = T0 + timedelta(seconds=2 * step)
        outcomes.append(worker.drain().outcomes)
    assert outcomes == [{"stale_read": 1}, {"stale_read": 1}, {"written": 1}]


def test_an_older_view_never_overwrites_a_newer_one(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.set("C1", 2, T0 + timedelta(seconds=10))
    worker = _worker(inbox, crm, writer, clock)
    inbox.add([[_ev("new", "C1")]], T0)
    worker.drain()
    crm.lag["C1"] = (1, T0)  # a late event whose re-fetch hits an older copy
    inbox.add([[_ev("old", "C1")]], T0)
    assert worker.drain().outcomes == {"superseded": 1}
    assert writer.written == {"C1": 2.0}


def test_a_customer_another_worker_holds_waits_and_is_read_after_its_write(
    inbox: Inbox,
) -> None:
    """Two workers: while B processes C1 (the hook is B's write of version 2), A's batch
    names C1 too. A neither waits nor reads C1 then: its event goes back to the inbox,
    uncounted. A's next batch reads C1 only once B let go, so it plans against what B left
    in the CRM, never an older view (W12)."""
    crm, clock = MemoryCrm(), Clock()
    writer = Writer()
    a_outcomes: list[dict[str, int]] = []
    a = InboxWorker(inbox, crm.fetch, writer, owner="A", clock=clock)

    def b_writes(records: Sequence[CrmRecord], events: Mapping[str, str]) -> Mapping[str, str]:
        inbox.add([[_ev("e-a", "C1")]], T0)
        a_outcomes.append(threaded(a.run_batch).outcomes)
        return writer(records, events)

    b = InboxWorker(inbox, crm.fetch, b_writes, owner="B", clock=clock)
    crm.set("C1", 2, T0 + timedelta(seconds=10))
    inbox.add([[_ev("e-b", "C1")]], T0)
    assert b.run_batch().outcomes == {"written": 1}
    assert a_outcomes == [{"busy": 1}]
    assert crm.fetches == [["C1"]]  # A did not read C1 while B held it
    clock.now = T0 + timedelta(milliseconds=500)  # WorkerOptions.claimed_delay
    assert a.drain().outcomes == {"unchanged": 1}  # read after B: shows what B wrote
    assert crm.fetches == [["C1"], ["C1"]]
    assert inbox.stats(clock.now).depth == 0


def test_two_workers_on_different_customers_hold_claims_and_write_at_once(
    inbox: Inbox,
) -> None:
    """While B is in the middle of writing C1 (its claim held), A claims, reads and writes
    C2: per-customer claims, not one lock per stream."""
    crm, clock, writer = MemoryCrm(), Clock(), Writer()
    crm.set("C1", 1, T0)
    crm.set("C2", 2, T0)
    a = InboxWorker(inbox, crm.fetch, writer, owner="A", clock=clock)
    inside: list[dict[str, int]] = []

    def b_writes(records: Sequence[CrmRecord], events: Mapping[str, str]) -> Mapping[str, str]:
        inbox.add([[_ev("e-a", "C2")]], T0)
        inside.append(threaded(a.run_batch).outcomes)
        return writer(records, events)

    b = InboxWorker(inbox, crm.fetch, b_writes, owner="B", clock=clock)
    inbox.add([[_ev("e-b", "C1")]], T0)
    assert b.run_batch().outcomes == {"written": 1}
    assert inside == [{"written": 1}]
    assert writer.written == {"C1": 1.0, "C2": 2.0}


def test_an_older_view_admitted_after_a_newer_one_is_superseded_across_workers(
    inbox: Inbox,
) -> None:
    """A read C1 at version 1 and then lost the race: B claimed, read version 2 and wrote
    it first. When A finally gets C1, its version-1 view is superseded, never written."""
    crm, clock, writer = MemoryCrm(), Clock(), Writer()
    crm.set("C1", 2, T0 + timedelta(seconds=10))
    b = InboxWorker(inbox, crm.fetch, writer, owner="B", clock=clock)
    inbox.add([[_ev("e-b", "C1")]], T0)
    b.drain()
    old_view = [
        CrmRecord(profile=CustomerProfile(id="C1", modified_at=T0, aum_avg_3m=1.0), modstamp=T0)
    ]
    a = InboxWorker(inbox, lambda ids: old_view, writer, owner="A", clock=clock)
    inbox.add([[_ev("e-a", "C1")]], T0)
    assert a.drain().outcomes == {"superseded": 1}
    assert writer.written == {"C1": 2.0}


def threaded(run: Callable[[], BatchReport]) -> BatchReport:
    """``run`` on a thread of its own (a worker's claims are its thread's), joined."""
    out: list[BatchReport] = []
    t = threading.Thread(target=lambda: out.append(run()))
    t.start()
    t.join()
    return out[0]


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    versions=st.lists(st.integers(0, 20), min_size=1, max_size=12),
    order=st.randoms(use_true_random=False),
    keep=st.lists(st.booleans(), min_size=12, max_size=12),
    dup=st.lists(st.integers(1, 3), min_size=12, max_size=12),
)
def test_order_duplicates_and_drops_never_change_the_final_write(
    store: StateStore, versions: list[int], order: object, keep: list[bool], dup: list[int]
) -> None:
    """W12: whatever order, duplication and loss the notifications suffer, what is written
    last is the CRM's latest state (the worker re-fetches; events are only hints)."""
    inbox = Inbox(store)  # one store per test function: each example uses its own customer
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    worker = _worker(inbox, crm, writer, clock, batch_size=2)
    customer = f"C{next(_EXAMPLES)}"
    events = []
    for n, v in enumerate(versions):
        stamp = T0 + timedelta(seconds=v)
        if customer not in crm.values or crm.values[customer][1] <= stamp:
            crm.set(customer, v, stamp)
        if keep[n]:
            events += [_ev(f"{customer}-{n}", customer, version=stamp)] * dup[n]
    order.shuffle(events)  # type: ignore[attr-defined]
    for event in events:
        inbox.add([[event]], clock.now)
        worker.run_batch()
    worker.drain()
    if events:
        assert writer.written[customer] == float(crm.values[customer][0])
        assert len(writer.calls) <= len({e.event_key for e in events})


def test_crm_outage_backs_off_and_the_backlog_drains_after_recovery(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    for i in range(50):
        crm.set(f"C{i}", i, T0)
    worker = _worker(inbox, crm, writer, clock, batch_size=20)
    crm.down = TransientError("503 from the CRM")
    inbox.add([[_ev(f"e{i}", f"C{i}")] for i in range(50)], T0)
    assert worker.drain().outcomes == {"retry": 50}
    assert inbox.stats(T0).depth == 50
    assert worker.drain().events == 0  # backing off: nothing claimable yet
    crm.down = RateLimitedError("429", retry_after=30)
    clock.now = T0 + timedelta(seconds=3)
    assert worker.drain().outcomes == {"retry": 50}
    clock.now = T0 + timedelta(seconds=20)
    assert worker.drain().events == 0  # Retry-After (30 s) honoured over the 4 s backoff
    crm.down = None
    clock.now = T0 + timedelta(seconds=40)
    assert worker.drain().outcomes == {"written": 50}
    assert inbox.stats(clock.now).depth == 0


def test_events_are_buried_after_max_attempts(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.down = TransientError("down")
    worker = _worker(inbox, crm, writer, clock, max_attempts=3)
    inbox.add([[_ev("e1", "C1")]], T0)
    outcomes = []
    for step in range(4):
        clock.now = T0 + timedelta(hours=step)
        outcomes.append(worker.drain().outcomes)
    assert outcomes == [{"retry": 1}, {"retry": 1}, {"dead": 1}, {}]
    assert inbox.stats(clock.now).dead == 1


class ReadOnlyWriter(Writer):
    """The engine's path while the CRM is read-only for maintenance: reads go on, the
    batch's writes pause it (``SyncEngine.process_changes`` raises ``ReadOnlyError``)."""

    read_only = True

    def __call__(
        self, records: Sequence[CrmRecord], source_event_ids: Mapping[str, str]
    ) -> Mapping[str, str]:
        if self.read_only:
            raise ReadOnlyError("CRM is read-only, writes kept for the next run")
        return super().__call__(records, source_event_ids)


def test_a_read_only_crm_keeps_events_waiting_for_hours_never_buried(inbox: Inbox) -> None:
    """Planned maintenance lasts hours; max_attempts would bury the events within minutes
    of it (and every dead event is an alert). They wait instead, tried every backoff_cap
    without the attempt counting, one batch unsplit, and are written once it is over."""
    crm, writer, clock = MemoryCrm(), ReadOnlyWriter(), Clock()
    for i in range(3):
        crm.set(f"C{i}", i, T0)
    worker = _worker(inbox, crm, writer, clock, max_attempts=2)
    inbox.add([[_ev(f"e{i}", f"C{i}")] for i in range(3)], T0)
    for minute in range(0, 6 * 60, 10):  # six hours, a try every ten minutes
        clock.now = T0 + timedelta(minutes=minute)
        assert worker.drain().outcomes == {"read_only": 3}
        assert worker.drain().events == 0  # waiting out backoff_cap, not hot-looping
    assert inbox.stats(clock.now).dead == 0
    assert len(crm.fetches) == 36  # one read a try, the batch never split
    writer.read_only = False
    clock.now = T0 + timedelta(hours=6)
    assert worker.drain().outcomes == {"written": 3}


def test_a_read_only_refusal_past_its_patience_counts_and_buries_the_events(
    inbox: Inbox,
) -> None:
    """A refusal that never ends (an org left read-only, or a permanent error taken for
    the maintenance code) must not keep a backlog growing for ever, in silence but for
    the oldest-pending age: a day past the oldest event's receipt the attempts count again
    and the events are buried after ``max_attempts``, with the reason (an alert)."""
    crm, writer, clock = MemoryCrm(), ReadOnlyWriter(), Clock()
    crm.set("C1", 1, T0)
    worker = _worker(inbox, crm, writer, clock, max_attempts=2)
    inbox.add([[_ev("e1", "C1")]], T0)
    clock.now = T0 + timedelta(hours=23, minutes=59)
    assert worker.drain().outcomes == {"read_only": 1}
    outcomes: dict[str, int] = {}
    for minute in range(10, 60, 10):  # the day is over: each try counts
        clock.now = T0 + timedelta(hours=24, minutes=minute)
        for outcome, n in worker.drain().outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    assert outcomes == {"retry": 1, "dead": 1}
    assert inbox.stats(clock.now).dead == 1


def test_a_customer_held_elsewhere_postpones_without_burying(
    inbox: Inbox, store: StateStore
) -> None:
    """While a sync run (a backfill can take hours) holds the customer, its events wait;
    their attempts are not spent, so none is buried however long the wait."""
    crm, clock, writer = MemoryCrm(), Clock(), Writer()
    crm.set("C1", 1, T0)
    claims = CustomerClaims(store)
    worker = InboxWorker(
        inbox, crm.fetch, writer, options=WorkerOptions(max_attempts=3), claims=claims, clock=clock
    )
    inbox.add([[_ev("e1", "C1")]], T0)
    claims.claim(["C1"], "a sync run")
    outcomes = []
    for step in range(20):
        clock.now = T0 + timedelta(seconds=step)
        outcomes.append(worker.drain().outcomes)
    claims.release(["C1"], "a sync run")
    clock.now += timedelta(seconds=1)
    assert outcomes == [{"busy": 1}] * 20
    assert worker.drain().outcomes == {"written": 1}
    assert inbox.stats(clock.now).dead == 0
    assert crm.fetches == [["C1"]]  # never read while someone else held it
    claims.close()


def test_a_dead_workers_customers_are_taken_over_once_its_claims_expire(
    inbox: Inbox, store: StateStore
) -> None:
    """A worker SIGKILLed mid-batch leaves its customers claimed: the next worker's events
    for them wait (busy) until the claims run out, then it takes them over and writes."""
    crm, clock, writer = MemoryCrm(), Clock(), Writer()
    crm.set("C1", 1, T0)
    claims = CustomerClaims(store)
    claims.claim(["C1"], "killed")
    worker = InboxWorker(inbox, crm.fetch, writer, claims=claims, clock=clock)
    inbox.add([[_ev("e1", "C1")]], T0)
    assert worker.drain().outcomes == {"busy": 1}
    with store.begin() as conn:  # its ttl ran out (the database clock moved past it)
        conn.execute(customer_claims.update().values(expires_at=0.0))
    clock.now = T0 + timedelta(seconds=1)
    assert worker.drain().outcomes == {"written": 1}
    assert writer.written == {"C1": 1.0}
    claims.close()


def test_an_unexpected_error_is_retried_like_a_crm_failure(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.set("C1", 1, T0)
    crm.down = KeyError("a bug in a mapping")
    worker = _worker(inbox, crm, writer, clock)
    inbox.add([[_ev("e1", "C1")]], T0)
    assert worker.drain().outcomes == {"retry": 1}
    crm.down = None
    clock.now = T0 + timedelta(seconds=3)
    assert worker.drain().outcomes == {"written": 1}


def test_deleted_record_is_not_found(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    inbox.add([[ChangeEvent("zoho", "z1", "gone", "delete")]], T0)
    assert _worker(inbox, crm, writer, clock).drain().outcomes == {"not_found": 1}


def test_stop_finishes_and_leaves_nothing_claimed(inbox: Inbox) -> None:
    crm = MemoryCrm()
    for i in range(30):
        crm.set(f"C{i}", i, T0)
    writer = Writer()
    worker = InboxWorker(
        inbox, crm.fetch, writer, options=WorkerOptions(batch_size=10, window=timedelta(0))
    )
    now = datetime.now(UTC)
    inbox.add([[_ev(f"e{i}", f"C{i}")] for i in range(30)], now)
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while inbox.stats(datetime.now(UTC)).depth and datetime.now(UTC) < deadline:
        stop.wait(0.01)
    stop.set()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert inbox.stats(datetime.now(UTC)).depth == 0
    assert len(writer.written) == 30
    assert inbox.event_keys(statuses=("claimed",)) == set()


def test_metrics_callback_sees_outcomes(inbox: Inbox) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.set("C1", 1, T0)
    seen: dict[str, int] = {}
    worker = InboxWorker(
        inbox,
        crm.fetch,
        writer,
        clock=clock,
        on_outcome=lambda outcome, n: seen.__setitem__(outcome, seen.get(outcome, 0) + n),
    )
    inbox.add([[_ev("a", "C1"), _ev("b", "C2")]], T0)
    worker.drain()
    assert seen == {"written": 1, "not_found": 1}


class _OnePass(threading.Event):
    """A stop event that lets ``InboxWorker.run`` make exactly one pass, without waiting."""

    def __init__(self) -> None:
        super().__init__()
        self.checks = 0

    def is_set(self) -> bool:
        self.checks += 1
        return self.checks > 1

    def wait(self, timeout: float | None = None) -> bool:
        return self.checks > 1


def test_processed_events_are_forgotten_after_the_dedupe_window_even_when_idle(
    inbox: Inbox,
) -> None:
    crm, writer, clock = MemoryCrm(), Writer(), Clock()
    crm.set("C1", 1, T0)
    worker = _worker(inbox, crm, writer, clock)
    inbox.add([[_ev("old", "C1")]], T0)
    worker.drain()
    inbox.add([[_ev("waiting", "C1")]], T0 + timedelta(days=8))
    inbox.retry_later(
        {i.id: "later" for i in inbox.claim("x", 5, T0 + timedelta(days=8), timedelta(0))},
        T0 + timedelta(days=30),
    )
    clock.now = T0 + timedelta(days=8)
    worker.run(_OnePass())  # nothing is due: the pass only purges, then idles
    assert inbox.event_keys() == {"waiting"}  # the processed one is purged, the pending one kept


class PoisonCrm(MemoryCrm):
    """A CRM whose lookup fails for any batch that names ``poison`` (the way a 100 kB id
    makes a query URL too long: HTTP 414, as each connector classifies it), and counts every
    lookup tried."""

    def __init__(self, poison: str, error: Exception) -> None:
        super().__init__()
        self.poison, self.error, self.tried = poison, error, 0

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        self.tried += 1
        if self.poison in ids:
            raise self.error
        return super().fetch(ids)


@pytest.mark.parametrize("position", [0, 5, 10])
@pytest.mark.parametrize(
    "error",
    [
        pytest.param(salesforce_error(414, None, "URI Too Long"), id="salesforce-414"),
        pytest.param(zoho_error(414, None, "URI Too Long"), id="zoho-414"),
        pytest.param(ValueError("a record the mapping chokes on"), id="a-bug"),
    ],
)
def test_one_poison_event_never_costs_the_rest_of_its_batch(
    inbox: Inbox, position: int, error: Exception
) -> None:
    """Issue 17.4: ten valid events and one whose lookup fails, max_attempts = 2. The batch
    is split until the poison stands alone: the ten are written at once, only the poison is
    retried and then buried."""
    crm, writer, clock = PoisonCrm("POISON", error), Writer(), Clock()
    customers = [f"C{i}" for i in range(10)]
    customers.insert(position, "POISON")
    for cid in customers:
        crm.set(cid, 1, T0)
    inbox.add([[_ev(f"e-{cid}", cid)] for cid in customers], T0)
    worker = _worker(inbox, crm, writer, clock, max_attempts=2)
    assert worker.drain().outcomes == {"written": 10, "retry": 1}
    assert sorted(writer.written) == sorted(c for c in customers if c != "POISON")
    assert crm.tried <= 2 * 4 + 1  # about 2·log2(11) lookups, not one per customer
    clock.now = T0 + timedelta(hours=1)
    assert worker.drain().outcomes == {"dead": 1}
    assert inbox.stats(clock.now).dead == 1


@pytest.mark.parametrize(
    "error",
    [
        TransientError("503 from the CRM"),
        RateLimitedError("429", retry_after=5),
        AuthExpiredError("session expired"),
    ],
)
def test_a_failure_of_the_whole_crm_is_not_split(inbox: Inbox, error: Exception) -> None:
    """A CRM that is down or throttling fails every half too: the batch is retried whole,
    with one lookup, rather than multiplying calls to a CRM that cannot answer."""
    crm, writer, clock = PoisonCrm("C0", error), Writer(), Clock()
    inbox.add([[_ev(f"e{i}", f"C{i}")] for i in range(8)], T0)
    assert _worker(inbox, crm, writer, clock).drain().outcomes == {"retry": 8}
    assert crm.tried == 1
