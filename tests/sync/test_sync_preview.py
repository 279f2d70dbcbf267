"""A dry run's totals (sync/preview.py), case by case: what the assessment wants is counted
once, as created, closed or unchanged, per field, task rule and campaign."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from connectors.mapping import WritebackConfig
from sync.planner import Known, plan_customer
from sync.preview import PlanTotals
from tests.sync.test_sync_planner import TASK, VIP, WB, _assessment
from tiering_core.models import CampaignAction, SetFieldAction, TaskAction

SEMINAR = CampaignAction(campaign="wealth_seminar", member=True, dedupe_key="C1:seminar")
UNMAPPED = CampaignAction(campaign="not_in_config", member=True, dedupe_key="C1:x")
#: the planner's write-back with ``not_in_config = false``: switched off, so never planned
#: (a campaign the config never named at all is a config error, not a silent skip)
WB_OFF = WritebackConfig.model_validate(
    {**WB.model_dump(), "campaigns": {**WB.campaigns, "not_in_config": False}}
)
REVIEW = TaskAction(
    rule="review",
    subject="Review",
    priority="normal",
    due=date(2026, 4, 1),
    dedupe_key="C1:review:2026Q2",
)


def tier(value: str) -> SetFieldAction:
    return SetFieldAction(field="value_tier", value=value)


@pytest.mark.parametrize(
    ("actions", "current", "known", "expected"),
    [
        pytest.param(
            (tier("private"), TASK, VIP),
            {},
            Known(),
            {
                ("field", "value_tier", "created"): 1,
                ("task", "rm_call", "created"): 1,
                ("campaign", "vip_events", "created"): 1,
            },
            id="first-run-creates-everything",
        ),
        pytest.param(
            (tier("private"), TASK, VIP),
            {"value_tier": "private"},
            Known(tasks=frozenset({TASK.dedupe_key}), memberships={"vip_events": VIP.dedupe_key}),
            {
                ("field", "value_tier", "unchanged"): 1,
                ("task", "rm_call", "unchanged"): 1,
                ("campaign", "vip_events", "unchanged"): 1,
            },
            id="rerun-is-all-unchanged",
        ),
        pytest.param(
            (tier("wealth"), REVIEW),
            {"value_tier": "private"},
            Known(tasks=frozenset({TASK.dedupe_key}), memberships={"vip_events": VIP.dedupe_key}),
            {
                ("field", "value_tier", "created"): 1,
                ("task", "review", "created"): 1,
                ("campaign", "vip_events", "closed"): 1,
            },
            id="downgrade-closes-the-campaign",
        ),
        pytest.param(
            (SEMINAR, UNMAPPED, SetFieldAction(field="not_written", value=1)),
            {},
            Known(),
            {("campaign", "wealth_seminar", "created"): 1},
            id="switched-off-and-unmapped-outputs-are-not-counted",
        ),
    ],
)
def test_totals_count_each_wanted_item_once(
    actions: tuple[Any, ...],
    current: dict[str, Any],
    known: Known,
    expected: dict[tuple[str, str, str], int],
) -> None:
    assessment = _assessment(*actions)
    totals = PlanTotals()
    totals.add(assessment, plan_customer(assessment, current, known, WB_OFF), WB_OFF)
    assert {k: n for k, n in totals.counts.items() if n} == expected
    as_json = totals.as_json()
    assert sum(
        n for names in as_json.values() for by in names.values() for n in by.values()
    ) == sum(expected.values())


def test_a_withdrawn_sales_task_counts_as_closed_under_its_rule() -> None:
    """A prohibited customer's open sales task crmtier made earlier counts as "closed" for
    its rule; its other tasks (here not a sales rule) are not counted at all."""
    assessment = _assessment(tier("private"))
    assessment["aml_risk"] = "prohibited"
    sales = "C1:corporate_banking:2026Q1"
    known = Known(
        tasks=frozenset({sales, TASK.dedupe_key}),
        task_rules={sales: "corporate_banking", TASK.dedupe_key: TASK.rule},
    )
    totals = PlanTotals()
    totals.add(assessment, plan_customer(assessment, {}, known, WB_OFF), WB_OFF)
    assert {k: n for k, n in totals.counts.items() if n} == {
        ("field", "value_tier", "created"): 1,
        ("task", "corporate_banking", "closed"): 1,
    }
