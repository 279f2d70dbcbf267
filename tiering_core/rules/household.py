"""Household tiering: a family's assets lift each of its members, its risk lifts nobody.

Banks serve a private-banking relationship as a household: a spouse's and a parent's assets
lift the whole family into private banking (Salesforce Financial Services Cloud rolls AUM up
to the Household account for the same reason, "Rollups in Financial Services Cloud",
help.salesforce.com). The rules, over a batch and its household links:

- A household's AUM is the sum of the known AUM of its members whose role counts
  (``households.count_roles``); a member without AUM adds nothing (missing is not zero,
  and a household none of whose members has AUM is unrated). Corporates never count.
- The household's tier is the retail ladder's tier of that sum (the same floors, no lift,
  no hysteresis: the household has no history of its own).
- A rated retail member's value tier becomes the higher of its own and its household's,
  with reason ``HOUSEHOLD_AUM`` naming the household and the floor it reached, never the
  household's sum or another member's amounts (a member could subtract its own AUM from the
  sum and learn its relatives' wealth). An unrated member is not lifted: its own data gap
  comes first (its DQ task says so).
- A member in two households is counted in full by each (a bank seldom knows how a shared
  asset splits; each household is a relationship with its own total), and takes the
  highest of its households' tiers; the reason names that household (ties: the one listed
  first).
- Risk is never inherited: no member's credit, AML or ops level changes. A member at an AML
  level in ``households.review_aml`` flags each of its households for compliance review:
  every member of a flagged household gets ``HOUSEHOLD_REVIEW`` (an AML-dimension reason,
  so it never reaches the sales-visible reasons field) naming the household.

``lift`` runs after the value rule and before the rules that read the value tier; ``review``
after the AML rule. Both are vectorised over the links (numpy ``bincount``/``lexsort``);
the only per-link Python work is ``HouseholdLinks.build``, one pass over the page's links.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from tiering_core.columns import BoolArray, Columns, FloatArray
from tiering_core.policy import Policy
from tiering_core.rules.base import AML_LEVELS, VALUE_TIERS, IntArray, ReasonColumn, known

if TYPE_CHECKING:
    from tiering_core.rules.value import ValueOutcome

RANKED = VALUE_TIERS[:3]  # private, wealth, affluent: the tiers with floors, top down
MASS = VALUE_TIERS.index("mass")
#: Reasons of the member's own hysteresis that no longer describe a lifted member's tier.
_HOLDS = ("VAL_HELD_BUFFER", "VAL_HELD_GRACE")
_SUPERSEDED = (*_HOLDS, "VAL_DOWNGRADE")

LinkArray = npt.NDArray[np.intp]


@dataclass(frozen=True)
class Link:
    """One customer's membership of one household, as a connector reads it."""

    customer_id: str
    household_id: str
    role: str


