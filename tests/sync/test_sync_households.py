"""Households in a real sync (issue 21 §1.3), on the Salesforce sandbox that seeds them.

The engine as ``open_engine`` builds it decides a page's changed customers beside every
member of their households: a member below the private floor whose household is above it
is written private with ``HOUSEHOLD_AUM``; a change to one member re-tiers the others
(fetched beside the page, counted read once, the bookmark moved by the page only), on a
scheduled run and on the webhook path alike.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from connectors.sandbox.salesforce_wire import account_of_contact, make_id, person_contact_id
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync.engine import RunOptions, RunReport
from tests.sync.conftest import Harness, salesforce_harness

AS_OF = date(2026, 6, 30)
CUSTOMERS = 120
HALF = 3_500_000  # the private floor is 600万: one member alone is below it, two above
SMALL = 100_000


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    with salesforce_harness(tmp_path / "sandbox", monkeypatch, CUSTOMERS) as h:
        # households are opt-in: switched on in the harness's policy file
        policy = h.config.parent / "unbounded-tasks.toml"
        with policy.open("a", encoding="utf-8") as f:
            f.write("\n[households]\nenabled = true\n")
        yield h


def _run(h: Harness) -> RunReport:
    with open_engine(load_config(h.config), as_of=AS_OF) as engine:
        report = engine.run(RunOptions(as_of=AS_OF))
    assert report.status == "succeeded", report.error
    return report


def _couples(h: Harness) -> list[tuple[str, str]]:
    """Two-member households of individuals clear of AML trouble, as the CRM links them."""
    connector = load_config(h.config).connector()
    try:
        records = {r.profile.id: r for page in connector.read_changed(None) for r in page.records}
        links = connector.household_links(sorted(records), [])
    finally:
        connector.close()
    sizes = Counter(lk.household_id for lk in links)
    per_customer = Counter(lk.customer_id for lk in links)
    couples = []
    for hid, n in sizes.items():
        members = sorted({lk.customer_id for lk in links if lk.household_id == hid})
        if (
            n == 2
            and len(members) == 2
            and all(
                per_customer[m] == 1
                and records[m].profile.kind == "individual"
                and h.sandbox.written(m).get("aml_risk") in ("low", "medium")
                for m in members
            )
        ):
            couples.append((members[0], members[1]))
    assert len(couples) >= 2, couples
    return couples


def _set_aum(h: Harness, cid: str, amount: int) -> None:
    h.sandbox.edit_customer(
        cid,
        {
            "assets.deposits": amount,
            "assets.investments": 0,
            "assets.insurance": 0,
            "aum_avg_3m": amount,
        },
    )


def _lifted(h: Harness, cid: str) -> bool:
    written = h.sandbox.written(cid)
    return written["value_tier"] == "private" and "HOUSEHOLD_AUM" in str(written["reasons"])


def test_a_member_change_lifts_the_household_on_a_run_and_a_webhook(harness: Harness) -> None:
    h = harness
    _run(h)
    (a, b), (c, d), *_ = _couples(h)
    for cid, amount in ((a, HALF), (b, SMALL), (c, HALF), (d, SMALL)):
        _set_aum(h, cid, amount)
    _run(h)
    assert not any(_lifted(h, cid) for cid in (a, b, c, d))  # 360万: below the floor

    # an incremental run reads only b; a is fetched beside it and lifted too
    _set_aum(h, b, HALF)
    report = _run(h)
    assert _lifted(h, a) and _lifted(h, b)
    assert report.outcomes[a] == report.outcomes[b] == "written"
    assert report.counts.tiered == report.counts.written == 2  # b read, a beside it: once each
    assert report.counts.reconciles()
    again = _run(h)  # our own writes coming back: settled, no household read, no write
    assert again.counts.written == 0
    assert again.api_calls.get("query") == 1  # the stream's read alone: no household read

    # the webhook path: d's change, fetched alone, lifts c as well
    _set_aum(h, d, HALF)
    with open_engine(load_config(h.config), as_of=AS_OF) as engine:
        [record] = engine.connector.fetch([d])
        outcomes = engine.process_changes([record], {d: "evt-1"})
    assert outcomes[c] == outcomes[d] == "written"
    assert _lifted(h, c) and _lifted(h, d)


def _relation(h: Harness, a: str, b: str) -> tuple[str, str, str]:
    """The active relation of a couple: (its id, the household's primary, the member)."""
    for rid, _, row in h.sandbox.store.scan("AccountContactRelation"):  # type: ignore[attr-defined]
        member = account_of_contact(str(row["ContactId"]))
        if row.get("IsActive") and {str(row["AccountId"]), member} == {a, b}:
            return rid, str(row["AccountId"]), member
    raise AssertionError(f"no relation between {a} and {b}")


def test_a_member_leaving_lowers_the_household_it_left_in_the_same_run(harness: Harness) -> None:
    """The household the member left is re-tiered from the links the store recorded: in
    Salesforce a household of one has no relation left, so the CRM alone no longer names
    the primary member once the other has gone."""
    h = harness
    _run(h)
    (a, b), *_ = _couples(h)
    for cid in (a, b):
        _set_aum(h, cid, HALF)
    _run(h)
    assert _lifted(h, a) and _lifted(h, b)

    rid, primary, member = _relation(h, a, b)
    h.sandbox.store.update("AccountContactRelation", rid, {"IsActive": False})  # type: ignore[attr-defined]
    _set_aum(h, member, HALF + 1)  # the member's own record changes with it
    report = _run(h)
    for cid in (primary, member):  # below the floor alone: held there for the grace period
        reasons = str(h.sandbox.written(cid)["reasons"])
        assert "HOUSEHOLD_AUM" not in reasons and "VAL_HELD_GRACE" in reasons, reasons
    assert report.outcomes[primary] == report.outcomes[member] == "written"
    # the stream's page (both on it); two bulk household reads of three queries each (the
    # member's households now and at the last sync; the primary, found through the store's
    # links); no fetch (the primary was read with the page); one write call for both;
    # and, made before the run and reported with it (its engine's first), the token and
    # the start checks, three calls of the minimum: one describe of AccountContactRelation
    # (what households need, sync.households.require), one each of Task and CampaignMember
    # (their External ID fields, which tasks and memberships need: sync.write_readiness)
    assert report.api_calls == {
        "query": 1 + 2 * 3,
        "collections_update": 1,
        "oauth_token": 1,
        "describe": 3,
    }
    assert report.min_calls["start_checks"] == 3


def _single(h: Harness, taken: set[str]) -> str:
    """An individual in no household, clear of AML trouble."""
    connector = load_config(h.config).connector()
    try:
        records = {r.profile.id: r for page in connector.read_changed(None) for r in page.records}
        linked = {lk.customer_id for lk in connector.household_links(sorted(records), [])}
    finally:
        connector.close()
    for cid, record in sorted(records.items()):
        if (
            cid not in linked | taken
            and record.profile.kind == "individual"
            and h.sandbox.written(cid).get("aml_risk") in ("low", "medium")
        ):
            return cid
    raise AssertionError("no single customer")


def test_a_member_joining_lifts_the_household_with_the_calls_counted(harness: Harness) -> None:
    h = harness
    _run(h)
    (a, b), *_ = _couples(h)
    joiner = _single(h, {a, b})
    for cid, amount in ((a, HALF), (b, SMALL), (joiner, HALF)):
        _set_aum(h, cid, amount)
    _run(h)
    assert not any(_lifted(h, cid) for cid in (a, b, joiner))  # 360万 and 350万 apart
    _, primary, _ = _relation(h, a, b)

    store = h.sandbox.store  # type: ignore[attr-defined]
    store.insert_many(
        "AccountContactRelation",
        [
            (
                make_id("AccountContactRelation", 90_001),
                store.clock(),
                {
                    "AccountId": primary,
                    "ContactId": person_contact_id(joiner),
                    "Roles": "Spouse",
                    "IsActive": True,
                    "IsDirect": False,
                },
            )
        ],
    )
    _set_aum(h, joiner, HALF + 1)  # the joiner's record changes with it
    report = _run(h)
    assert all(_lifted(h, cid) for cid in (a, b, joiner))  # 710万 together
    assert report.counts.tiered == report.counts.written == 3
    # queries: the stream's page (the joiner alone); two bulk household reads (the
    # joiner's household, four; a's and b's other households, five); one fetch of a and b;
    # one lookup of the campaign members the lift makes. One call for each kind of write.
    calls = report.api_calls
    assert calls.pop("query") == 1 + 4 + 5 + 1 + 1
    assert calls == {  # and the start checks before the run: the token, three describes
        "collections_update": 1,
        "collections_upsert": 1,
        "collections_create": 1,
        "collections_delete": 1,
        "oauth_token": 1,
        "describe": 3,
    }
    assert report.min_calls["start_checks"] == 3
