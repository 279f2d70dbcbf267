"""``sync.simulation``: the vectorised shortcut gives exactly the brute-force figures.

The simulator decides and plans only the customers whose evaluation differs between the two
policies. Held here against the brute force (every customer decided under both policies
and planned by the sync's planner), on a synthetic book synced under the active policy,
for candidates that change thresholds, change what the strategy does, or change nothing
but the name (a version-only rewrite)."""

from __future__ import annotations

import tempfile
import textwrap
from collections.abc import Collection, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from connectors.contract import Capabilities
from connectors.mapping import load_default_mapping
from connectors.sandbox.generator import generate
from connectors.sandbox.households import household_links as seeded_links
from sync import jsontext
from sync.inputs import StoredChunk, StoredCustomer, profile_text
from sync.planner import Known, action_kinds, plan_customer, tiers_of
from sync.simulation import PlanSide, Simulator
from sync.simulation_diff import differs
from sync.state import CustomerState
from sync.stored_columns import columns_of
from tiering_core.columns import Columns
from tiering_core.engine import decide_batch, evaluate
from tiering_core.models import CustomerProfile
from tiering_core.policy import Policy, load_policy
from tiering_core.rules.household import HouseholdLinks, Link

DAY = date(2026, 12, 6)
WRITEBACK = load_default_mapping("salesforce").writeback
CAPS = Capabilities(crm="test", page_size=2000, max_write_batch=200)


def policy(extra: str = "") -> Policy:
    """The default policy with ``extra`` merged over it, as an admin's file is."""
    if not extra:
        return load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "policy.toml"
        path.write_text(textwrap.dedent(extra), encoding="utf-8")
        return load_policy(path)


def seeded_households(n: int = 400) -> list[Link]:
    """The sandboxes' households over the book ``synced_book(n)`` generates."""
    book = list(generate(n, seed=11, dirty_share=0))
    people = [c.index for c in book if c.profile.get("kind") != "corporate"]
    return [Link(book[lk.member].id, book[lk.household].id, lk.role) for lk in seeded_links(people)]


def synced_book(
    active: Policy, n: int = 400, links: list[Link] | None = None
) -> list[StoredCustomer]:
    """A book as a sync under ``active`` on DAY leaves it: the CRM shows what was written
    (with ``links``: decided beside its households, as a sync with households on does)."""
    profiles = [
        CustomerProfile.model_validate({"id": c.id, **c.profile})
        for c in generate(n, seed=11, dirty_share=0)
    ]
    households = None
    if links is not None:
        households = HouseholdLinks.build([p.id for p in profiles], links, active)
    decisions = decide_batch(profiles, active, DAY, households=households)
    book = []
    for profile, decision in zip(profiles, decisions, strict=True):
        plan = plan_customer(decision, {}, Known(), WRITEBACK)
        below = decision["below_floor_since"]
        state = CustomerState(
            profile.id,
            f"p-{profile.id}",
            tiers=tiers_of(decision),
            fields=None,
            assessed_at=DAY,
            below_floor_since=below,
        )
        current = {k: v.isoformat() if isinstance(v, date) else v for k, v in plan.fields.items()}
        book.append(
            StoredCustomer(
                profile.id, state.pseudonym, profile_text(profile), current, DAY.isoformat(), state
            )
        )
    return book


def known_of(
    book: list[StoredCustomer], active: Policy, links: list[Link] | None = None
) -> dict[str, Known]:
    """Tasks and memberships the sync made for the book."""
    profiles = [b.profile for b in book]
    households = None
    if links is not None:
        households = HouseholdLinks.build([p.id for p in profiles], links, active)
    out = {}
    decided = decide_batch(profiles, active, DAY, households=households)
    for b, decision in zip(book, decided, strict=True):
        plan = plan_customer(decision, {}, Known(), WRITEBACK)
        out[b.customer_id] = Known(
            tasks=frozenset(t.dedupe_key for t in plan.tasks),
            memberships={m.campaign: m.dedupe_key for m in plan.memberships if m.member},
        )
    return out


def brute_force(
    book: list[StoredCustomer],
    active: Policy,
    candidate: Policy,
    known: dict[str, Known],
    day: date = DAY,
    links: list[Link] | None = None,
) -> tuple[PlanSide, PlanSide]:
    profiles = [b.assessed() for b in book]
    ids = [b.customer_id for b in book]
    sides = (PlanSide(), PlanSide())
    for p, side in zip((active, candidate), sides, strict=True):
        households = None if links is None else HouseholdLinks.build(ids, links, p)
        decided = decide_batch(
            profiles, p, day, kinds=action_kinds(WRITEBACK), households=households
        )
        for b, d in zip(book, decided, strict=True):
            side.add(
                d,
                plan_customer(d, b.crm_values(), known[b.customer_id], WRITEBACK),
                WRITEBACK,
                CAPS,
            )
    return sides


def _changes(side: PlanSide) -> dict[Any, int]:
    return {k: n for k, n in side.totals.counts.items() if k[2] != "unchanged" and n}


