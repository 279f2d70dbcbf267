"""The edits the demo makes in the sandbox CRM after the first sync, as an RM or a back
office would: each one exercises a rule the bank cares about, and arrives through the
CRM's own change notification (webhook path), not through the scheduled sync."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Change:
    label: str
    from_tier: str  # customers of this stored value tier are picked
    count: int
    edit: Mapping[str, Any]  # canonical path -> new value


_NO_AVG = {"aum_avg_3m": None}

CHANGES: tuple[Change, ...] = (
    Change(
        "large deposit: upgrade to private banking (immediate)",
        "mass",
        3,
        {"assets.deposits": 9_000_000, "assets.investments": 0, "assets.insurance": 0, **_NO_AVG},
    ),
    Change(
        "assets withdrawn: downgrade held by the 90-day grace period",
        "private",
        1,
        {"assets.deposits": 1_000, "assets.investments": 0, "assets.insurance": 0, **_NO_AVG},
    ),
    Change("customer became a PEP: EDD task, no marketing", "affluent", 1, {"aml.pep": True}),
    Change("sanctions list hit: AML prohibited", "wealth", 1, {"aml.sanctions_hit": True}),
    Change("loan reclassified 次级 (substandard): limit review", "affluent", 1,
           {"credit.loan_class": "substandard"}),
    Change("complaint opened: priority task within 15 days", "wealth", 2,
           {"feedback.open_complaints": 1}),
)


def pick(
    changes: Sequence[Change], tiers: Mapping[str, str], mapped: set[str]
) -> list[tuple[Change, str]]:
    """Deterministic (change, customer id) pairs: the first customers (by id) of each
    change's tier not already picked. Paths the CRM's mapping lacks are dropped; a change
    with no eligible customer (a tiny demo) is skipped."""
    by_tier: dict[str, list[str]] = {}
    for cid in sorted(tiers):
        by_tier.setdefault(tiers[cid], []).append(cid)
    taken: set[str] = set()
    out = []
    for change in changes:
        edit = {k: v for k, v in change.edit.items() if k in mapped}
        if not edit:
            continue
        pool = [c for c in by_tier.get(change.from_tier, []) if c not in taken]
        for cid in pool[: change.count]:
            taken.add(cid)
            out.append((Change(change.label, change.from_tier, change.count, edit), cid))
    return out
