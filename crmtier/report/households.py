"""The report's household section (issue 21 §1 item 4): household tiers against the
customers' own value tiers, from what the state store keeps.

The sync stores, beside each customer's tier codes, its best household's tier and whether
that household lifted the customer's value tier (``sync.planner.tiers_of``: keys present
only once the sync reads the CRM's households). From those the section shows, per value
tier, how many customers sit in a rated household and how many their household lifted
there; and the members per household tier against their value tier. Counts only: the
section names no household and no customer, like the rest of the report.

A household is counted through its members (the store keeps customers, not households),
so "members by household tier" counts a family of three three times; a customer in two
households counts once, under the better of them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from crmtier.report.html import _matrix, _note, _table
from crmtier.report.model import HouseholdReport, HouseholdRow, Matrix, ordered_levels
from sync.planner import HOUSEHOLD_LIFT, HOUSEHOLD_TIER, NO_HOUSEHOLD


def household_report(tiers: Iterable[Mapping[str, str]]) -> HouseholdReport | None:
    """The section's figures from the stored tiers; None when no stored tier carries a
    household tier (households off, or a CRM whose households crmtier does not read)."""
    read = [t for t in tiers if HOUSEHOLD_TIER in t]
    if not read:
        return None
    customers: Counter[str] = Counter()
    in_household: Counter[str] = Counter()
    lifted: Counter[str] = Counter()
    cells: Counter[tuple[str, str]] = Counter()
    for t in read:
        value, household = str(t.get("value_tier")), t[HOUSEHOLD_TIER]
        customers[value] += 1
        in_household[value] += household != NO_HOUSEHOLD
        lifted[value] += t.get(HOUSEHOLD_LIFT) == "yes"
        cells[(value, household)] += 1
    values = [v for v in ordered_levels("value_tier", list(customers)) if customers[v]]
    households = {h for _, h in cells}
    found = [h for h in ordered_levels("value_tier", list(households)) if h in households]
    return HouseholdReport(
        [HouseholdRow(v, customers[v], in_household[v], lifted[v]) for v in values],
        Matrix(
            title="Value tier × household tier (members)",
            row_label="value",
            col_label="household",
            rows=values,
            cols=[*(h for h in found if h != NO_HOUSEHOLD), *households & {NO_HOUSEHOLD}],
            cells=dict(cells),
        ),
    )


def render_households(report: HouseholdReport | None) -> str:
    """The section's body: lifted customers per tier, then the members' cross-table."""
    if report is None:
        return _note(
            "No household tiers are stored: households are switched off in the policy, or "
            "this CRM's households are not read yet."
        )
    rows = _table(
        ["Value tier", "Customers", "In a rated household", "Lifted by their household"],
        [(r.tier, r.customers, r.in_household, r.lifted) for r in report.rows],
        table_id="households-lifted",
    )
    return (
        f"<h3>Customers lifted by their household, per tier</h3>{rows}"
        f"{_matrix('households-members', report.members)}"
    )