CANDIDATES = {
    "thresholds": """
        [value.tiers.private]
        aum_floor = 300_000
        [value.tiers.wealth]
        aum_floor = 150_000
        [value.tiers.affluent]
        aum_floor = 60_000
        [ops]
        failed_medium_from = 1
    """,
    "strategy": """
        [strategy.tasks.upgrade_call]
        enabled = false
        [strategy]
        reasons_top = 2
    """,
    "renamed": 'name = "renamed"',
}


@pytest.mark.parametrize("name", sorted(CANDIDATES))
def test_shortcut_equals_brute_force(name: str) -> None:
    active = policy()
    candidate = policy(CANDIDATES[name])
    book = synced_book(active)
    known = known_of(book, active)
    simulator = Simulator(
        active, candidate, DAY, WRITEBACK, CAPS, lambda ids: {i: known[i] for i in ids}
    )
    for start in range(0, len(book), 150):
        simulator.add(book[start : start + 150])
    sim = simulator.result
    brute_active, brute_candidate = brute_force(book, active, candidate, known)

    assert _changes(brute_active) == {}  # the book is in sync with the active policy
    assert _changes(sim.active) == {}
    assert _changes(sim.candidate) == _changes(brute_candidate)
    assert sim.candidate.calls(CAPS) == brute_candidate.calls(CAPS)
    assert sim.customers == len(book)
    if name == "renamed":
        assert sim.decided == 0  # nothing decided again: a version-only rewrite each
        assert _changes(sim.candidate) == {("field", "policy_version", "created"): len(book)}


class BookHouseholds:
    """``sync.household_store.HouseholdSource`` over a book in memory."""

    def __init__(self, book: list[StoredCustomer], links: list[Link]) -> None:
        self.by_id = {b.customer_id: b for b in book}
        self.links = links

    def near(self, ids: Collection[str]) -> list[Link]:
        wanted = set(ids)
        households = {lk.household_id for lk in self.links if lk.customer_id in wanted}
        return [lk for lk in self.links if lk.household_id in households]

    def customers(self, ids: Sequence[str]) -> list[StoredChunk]:
        return [StoredChunk.of([self.by_id[i] for i in ids])]


#: a change that touches a few customers, not their households' other members
FEW = "[ops]\nfailed_medium_from = 1\n"


@pytest.mark.parametrize("name", [*sorted(CANDIDATES), "few"])
def test_with_households_the_shortcut_equals_brute_force(name: str) -> None:
    """Households on in both policies: chunks of 97 cut through households (the other
    members are loaded beside each chunk), and a change may touch one member only (it is
    decided beside the others); the figures are still those of deciding the whole book
    with every link at once."""
    on = "\n[households]\nenabled = true\n"
    active, candidate = policy(on), policy((FEW if name == "few" else CANDIDATES[name]) + on)
    links = seeded_households()
    book = synced_book(active, links=links)
    known = known_of(book, active, links)
    simulator = Simulator(
        active,
        candidate,
        DAY,
        WRITEBACK,
        CAPS,
        lambda ids: {i: known[i] for i in ids},
        households=BookHouseholds(book, links),
    )
    for start in range(0, len(book), 97):
        simulator.add(book[start : start + 97])
    sim = simulator.result
    brute_active, brute_candidate = brute_force(book, active, candidate, known, links=links)
    assert _changes(brute_active) == {} == _changes(sim.active)  # in sync, households and all
    assert sim.matrices["value"].moved == 0 or name == "thresholds"
    assert _changes(sim.candidate) == _changes(brute_candidate)
    assert sim.candidate.calls(CAPS) == brute_candidate.calls(CAPS)
    if name == "renamed":
        assert sim.decided == 0
    if name == "few":
        assert 0 < sim.decided < len(book) // 2


def test_a_book_assessed_on_another_day_is_planned_in_full() -> None:
    """Half a year on, review dates and task periods move under either policy: the
    simulation's figures are still the brute force's, for both policies."""
    active, candidate = policy(), policy(CANDIDATES["renamed"])
    later = date(2027, 6, 30)
    book = synced_book(active, 200)
    known = known_of(book, active)
    simulator = Simulator(
        active, candidate, later, WRITEBACK, CAPS, lambda ids: {i: known[i] for i in ids}
    )
    simulator.add(book)
    brute_active, brute_candidate = brute_force(book, active, candidate, known, later)
    assert _changes(brute_active)  # the active policy itself has work to do then
    assert _changes(simulator.result.active) == _changes(brute_active)
    assert _changes(simulator.result.candidate) == _changes(brute_candidate)


