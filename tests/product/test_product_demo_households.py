"""The demo's household pieces without a sandbox: the large deposits go to households'
primary members first, so a household reaches private banking even in a small book."""

from __future__ import annotations

from crmtier.demo.changes import CHANGES, UPGRADE, pick
from crmtier.demo.households import primaries
from tiering_core.rules.household import Link

TIERS = {f"C{i:02d}": {"value_tier": "mass"} for i in range(10)}
MAPPED = {"assets.deposits", "assets.investments", "assets.insurance", "aum_avg_3m"}


def upgraded(first: set[str]) -> list[str]:
    return [cid for change, cid in pick(CHANGES, TIERS, MAPPED, first) if change.label == UPGRADE]


def test_primaries_are_picked_first_then_by_id() -> None:
    links = [
        Link("C07", "C07", "primary"),
        Link("C08", "C07", "spouse"),
        Link("C05", "C05", "primary"),
    ]
    assert primaries(links) == {"C05", "C07"}
    assert upgraded(primaries(links)) == ["C05", "C07", "C00"]
    assert upgraded(set()) == ["C00", "C01", "C02"]  # no households: as before
