"""The sync's planner reading a page's decision columns (``PagePlanner.plan``) plans what
``plan_customer`` plans from each customer's whole decision, as every run did before the
planner read columns: the same fields, tasks, memberships and closures, the same desired
values, and the same decision to keep. Seeded generated books, CRM values that match,
differ, are missing or come back as text, a run writing tier fields only (planned from the
columns without any whole decision) and one writing tasks and campaigns too."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from connectors.contract import CrmRecord
from connectors.mapping import load_default_mapping
from connectors.sandbox.generator import generate
from sync.planner import Known, action_kinds, desired_fields, plan_customer, tiers_of
from sync.planning import AssessedPage, PagePlanner
from sync.settings import RunOptions
from tiering_core.decision_columns import DecisionColumns
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

AS_OF = date(2026, 6, 30)
WRITEBACK = load_default_mapping("salesforce").writeback


def _profiles(seed: int) -> list[CustomerProfile]:
    out = []
    for c in generate(250, seed=seed):
        try:
            out.append(CustomerProfile.model_validate({"id": c.id, **c.profile}))
        except ValueError:
            continue  # an unreadable generated record: the reader skips it
    return out


def _current(k: int, desired: dict[str, Any]) -> dict[str, Any]:
    """What the CRM shows: nothing, everything as desired, some fields moved or blank, or
    the desired values as a CRM returns them (text)."""
    kind = k % 4
    if kind == 0:
        return {}
    if kind == 1:
        return dict(desired)
    if kind == 2:
        return {**desired, "value_tier": "mass", "reasons": "", "value_score": None}
    return {name: str(value).lower() for name, value in desired.items() if value is not None}


@pytest.mark.parametrize("seed", [5, 17, 29])
@pytest.mark.parametrize("only_fields", [True, False], ids=["fields", "all"])
def test_planning_from_columns_plans_as_from_whole_decisions(seed: int, only_fields: bool) -> None:
    policy = load_policy()
    options = RunOptions(as_of=AS_OF, only_fields=only_fields)
    recorder: Any = SimpleNamespace(counts=None, run_id="r1")
    planner = PagePlanner(
        lambda profiles, households=None: [],
        WRITEBACK,
        recorder,
        options,
        policy_version=policy.version,
        task_limits={},
    )
    wb = planner.writeback
    profiles = _profiles(seed)
    decided = decide_batch(profiles, policy, AS_OF, kinds=action_kinds(wb))
    assert isinstance(decided, DecisionColumns)
    stamp = datetime(2026, 6, 1, tzinfo=UTC)
    records = [
        CrmRecord(
            p, stamp, _current(k, desired_fields(decided.plain(k), wb, decided.field_values(k)))
        )
        for k, p in enumerate(profiles)
    ]
    plans = planner.plan(AssessedPage(records, decided), {}, lambda cid: None)
    assert len(plans) == len(profiles)
    written = 0
    for k, (planned, record) in enumerate(zip(plans, records, strict=True)):
        whole = decided[k]
        desired = desired_fields(whole, wb)
        assert planned.desired == desired
        assert planned.plan == plan_customer(whole, record.current, Known(), wb)
        assert {n: v for n, v in planned.summary.items() if n != "actions"} == {
            n: v for n, v in whole.items() if n != "actions"
        }
        assert tiers_of(planned.summary) == tiers_of(whole)
        assert planner.decide(planned, "h") == planner.decide(replace(planned, summary=whole), "h")
        written += bool(planned.plan.fields)
    assert 0 < written < len(plans)
