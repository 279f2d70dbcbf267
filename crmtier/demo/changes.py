"""The edits the demo makes in the sandbox CRM after the first sync, as an RM or a back
office would: each one exercises a rule the bank cares about, and arrives through the
CRM's own change notification (webhook path), not through the scheduled sync."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class Change:
    label: str
    from_tier: str  # customers of this stored value tier are picked ...
    count: int
    edit: Mapping[str, Any]  # canonical path -> new value
    #: ... unless a stored tier already is one of these (the edit would show nothing)
    unless: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: what to say when, as intended, the CRM shows no change
    when_unchanged: str = "no change in the CRM"


_NO_AVG = {"aum_avg_3m": None}
UPGRADE = "large deposit (upgrade at once)"

CHANGES: tuple[Change, ...] = (
    Change(
        UPGRADE,
        "mass",
        3,
        {"assets.deposits": 9_000_000, "assets.investments": 0, "assets.insurance": 0, **_NO_AVG},
    ),
    Change(
        "assets withdrawn (downgrade)",
        "private",
        1,
        {"assets.deposits": 1_000, "assets.investments": 0, "assets.insurance": 0, **_NO_AVG},
        when_unchanged="tier kept: a downgrade waits for the 90-day grace period (no flapping)",
    ),
    Change(
        "became a PEP",
        "affluent",
        1,
        {"aml.pep": True},
        unless={"aml_risk": ("high", "prohibited")},
    ),
    Change(
        "sanctions list hit",
        "wealth",
        1,
        {"aml.sanctions_hit": True},
        unless={"aml_risk": ("prohibited",)},
    ),
    Change(
        "loan reclassified 次级 substandard",
        "affluent",
        1,
        {"credit.loan_class": "substandard"},
        unless={"credit_risk": ("high",)},
    ),
    Change("complaint opened", "wealth", 1, {"feedback.open_complaints": 1}),
)


def pick(
    changes: Sequence[Change],
    tiers: Mapping[str, Mapping[str, str]],
    mapped: set[str],
    first: Collection[str] = (),
) -> list[tuple[Change, str]]:
    """Deterministic (change, customer id) pairs: the first customers (``first``, then by
    id) of each change's value tier, not excluded by ``unless``, not already picked. Paths
    the CRM's mapping lacks are dropped; a change with no eligible customer (a tiny demo)
    is skipped. ``first``: households' primary members, so the large deposits lift a
    household (crmtier/demo/households.py)."""
    taken: set[str] = set()
    out = []
    for change in changes:
        edit = {k: v for k, v in change.edit.items() if k in mapped}
        if not edit:
            continue
        pool = [
            cid
            for cid in sorted(tiers, key=lambda c: (c not in first, c))
            if tiers[cid].get("value_tier") == change.from_tier
            and cid not in taken
            and not any(tiers[cid].get(dim) in values for dim, values in change.unless.items())
        ]
        for cid in pool[: change.count]:
            taken.add(cid)
            out.append((replace(change, edit=edit), cid))
    return out
