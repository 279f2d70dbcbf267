"""Property: the regulatory floors hold for every policy ``validate`` accepts without waivers.

Policies are drawn by overriding the keys that could weaken a floor (override levels, the
risk lists, the sanctions and complaint task rules, review cycles) with any value their
type allows, plus a tier ladder; whatever validates without a waiver must still rate a
sanctions hit prohibited, give it a compliance task due the same day and no campaign, and
give every complaint a task due within 15 days.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from core_support import AS_OF, build
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tiering_core.engine import assess
from tiering_core.models import CustomerProfile
from tiering_core.policy import PolicyError, policy_over_default

LEVELS = ["", "low", "medium", "high", "prohibited"]
AML = ["low", "medium", "high", "prohibited"]
levels_list = st.lists(st.sampled_from(AML), unique=True, max_size=4)
task_rule = st.fixed_dictionaries(
    {},
    optional={
        "enabled": st.booleans(),
        "priority": st.sampled_from(["high", "normal", "low"]),
        "due_days": st.integers(0, 60),
        "priority_tiers": st.lists(
            st.sampled_from(["private", "wealth", "affluent", "mass"]), unique=True
        ),
    },
)
overrides = st.fixed_dictionaries(
    {},
    optional={
        "aml": st.fixed_dictionaries(
            {},
            optional={
                "overrides": st.fixed_dictionaries(
                    {},
                    optional={
                        "sanctions_hit": st.sampled_from(LEVELS),
                        "pep": st.sampled_from(LEVELS),
                        "refused_cdd": st.sampled_from(LEVELS),
                    },
                ),
                "review_months": st.fixed_dictionaries(
                    {},
                    optional={
                        "high": st.integers(1, 24),
                        "medium": st.integers(1, 48),
                        "low": st.integers(1, 96),
                    },
                ),
                "medium_from": st.integers(1, 100),
                "high_from": st.integers(1, 100),
            },
        ),
        "strategy": st.fixed_dictionaries(
            {},
            optional={
                "risk": st.fixed_dictionaries(
                    {},
                    optional={
                        "no_marketing_aml": levels_list,
                        "no_campaigns_aml": levels_list,
                    },
                ),
                "tasks": st.fixed_dictionaries(
                    {},
                    optional={
                        "sanctions_review": task_rule,
                        "complaint": task_rule,
                        "edd_review": task_rule,
                    },
                ),
            },
        ),
        "value": st.fixed_dictionaries(
            {},
            optional={
                "tiers": st.fixed_dictionaries(
                    {},
                    optional={
                        "private": st.fixed_dictionaries({"aum_floor": st.integers(1, 10_000_000)}),
                    },
                ),
            },
        ),
    },
)
customers = st.fixed_dictionaries(
    {
        "deposits": st.sampled_from([10_000, 60_000, 700_000, 7_000_000]),
        "kind": st.sampled_from(["individual", "corporate"]),
        "pep": st.booleans(),
        "open_complaints": st.integers(0, 3),
        "nps": st.integers(0, 10),
        "previous": st.sampled_from([None, "mass", "affluent"]),
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides, st.lists(customers, min_size=1, max_size=4))
def test_no_policy_accepted_without_waivers_weakens_sanctions_or_complaints(
    changes: dict[str, Any], people: list[dict[str, Any]]
) -> None:
    try:
        policy = policy_over_default(changes)
    except PolicyError:
        assume(False)
        return
    assert policy.regulatory.waivers == {}
    for person in people:
        profile = CustomerProfile.model_validate(
            build(
                kind=person["kind"],
                assets={"deposits": person["deposits"]},
                aml={"sanctions_hit": True, "pep": person["pep"]},
                feedback={"open_complaints": person["open_complaints"], "nps": person["nps"]},
                previous={"value_tier": person["previous"]} if person["previous"] else None,
            )
        )
        a = assess(profile, policy, AS_OF)
        assert a.aml_risk == "prohibited"
        made = {t.rule: t for t in a.actions if t.kind == "task"}
        review = made["sanctions_review"]
        assert (review.due, review.priority, review.queue) == (AS_OF, "high", "compliance")
        assert not [c for c in a.actions if c.kind == "campaign" and c.member]
        if person["open_complaints"]:
            assert made["complaint"].due <= AS_OF + timedelta(days=15)
