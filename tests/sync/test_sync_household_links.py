"""Household links remembered between runs (issue 21 §1.3), on an in-memory CRM whose calls
are counted by kind: a member joining a household, leaving one, a household split, a member
in two households, and a member the CRM drops from a household without a change of its own
record. Each case asserts the tiers written and the API calls the incremental run spent:
one page read, one bulk household read per hop (two: the page's households, then the
found members' other households), one fetch for the members beside the page, one write.

The policy is the shipped one with households on and no downgrade grace, so a member that
loses its household's lift is written its own tier in the run that sees the change (with
the default 90-day grace it is held there, ``VAL_HELD_GRACE``, as any customer below its
floor is).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.calltally import CallCounter
from connectors.contract import (
    HOUSEHOLDS_CHECK,
    Capabilities,
    CrmRecord,
    Cursor,
    Page,
    SchemaCheck,
    WritePlan,
    WriteResult,
)
from connectors.errors import RateLimitedError
from connectors.mapping import WritebackConfig
from sync import schema
from sync.engine import RunOptions, RunReport, SyncEngine, SyncSettings
from sync.household_store import is_complete
from sync.records import Outcome
from sync.retier import retier
from sync.retier_threads import InProcessUnits
from sync.schema import household_links
from sync.store import StateStore
from tests.sync.memory_crm import InMemoryConnector
from tiering_core.engine import decide_batch
from tiering_core.models import AssessmentData, Assets, CustomerProfile
from tiering_core.policy import policy_over_default
from tiering_core.rules.household import HouseholdLinks, Link

AS_OF = date(2026, 6, 30)
POLICY = policy_over_default({"households": {"enabled": True}, "value": {"grace_days": 0}})
WRITEBACK = WritebackConfig(
    fields={"value_tier": "Tier", "reasons": "Reasons"}, tasks=False, campaign_memberships=False
)
HALF = 3_500_000.0  # the private floor is 600万: one member alone is wealth, two private


class HouseholdCrm(InMemoryConnector):
    """Customers with deposits, household links, modification stamps and what was written."""

    capabilities = Capabilities(crm="memory", page_size=50, max_write_batch=200)

    def __init__(self, deposits: dict[str, float], links: Collection[Link]) -> None:
        self.deposits = dict(deposits)
        self.links = set(links)
        self.written: dict[str, dict[str, object]] = {}
        self.throttled = 0  # household reads refused with a rate limit, from now on
        self.calls = CallCounter()
        self._now = datetime(2026, 6, 1, tzinfo=UTC)
        self.modstamp = {cid: self._tick() for cid in sorted(deposits)}

    def _tick(self) -> datetime:
        self._now += timedelta(seconds=1)
        return self._now

    def touch(self, *ids: str) -> None:
        for cid in ids:
            self.modstamp[cid] = self._tick()

    def set_deposits(self, cid: str, amount: float) -> None:
        self.deposits[cid] = amount
        self.touch(cid)

    def move(self, cid: str, old: str | None, new: str | None, *, touch: bool = True) -> None:
        """The customer leaves household ``old`` and/or joins ``new`` (role spouse)."""
        self.links = {lk for lk in self.links if (lk.customer_id, lk.household_id) != (cid, old)}
        if new is not None:
            self.links.add(Link(cid, new, "spouse"))
        if touch:
            self.touch(cid)

    def _record(self, cid: str) -> CrmRecord:
        assets = Assets(deposits=self.deposits[cid], investments=0, insurance=0)
        profile = CustomerProfile(id=cid, kind="individual", assets=assets)
        return CrmRecord(profile, self.modstamp[cid], dict(self.written.get(cid, {})))

    def read_changed(self, since: Cursor | None) -> Iterator[Page]:
        rows = sorted(self.deposits, key=lambda c: (self.modstamp[c], c))
        rows = [c for c in rows if since is None or Cursor(self.modstamp[c], c) >= since]
        for start in range(0, len(rows), self.capabilities.page_size):
            self.calls.add("read")
            yield Page(tuple(self._record(c) for c in rows[start : start + 50]))

    def fetch(self, ids: Sequence[str]) -> list[CrmRecord]:
        self.calls.add("fetch")
        return [self._record(c) for c in ids if c in self.deposits]

    def household_links(
        self, customers: Collection[str], households: Collection[str]
    ) -> list[Link]:
        self.calls.add("household")
        if self.throttled:
            self.throttled -= 1
            raise RateLimitedError("REQUEST_LIMIT_EXCEEDED")
        wanted = {lk.household_id for lk in self.links if lk.customer_id in customers}
        wanted |= set(households)
        links = [lk for lk in self.links if lk.household_id in wanted]
        return sorted(links, key=lambda lk: (lk.household_id, lk.customer_id))

    def household_check(self) -> SchemaCheck:
        return SchemaCheck(HOUSEHOLDS_CHECK, True, "links held in memory")

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        if not plan:
            return []
        self.calls.add("write")
        for update in plan.field_updates:
            self.written.setdefault(update.customer_id, {}).update(update.fields)
            self.touch(update.customer_id)  # our own write comes back as a change
        return [WriteResult("field_update", u.customer_id, True) for u in plan.field_updates]

    def tier(self, cid: str) -> tuple[str, str | None]:
        """The tier written, and the household its ``HOUSEHOLD_AUM`` reason names
        ("HOUSEHOLD_AUM Household <id> reaches floor ...")."""
        written = self.written[cid]
        named = re.search(r"HOUSEHOLD_AUM Household (\S+) ", str(written.get("reasons") or ""))
        return str(written["value_tier"]), named.group(1) if named else None


#: the day the engine assesses as of (each run sets it)
TODAY = [AS_OF]


def assess(
    profiles: Sequence[CustomerProfile], households: HouseholdLinks | None = None
) -> list[AssessmentData]:
    return decide_batch(profiles, POLICY, TODAY[0], households=households)


EngineFor = Callable[[HouseholdCrm], SyncEngine]


def _engine(store: StateStore, crm: HouseholdCrm) -> SyncEngine:
    return SyncEngine(
        store,
        crm,
        WRITEBACK,
        assess,
        stream="memory:customers",
        pseudonym_key=b"k" * 32,
        settings=SyncSettings(overlap=timedelta(seconds=0)),
        policy_version=POLICY.version,
        policy=POLICY,
    )


@pytest.fixture
def engine_for(tmp_path: Path) -> Iterator[EngineFor]:
    stores: list[StateStore] = []

    def make(crm: HouseholdCrm) -> SyncEngine:
        stores.append(StateStore.open(f"sqlite:///{tmp_path / 'state.db'}"))
        return _engine(stores[-1], crm)

    yield make
    for store in stores:
        store.close()


def _run(
    engine: SyncEngine, crm: HouseholdCrm, *, full: bool = False, day: int = 1
) -> Counter[str]:
    """A run on day ``day`` after ``AS_OF``: the cases change households the day after the
    first sync (on the day a customer was assessed, a change that leaves its own inputs as
    they were is taken for crmtier's own write coming back, ``PagePlanner.settled``)."""
    before = Counter(crm.calls.counts())
    TODAY[0] = AS_OF + timedelta(days=day)
    report = engine.run(RunOptions(as_of=TODAY[0], full=full))
    assert report.status == "succeeded", report.error
    assert report.counts.reconciles()
    return Counter(crm.calls.counts()) - before


def _stored(engine: SyncEngine) -> set[tuple[str, str]]:
    t = household_links.c
    with engine.store.begin() as conn:
        return set(conn.execute(sa.select(t.customer_id, t.household_id)).tuples())


def _synced(
    engine_for: EngineFor, deposits: dict[str, float], links: list[Link]
) -> tuple[HouseholdCrm, SyncEngine]:
    crm = HouseholdCrm(deposits, links)
    engine = engine_for(crm)
    _run(engine, crm, full=True, day=0)
    assert _run(engine, crm, day=0) == Counter({"read": 1})  # our writes back: settled
    assert _stored(engine) == {(lk.customer_id, lk.household_id) for lk in links}
    with engine.store.begin() as conn:
        assert is_complete(conn, engine.stream)
    return crm, engine


def L(cid: str, hid: str) -> Link:
    return Link(cid, hid, "spouse")


#: an incremental run over one page whose household change needs two bulk household reads
#: (the page's households now and at the last sync; the found members' other households),
#: one fetch of the members beside the page and one write call
ONE_PAGE = Counter({"read": 1, "household": 2, "fetch": 1, "write": 1})


def test_a_member_joining_lifts_the_household(engine_for: EngineFor) -> None:
    crm, engine = _synced(engine_for, {"A": HALF, "B": HALF, "Z": 1.0}, [L("B", "H")])
    assert crm.tier("A") == ("wealth", None) and crm.tier("B") == ("wealth", None)
    crm.move("A", None, "H")
    assert _run(engine, crm) == ONE_PAGE
    assert crm.tier("A") == crm.tier("B") == ("private", "H")
    assert _stored(engine) == {("A", "H"), ("B", "H")}


def test_a_member_leaving_lowers_the_household_it_left_in_the_same_run(
    engine_for: EngineFor,
) -> None:
    crm, engine = _synced(engine_for, {"A": HALF, "B": HALF, "Z": 1.0}, [L("A", "H"), L("B", "H")])
    assert crm.tier("A") == crm.tier("B") == ("private", "H")
    crm.move("A", "H", None)  # B's own record does not change
    assert _run(engine, crm) == ONE_PAGE
    assert crm.tier("A") == crm.tier("B") == ("wealth", None)
    assert _stored(engine) == {("B", "H")}
    assert _run(engine, crm) == Counter({"read": 1})  # our writes come back: settled


def test_a_split_re_tiers_the_old_and_the_new_household(engine_for: EngineFor) -> None:
    quarter = 1_600_000.0  # four: 640万, private; two: 320万, wealth
    people = {c: quarter for c in "ABCD"}
    crm, engine = _synced(engine_for, people, [L(c, "H") for c in "ABCD"])
    assert {crm.tier(c) for c in "ABCD"} == {("private", "H")}
    crm.move("C", "H", "H2")
    crm.move("D", "H", "H2")
    crm.set_deposits("D", quarter * 3)  # the new household: 640万 again
    assert _run(engine, crm) == ONE_PAGE
    assert crm.tier("A") == crm.tier("B") == ("wealth", None)
    assert crm.tier("C") == crm.tier("D") == ("private", "H2")
    assert _stored(engine) == {("A", "H"), ("B", "H"), ("C", "H2"), ("D", "H2")}


def test_a_member_in_two_households_takes_the_better_one(engine_for: EngineFor) -> None:
    people = {"P": HALF, "Q": HALF, "S": 3_000_000.0}
    links = [L("P", "OWN"), L("Q", "OWN"), L("P", "CHILD"), L("S", "CHILD")]
    crm, engine = _synced(engine_for, people, links)
    assert crm.tier("P")[0] == crm.tier("Q")[0] == crm.tier("S")[0] == "private"
    crm.set_deposits("Q", 100_000.0)  # OWN: 360万, wealth; CHILD still 650万
    calls = _run(engine, crm)
    # Q's household, then P's other household, then S's (none new): three bulk reads
    assert calls == Counter({"read": 1, "household": 3, "fetch": 1, "write": 1})
    assert crm.tier("P") == ("private", "CHILD")
    assert crm.tier("Q") == ("wealth", "OWN")
    assert crm.tier("S") == ("private", "CHILD")


def test_a_member_dropped_without_a_change_of_its_own_is_re_tiered(engine_for: EngineFor) -> None:
    crm, engine = _synced(engine_for, {"A": HALF, "B": HALF, "Z": 1.0}, [L("A", "H"), L("B", "H")])
    crm.move("B", "H", None, touch=False)  # the relation goes; B's record stays as it was
    crm.set_deposits("A", HALF + 1)  # a later change of the member still in it
    assert _run(engine, crm) == ONE_PAGE
    assert crm.tier("A") == crm.tier("B") == ("wealth", None)
    assert _stored(engine) == {("A", "H")}


def test_a_rate_limit_on_the_household_read_pauses_the_run_and_the_next_finishes(
    engine_for: EngineFor,
) -> None:
    """The page whose households cannot be read is not committed: its customers are
    deferred (the run's counts still reconcile, it pauses rather than fails) and the next
    run reads the page again."""
    crm, engine = _synced(engine_for, {"A": HALF, "B": HALF, "Z": 1.0}, [L("B", "H")])
    crm.move("A", None, "H")
    crm.throttled = 1
    TODAY[0] = AS_OF + timedelta(days=1)
    paused = engine.run(RunOptions(as_of=TODAY[0]))
    assert paused.status == "paused_quota", paused.error
    assert paused.counts.reconciles() and paused.counts.skipped["deferred_to_next_run"] == 1
    assert paused.outcomes == {"A": "deferred"}
    assert _run(engine, crm) == ONE_PAGE
    assert crm.tier("A") == crm.tier("B") == ("private", "H")


def test_a_run_with_households_off_marks_the_links_incomplete(
    engine_for: EngineFor, tmp_path: Path
) -> None:
    crm, engine = _synced(engine_for, {"A": HALF, "B": HALF}, [L("A", "H"), L("B", "H")])
    engine.policy = policy_over_default({"households": {"enabled": False}})
    crm.set_deposits("A", HALF + 1)
    assert "household" not in _run(engine, crm)
    with engine.store.begin() as conn:
        assert not is_complete(conn, engine.stream)


def test_a_member_decided_beside_an_earlier_page_is_read_twice_and_decided_once(
    tmp_path: Path,
) -> None:
    """A full run over three pages: B (page 3) is fetched and decided beside A's page
    (page 1), then page 3 reads it again on the same inputs. It is settled by that decision
    (``PagePlanner.settled``), not decided again: one tier change, the household's reason
    kept. It is counted as the CRM records were read, twice (``read`` counts records read,
    as for a customer whose waiting tasks are revisited before the stream), and unchanged
    once; one process and the run spread over page units (threads here) count alike. A
    dry run, which records no decision, settles it by what it planned: counted as the run
    will count, its writes previewed once."""
    people = {f"C{i:03d}": 1.0 for i in range(120)} | {"C005": HALF, "C110": HALF}
    links = [L("C005", "H"), L("C110", "H")]

    def full_run(spread: bool) -> tuple[HouseholdCrm, SyncEngine, RunReport]:
        crm = HouseholdCrm(people, links)
        name = "spread" if spread else "one"
        open_store = partial(StateStore.open, f"sqlite:///{tmp_path / name}.db")
        engine = _engine(open_store(), crm)
        if not spread:
            dry = engine.run(RunOptions(full=True, as_of=AS_OF, dry_run=True))
            previewed = Counter(w.customer_id for w in dry.preview)
            assert previewed["C110"] == previewed["C005"] == previewed["C000"] > 0
            real = engine.run(RunOptions(full=True, as_of=AS_OF))
            counted = ("read", "tiered", "unchanged", "tiers")
            assert [dry.counts.as_json()[k] for k in counted] == [
                real.counts.as_json()[k] for k in counted
            ]
            return crm, engine, real
        opened: list[StateStore] = []

        def unit_engine() -> SyncEngine:
            opened.append(open_store())
            return _engine(opened[-1], crm)

        executor = InProcessUnits(unit_engine, workers=1)
        try:
            return crm, engine, retier(engine, executor, RunOptions(full=True, as_of=AS_OF))
        finally:
            executor.close()
            for store in opened:
                store.close()

    (one_crm, one, one_report), (spread_crm, spread, spread_report) = map(full_run, (False, True))
    try:
        for crm, engine, report in (
            (one_crm, one, one_report),
            (spread_crm, spread, spread_report),
        ):
            assert report.status == "succeeded", report.error
            assert report.counts.reconciles()
            assert crm.tier("C005") == crm.tier("C110") == ("private", "H")
            assert report.counts.read == len(people) + 1  # C110 beside page 1, then on page 3
            assert report.counts.tiered == len(people)  # each customer assessed once
            assert (report.counts.written, report.counts.unchanged) == (len(people), 1)
            assert report.outcomes["C110"] == Outcome.WRITTEN
            with engine.store.begin() as conn:
                decided = conn.execute(
                    sa.select(sa.func.count()).where(schema.audit.c.event == "tier_change")
                ).scalar()
            assert decided == len(people)  # one tier change a customer
        assert spread_report.counts.as_json() == one_report.counts.as_json()
        assert spread_report.outcomes == one_report.outcomes
        assert spread_crm.written == one_crm.written
    finally:
        one.store.close()
        spread.store.close()
