"""Task candidates (``strategy.task_candidates``) against the task rules (``strategy.tasks``)
over every combination of what the rules read.

The candidates are a column-wise copy of the rules' triggers, written by hand: a whole
decision and ``crmtier tier`` ask the rules about the candidates alone, so a trigger the
copy lacks silently drops a task (a risky customer without its compliance review). Generated
books hold few customers whom one rare trigger alone makes a candidate; here every value of
every field of ``Outcome`` and ``Customer`` is tried (each field must have a domain, so a
field added to either must be given one), the triggers' fields in full product and, for the
customers who are not candidates, crossed with every other field: the rules must give none
of them a task, under the default policy and under policies that hold nothing back (every
rule enabled, no marketing hold, sales tasks whatever the AML level)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from operator import itemgetter
from typing import Any

import numpy as np
import pytest
from core_support import AS_OF, task_settings_policy

from tiering_core.models import CUSTOMER_KINDS
from tiering_core.policy import Policy, load_policy, policy_over_default
from tiering_core.policy_strategy import Tasks
from tiering_core.rules import strategy
from tiering_core.rules.base import AML_LEVELS, NEEDS_TIERS, RISK_LEVELS, STATUSES, VALUE_TIERS
from tiering_core.rules.channel import CHANNELS

#: The customer fields ``task_candidates`` reads and every value each may take ("Corporate":
#: a kind written otherwise, an unknown code).
TRIGGERS: dict[str, tuple[Any, ...]] = {
    "sanctioned": (False, True),
    "aml_risk": AML_LEVELS,
    "credit_risk": RISK_LEVELS,
    "open_complaints": (0, 1, 3),
    "upgraded_from": (None, *VALUE_TIERS),
    "value_tier": VALUE_TIERS,
    "needs_tier": NEEDS_TIERS,
    "kind": (None, *CUSTOMER_KINDS, "Corporate"),
    "detractor": (False, True),
    "dq_fields": ((), ("aml.pep",)),
}
#: Every other field of ``Outcome`` and ``Customer`` and its values.
OTHERS: dict[str, tuple[Any, ...]] = {
    "id": ("C1",),
    "owner_id": (None, "RM001"),
    "value_score": (None, 0.9),
    "ops_risk": RISK_LEVELS,
    "edd_required": (False, True),
    "next_review": (AS_OF, AS_OF + timedelta(days=365)),
    "service_level": ("standard",),
    "status": STATUSES,
    "marketing_opt_out": (False, True),
    "preferred_channel": (None, *CHANNELS),
}


def permissive(advisor_tiers: list[str]) -> Policy:
    """A policy that holds no task back: every rule (enumerated from ``Tasks``) enabled and
    not a sales task, none held for AML, corporate banking for every tier, a dedicated advisor
    for ``advisor_tiers``."""
    rules: dict[str, dict[str, Any]] = {
        name: {"enabled": True, "marketing": False} for name in Tasks.model_fields
    }
    rules["dedicated_advisor"]["tiers"] = advisor_tiers
    rules["corporate_banking"]["tiers"] = []
    return policy_over_default(
        {
            "regulatory": {"waivers": {"sanctions": "test: nothing held back"}},
            "strategy": {"risk": {"no_marketing_aml": []}, "tasks": rules},
        }
    )


POLICIES = {
    "default": load_policy,
    "task_settings": task_settings_policy,
    "permissive_affluent": lambda: permissive(["affluent", "mass", "corporate_small"]),
}


def codes(vocabulary: tuple[str, ...], values: list[Any]) -> np.ndarray:
    """Values as ``Evaluation`` codes them: the index in the vocabulary, -1 none, -2 unknown."""
    return np.array(
        [-1 if v is None else vocabulary.index(v) if v in vocabulary else -2 for v in values],
        dtype=np.int8,
    )


def test_every_field_the_rules_read_has_a_domain() -> None:
    assert sorted((*TRIGGERS, *OTHERS)) == sorted(
        {*strategy.Outcome._fields, *strategy.Customer._fields}
    )


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_no_customer_outside_the_candidates_is_given_a_task(name: str) -> None:
    policy = POLICIES[name]()
    rows = list(itertools.product(*TRIGGERS.values()))
    column = {field: [row[i] for row in rows] for i, field in enumerate(TRIGGERS)}
    candidates = strategy.task_candidates(
        policy,
        sanctioned=np.array(column["sanctioned"]),
        aml_risk=codes(AML_LEVELS, column["aml_risk"]),
        credit_risk=codes(RISK_LEVELS, column["credit_risk"]),
        open_complaints=np.array(column["open_complaints"], dtype=np.float64),
        upgraded_from=codes(VALUE_TIERS, column["upgraded_from"]),
        value_tier=codes(VALUE_TIERS, column["value_tier"]),
        needs_tier=codes(NEEDS_TIERS, column["needs_tier"]),
        kind=codes(CUSTOMER_KINDS, column["kind"]),
        detractor=np.array(column["detractor"]),
        dq=np.array([bool(d) for d in column["dq_fields"]]),
    )
    outside = [
        values for values, candidate in zip(rows, candidates.tolist(), strict=True) if not candidate
    ]
    assert outside, "every combination a candidate: nothing is tested"
    # each field's place in a trigger values' tuple followed by an other values' tuple
    place = {field: i for i, field in enumerate((*TRIGGERS, *OTHERS))}
    customer_of = itemgetter(*(place[f] for f in strategy.Customer._fields))
    outcome_of = itemgetter(*(place[f] for f in strategy.Outcome._fields))
    given = []
    for values in outside:
        for other in itertools.product(*OTHERS.values()):
            fields = values + other
            customer = strategy.Customer._make(customer_of(fields))
            outcome = strategy.Outcome._make(outcome_of(fields))
            if tasks := strategy.tasks(customer, outcome, policy, AS_OF):
                given.append((dict(zip(place, fields, strict=True)), [t["rule"] for t in tasks]))
    assert given == [], f"{len(given)} non-candidates given a task; first: {given[0]}"
