"""`crmtier explain`'s task lines for a restricted customer: the open sales tasks crmtier
made are shown as withdrawn by the next sync, in words that do not say why (the AML
reason is restricted)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.mapping import load_default_mapping
from crmtier.explain import ExplainContext, _tasks
from sync.disclosure import Disclosure
from sync.planner import Known, plan_customer
from tests.sync.test_sync_planner import MADE, _assessed
from tiering_core.policy import load_policy


@pytest.mark.parametrize(("lang", "withdrawn"), [("en", "withdrawn"), ("zh", "撤回")])
def test_withdrawn_sales_tasks_are_named_without_the_reason(lang: str, withdrawn: str) -> None:
    mapping = load_default_mapping("salesforce")
    ctx = ExplainContext(load_policy(), mapping.mapping, mapping.writeback, Disclosure(), lang)
    assessment: Any = _assessed(True)
    known = Known(tasks=frozenset(MADE), task_rules=MADE)
    lines = _tasks(assessment, plan_customer(assessment, {}, known, ctx.writeback), known, ctx)
    why = {line["rule"]: line["why"] for line in lines}
    assert {r for r, text in why.items() if withdrawn in text} == {
        "corporate_banking",
        "dedicated_advisor",
        "investment_advisory",
        "service_recovery",
        "upgrade_call",
    }
    assert not any("sanction" in text.lower() or "制裁" in text for text in why.values())