def test_matrices_and_movers_count_every_customer() -> None:
    active, candidate = policy(), policy(CANDIDATES["thresholds"])
    book = synced_book(active, 300)
    known = known_of(book, active)
    simulator = Simulator(
        active, candidate, DAY, WRITEBACK, CAPS, lambda ids: {i: known[i] for i in ids}
    )
    simulator.add(book)
    sim = simulator.result
    for matrix in sim.matrices.values():
        assert int(matrix.cells.sum()) == len(book)
    # movers: the CRM ids whose value tier moves two or more steps, by brute force
    profiles = [b.assessed() for b in book]
    ladder = ["private", "wealth", "affluent", "mass"]
    old = decide_batch(profiles, active, DAY)
    new = decide_batch(profiles, candidate, DAY)
    expected = [
        b.customer_id
        for b, o, n in zip(book, old, new, strict=True)
        if o["value_tier"] in ladder
        and n["value_tier"] in ladder
        and abs(ladder.index(o["value_tier"]) - ladder.index(n["value_tier"])) > 1
    ]
    assert expected and sim.movers["value"] == expected
    assert sim.mover_counts["value"] == len(expected)


def test_same_policy_differs_nowhere() -> None:
    active = policy()
    profiles = [
        CustomerProfile.model_validate({"id": c.id, **c.profile})
        for c in generate(200, seed=3, dirty_share=0.0)
    ]
    cols = Columns.from_profiles(profiles, active)
    a, b = evaluate(cols, active, DAY), evaluate(cols, policy('name = "x"'), DAY)
    assert not differs(a, b).any()
    moved = evaluate(cols, policy(CANDIDATES["thresholds"]), DAY)
    assert differs(a, moved).any()
    assert np.array_equal(differs(a, moved), differs(moved, a))


def test_stored_json_lays_out_as_the_validated_profiles() -> None:
    """``columns_of`` (the stored JSON, unvalidated) gives the very columns the validated
    profiles give, with the committed state as ``previous`` (the generator's dirty but
    readable records included, as a sync stores them; a policy with exchange rates)."""
    active = policy("[fx]\nUSD = 7.1\n")
    stored = []
    for i, c in enumerate(generate(400, seed=5)):
        try:
            profile = CustomerProfile.model_validate({"id": c.id, **c.profile})
        except ValueError:
            continue  # unreadable: a sync never assesses, so never stores, it
        tiers = [
            None,
            {"value_tier": "wealth"},
            {"value_tier": "unrated"},
            # an applied override's: what the customer's own data earns kept apart
            {"value_tier": "private", "qualified_value_tier": "affluent"},
            {
                "value_tier": "private",
                "qualified_value_tier": "wealth",
                "qualified_below_floor_since": "2026-04-01",
            },
        ][i % 5]
        below = date(2026, 5, 1) if i % 4 == 0 else None
        state = CustomerState(
            c.id, "p", tiers=tiers, assessed_at=date(2026, 6, 1), below_floor_since=below
        )
        stored.append(StoredCustomer(c.id, "p", profile_text(profile), {}, "2026-06-01", state))
    fast = columns_of(stored, active)
    models = Columns.from_profiles([s.assessed() for s in stored], active)
    assert fast.n == models.n > 300
    for name, value in vars(models).items():
        other = vars(fast)[name]
        if name in Columns.NAMING:
            continue  # what decisions name a customer by: a simulation only evaluates
        if isinstance(value, dict):
            assert value.keys() == other.keys(), name
            assert all(np.array_equal(value[k], other[k]) for k in value), name
        elif isinstance(value, np.ndarray):
            assert value.dtype == other.dtype and value.shape == other.shape, name
            assert np.array_equal(value, other, equal_nan=True), name
        else:
            assert value == other, name


def test_the_stored_version_text_reads_as_the_decoded_value() -> None:
    """The version-only count reads the committed fields' text for the active version
    without decoding it; any other text (the candidate's version, spaced JSON, no
    version, no fields) is decoded: both give what the decoded values give."""
    active, candidate = policy(), policy(CANDIDATES["renamed"])
    simulator = Simulator(active, candidate, DAY, WRITEBACK, CAPS, lambda ids: {})
    texts: list[Any] = [
        jsontext.dumps({"value_tier": "mass", "policy_version": active.version}),
        jsontext.dumps({"policy_version": candidate.version}),
        '{"policy_version": "' + active.version + '"}',  # not compact: decoded
        # the active version's text inside a string value is escaped: not taken for it
        jsontext.dumps({"reasons": f'"policy_version":"{active.version}"'}),
        None,
    ]
    current = [jsontext.dumps({"policy_version": candidate.version})] * len(texts)
    n = len(texts)
    chunk = StoredChunk(
        [f"C{i}" for i in range(n)],
        ["p"] * n,
        ["{}"] * n,
        current,
        [DAY.isoformat()] * n,
        [None] * n,
        texts,
        [None] * n,
        [None] * n,
        decode_current=jsontext.loads,
        decode_fields=jsontext.loads,
    )
    shown = [simulator._shows_version(chunk, i) for i in range(n)]
    assert shown == [False, True, False, True, True]
    assert shown == [
        chunk.customer(i).crm_value("policy_version") == candidate.version for i in range(n)
    ]
