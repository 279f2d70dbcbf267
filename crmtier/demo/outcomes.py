"""What the demo's CRM edits led to, read back from the CRM itself: tier fields that
changed, tasks that appeared, campaign memberships gained or lost. Snapshots are taken
through the sandbox's inspection surface (not the API), so they cost no API calls."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from connectors.sandbox.base import Sandbox
from crmtier.demo.changes import Change

TIER_OUTPUTS = ("value_tier", "needs_tier", "credit_risk", "aml_risk", "ops_risk")
_SHORT = {
    "value_tier": "value",
    "needs_tier": "needs",
    "credit_risk": "credit",
    "aml_risk": "AML",
    "ops_risk": "ops",
}


@dataclass(frozen=True)
class CrmView:
    """The picked customers as the CRM shows them at one moment."""

    tiers: dict[str, dict[str, str]]
    tasks: dict[str, tuple[str, str]]  # external id -> (customer id, subject)
    memberships: set[tuple[str, str]]


def snapshot(sandbox: Sandbox, ids: Iterable[str]) -> CrmView:
    wanted = set(ids)
    tiers = {
        cid: {k: str(v) for k, v in sandbox.written(cid).items() if k in TIER_OUTPUTS}
        for cid in wanted
    }
    tasks = {
        t.external_id: (t.customer_id, t.subject)
        for t in sandbox.tasks()
        if t.customer_id in wanted
    }
    members = {(c, k) for c, k in sandbox.memberships() if c in wanted}
    return CrmView(tiers, tasks, members)


@dataclass(frozen=True)
class Outcome:
    """What one edit in the CRM led to for one customer."""

    label: str
    customer_id: str
    value_after: str
    effects: tuple[str, ...]


def outcome(change: Change, cid: str, before: CrmView, after: CrmView) -> Outcome:
    effects = []
    old, new = before.tiers.get(cid, {}), after.tiers.get(cid, {})
    for dim in TIER_OUTPUTS:
        if old.get(dim) != new.get(dim):
            effects.append(f"{_SHORT[dim]} {old.get(dim, '–')} → {new.get(dim, '–')}")
    for key, (owner, subject) in sorted(after.tasks.items()):
        if owner == cid and key not in before.tasks:
            effects.append(f"task: {subject}")
    for owner, campaign in sorted(after.memberships - before.memberships):
        if owner == cid:
            effects.append(f"joined {campaign}")
    for owner, campaign in sorted(before.memberships - after.memberships):
        if owner == cid:
            effects.append(f"left {campaign}")
    return Outcome(
        change.label, cid, new.get("value_tier", "–"), tuple(effects) or (change.when_unchanged,)
    )


def grouped(outcomes: Sequence[Outcome]) -> list[tuple[str, int, str]]:
    """(change, customers, effects with counts) per change, in the order made."""
    rows = []
    for label in dict.fromkeys(o.label for o in outcomes):
        mine = [o for o in outcomes if o.label == label]
        counts = Counter(e for o in mine for e in o.effects)
        text = "\n".join(f"{e} (×{n})" if n > 1 else e for e, n in counts.items())
        rows.append((label, len(mine), text))
    return rows