@dataclass(frozen=True)
class HouseholdLinks:
    """A batch's household links as columns: link ``k`` puts batch row ``row[k]`` in
    household ``household[k]`` (an index into ``ids``); ``counted[k]`` says whether its
    role counts towards the household's AUM."""

    row: LinkArray
    household: LinkArray
    counted: BoolArray
    ids: tuple[str, ...]

    @classmethod
    def build(
        cls, customer_ids: Sequence[str], links: Iterable[Link], policy: Policy
    ) -> HouseholdLinks:
        """The links of the batch's customers (links of customers outside the batch are
        left out: the sync loads every member first, sync.households says which). A
        customer listed twice in one household (two roles, say) counts once, and counts
        if any of its roles does: which link comes first must not decide a tier."""
        row_of = {cid: i for i, cid in enumerate(customer_ids)}
        code_of: dict[str, int] = {}
        rows: list[int] = []
        households: list[int] = []
        counted: list[bool] = []
        roles = frozenset(policy.households.count_roles)
        position: dict[tuple[int, str], int] = {}
        for link in links:
            row = row_of.get(link.customer_id)
            if row is None:
                continue  # outside the batch
            at = position.get((row, link.household_id))
            if at is not None:  # listed twice: one membership, counted if any role counts
                counted[at] = counted[at] or link.role in roles
                continue
            position[(row, link.household_id)] = len(rows)
            rows.append(row)
            households.append(code_of.setdefault(link.household_id, len(code_of)))
            counted.append(link.role in roles)
        return cls(
            np.array(rows, dtype=np.intp),
            np.array(households, dtype=np.intp),
            np.array(counted, dtype=np.bool_),
            tuple(code_of),
        )

    @property
    def size(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class HouseholdTiers:
    """Each household's AUM (NaN: no member has any) and tier code."""

    aum: FloatArray
    tier: IntArray


def _floors(policy: Policy) -> FloatArray:
    tiers = {str(name): t for name, t in policy.value.tiers.items()}
    return np.array([tiers[t].aum_floor for t in RANKED])


def household_tiers(
    aum: FloatArray, tier: IntArray, links: HouseholdLinks, policy: Policy
) -> HouseholdTiers:
    """Every household's summed AUM and its tier on the retail ladder."""
    retail = tier[links.row] <= MASS
    member_aum = aum[links.row]
    adds = links.counted & retail & known(member_aum)
    total = np.bincount(
        links.household, weights=np.where(adds, member_aum, 0.0), minlength=links.size
    )
    has_aum = np.bincount(links.household, weights=adds, minlength=links.size) > 0
    floors = _floors(policy)
    code = (total[None, :] < floors[:, None]).sum(axis=0)
    return HouseholdTiers(
        np.where(has_aum, total, np.nan),
        np.where(has_aum, code, VALUE_TIERS.index("unrated")).astype(np.int8),
    )


def _best_household(
    tiers: HouseholdTiers, links: HouseholdLinks, n: int
) -> tuple[IntArray, LinkArray]:
    """Per batch row: the best tier of the households it counts in (``unrated`` code when
    none) and that household's index (-1: none). Ties go to the household listed first."""
    unrated = VALUE_TIERS.index("unrated")
    best = np.full(n, unrated, dtype=np.int8)
    which = np.full(n, -1, dtype=np.intp)
    candidate = np.where(links.counted, tiers.tier[links.household], unrated)
    order = np.lexsort((np.arange(len(links.row)), candidate, links.row))
    rows, first = np.unique(links.row[order], return_index=True)
    chosen = order[first]
    best[rows] = candidate[chosen]
    which[rows] = np.where(candidate[chosen] < unrated, links.household[chosen], -1)
    return best, which


def member_tiers(v: ValueOutcome, links: HouseholdLinks, policy: Policy, n: int) -> IntArray:
    """Per batch row: the tier of its best household (``unrated`` code: none, or households
    switched off), the tier written back as ``household_tier``. Read from the outcome
    before ``lift``: a household's sum is of its members' own AUM whatever their tiers."""
    if not policy.households.enabled or links.size == 0:
        return np.full(n, VALUE_TIERS.index("unrated"), dtype=np.int8)
    return _best_household(household_tiers(v.aum, v.tier, links, policy), links, n)[0]


def lift(v: ValueOutcome, cols: Columns, links: HouseholdLinks, policy: Policy) -> ValueOutcome:
    """The value outcome with each rated retail member at the higher of its own and its
    best household's tier, and the reasons that say so."""
    if not policy.households.enabled or links.size == 0:
        return v
    tiers = household_tiers(v.aum, v.tier, links, policy)
    best, which = _best_household(tiers, links, cols.n)
    # A member hysteresis holds at a tier its household reaches is not below any floor:
    # the household explains the tier, and no downgrade clock may run (else the reason
    # flips from HOUSEHOLD_AUM to a hold on the next run, and the grace would expire).
    held = np.zeros(cols.n, dtype=np.bool_)
    for rc in v.reasons:
        if rc.code in _HOLDS:
            held |= rc.mask
    lifted = (v.tier <= MASS) & ((best < v.tier) | (held & (best <= v.tier)))
    if not lifted.any():
        return v
    tier = np.where(lifted, np.minimum(best, v.tier), v.tier).astype(np.int8)
    prev = cols.enum["previous_value_tier"]
    newly_up = lifted & (v.upgraded_from < 0) & (prev >= 0) & (prev <= MASS) & (tier < prev)
    upgraded_from = np.where(newly_up, prev, v.upgraded_from).astype(np.int8)
    floor_by_code = np.append(_floors(policy), np.zeros(len(VALUE_TIERS) - len(RANKED)))
    for rc in v.reasons:
        if rc.code in _SUPERSEDED:
            rc.mask = rc.mask & ~lifted
    reasons = [
        *v.reasons,
        ReasonColumn(
            "HOUSEHOLD_AUM",
            lifted,
            np.maximum(which, 0),
            floor_by_code[np.where(lifted, tier, MASS)],
            labels=links.ids,
        ),
        ReasonColumn("VAL_UPGRADE", newly_up, upgraded_from, labels=VALUE_TIERS),
    ]
    # a lifted member holds a tier it qualifies for: no downgrade clock runs
    since = np.where(lifted, np.nan, v.below_floor_since)
    return replace(
        v, tier=tier, upgraded_from=upgraded_from, below_floor_since=since, reasons=reasons
    )


def flagged_households(aml_level: IntArray, links: HouseholdLinks, policy: Policy) -> BoolArray:
    """Per household: whether any member (counted role or not) is at a review AML level."""
    review = np.isin(
        aml_level[links.row], [AML_LEVELS.index(x) for x in policy.households.review_aml]
    )
    return np.bincount(links.household, weights=review, minlength=links.size) > 0


def review(aml_level: IntArray, links: HouseholdLinks, policy: Policy) -> list[ReasonColumn]:
    """``HOUSEHOLD_REVIEW`` on every member of a household a member's AML level flags,
    naming the (first listed) flagged household. Nobody's own risk level changes."""
    n = len(aml_level)
    if not policy.households.enabled or links.size == 0:
        return []
    flagged = flagged_households(aml_level, links, policy)
    on_link = flagged[links.household]
    if not on_link.any():
        return []
    which = np.full(n, -1, dtype=np.intp)
    k = np.flatnonzero(on_link)
    rows, first = np.unique(links.row[k], return_index=True)  # first occurrence: listed first
    which[rows] = links.household[k[first]]
    member = which >= 0
    return [ReasonColumn("HOUSEHOLD_REVIEW", member, np.maximum(which, 0), labels=links.ids)]
