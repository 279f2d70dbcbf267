"""A dry run's totals: per field, task rule and campaign, how many would be created,
closed or left unchanged.

A preview that lists 40,000 planned writes is not readable; its totals are what an admin
checks before the first real run ("2,714 tasks of which 1,900 service recovery" is the
number that decides whether to switch a rule off). ``Unchanged`` counts what the
assessment wants and the CRM already shows (a field with the right value, a task crmtier
already made, a campaign the customer is already in), so the three columns together are
everything the policy asks for, not only the difference.

Pure: the engine hands each planned customer's assessment and plan to ``PlanTotals.add``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from connectors.mapping import WritebackConfig
from sync.planner import CustomerPlan
from tiering_core.models import AssessmentData

Group = Literal["field", "task", "campaign"]
Outcome = Literal["created", "closed", "unchanged"]
OUTCOMES: tuple[Outcome, ...] = ("created", "closed", "unchanged")
GROUPS: tuple[Group, ...] = ("field", "task", "campaign")


@dataclass
class PlanTotals:
    """Counts by (group, name, outcome). A field is "created" when it would be written
    (set to a new value), a task when it would be made, a campaign membership when it
    would be added; "closed" is a membership that would be removed, or a task crmtier made
    earlier that would be withdrawn (counted under its rule)."""

    counts: Counter[tuple[Group, str, Outcome]] = field(default_factory=Counter)

    def add(
        self, assessment: AssessmentData, plan: CustomerPlan, writeback: WritebackConfig
    ) -> None:
        campaigns = writeback.campaigns if writeback.campaign_memberships else {}
        for name in plan.fields:
            self.counts["field", name, "created"] += 1
        planned_tasks = {t.dedupe_key for t in plan.tasks}
        joining = {m.campaign for m in plan.memberships if m.member}
        for action in assessment["actions"]:
            kind = action["kind"]
            if kind == "set_field":
                name = action["field"]
                if name in writeback.fields and name not in plan.fields:
                    self.counts["field", name, "unchanged"] += 1
            elif kind == "task" and writeback.tasks:
                made = action["dedupe_key"] in planned_tasks
                self.counts["task", action["rule"], "created" if made else "unchanged"] += 1
            elif kind == "campaign":
                name = action["campaign"]
                if action["member"] and name in campaigns and name not in joining:
                    self.counts["campaign", name, "unchanged"] += 1
        for closure in plan.closures:
            self.counts["task", closure.rule, "closed"] += 1
        for membership in plan.memberships:
            outcome: Outcome = "created" if membership.member else "closed"
            self.counts["campaign", membership.campaign, outcome] += 1

    def rows(self) -> Iterator[tuple[Group, str, dict[Outcome, int]]]:
        """(group, name, counts by outcome), fields then tasks then campaigns, by name."""
        names = sorted({(GROUPS.index(g), n) for g, n, _ in self.counts})
        for index, name in names:
            group = GROUPS[index]
            yield group, name, {o: self.counts[group, name, o] for o in OUTCOMES}

    def as_json(self) -> dict[str, dict[str, dict[str, int]]]:
        out: dict[str, dict[str, dict[str, int]]] = {g: {} for g in GROUPS}
        for group, name, by_outcome in self.rows():
            out[group][name] = {str(o): n for o, n in by_outcome.items()}
        return out
