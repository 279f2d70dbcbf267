"""Preferred channel (issue 21 §3): the recommendation by activity and tier, its reasons,
its write-back, the task wording it drives, that it never overrides a marketing opt-out,
and that the policy defaults are the ones shipped and documented."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from core_support import AS_OF, build, codes, fields, members, tasks
from hypothesis import given, settings
from hypothesis import strategies as st

from tiering_core.engine import assess, assess_batch
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import Policy, default_policy_text, policy_over_default
from tiering_core.policy_relations import ChannelPolicy, CoveragePolicy
from tiering_core.rules.channel import CHANNELS

PRIVATE = {"assets": {"deposits": 7_000_000}}
WEALTH = {"assets": {"deposits": 700_000}}
AFFLUENT = {"assets": {"deposits": 100_000}}
MASS: dict[str, Any] = {}
CORPORATE_SMALL = {"kind": "corporate", "assets": {"deposits": 100_000}}
REASON_OF = {
    "CH_RM_VISIT_TIER": "rm_visit",
    "CH_DIGITAL_ACTIVE": "digital",
    "CH_BRANCH_ACTIVE": "branch",
    "CH_PHONE_TIER": "phone",
    "CH_SELF_SERVICE": "digital",
}
DOCS = Path(__file__).resolve().parents[2] / "docs"


def activity(logins: int | None, branch: int | None) -> dict[str, Any]:
    return {
        "activity": {
            "transactions_90d": 40,
            "digital_logins_90d": logins,
            "branch_transactions_90d": branch,
            "products_held": ["deposit"],
        }
    }


def assessed(policy: Policy, **changes: Any) -> Assessment:
    return assess(CustomerProfile.model_validate(build(**changes)), policy, AS_OF)


def channel_reasons(a: Assessment) -> list[str]:
    return [r.code for r in a.reasons if r.dimension == "channel"]


@pytest.mark.parametrize(
    ("tier", "logins", "branch", "channel", "reason"),
    [
        # a tier served in person wins over any activity
        (PRIVATE, 90, 0, "rm_visit", "CH_RM_VISIT_TIER"),
        (PRIVATE, 0, 30, "rm_visit", "CH_RM_VISIT_TIER"),
        # frequent and mostly digital
        (MASS, 12, 8, "digital", "CH_DIGITAL_ACTIVE"),
        (WEALTH, 40, 0, "digital", "CH_DIGITAL_ACTIVE"),
        (AFFLUENT, 40, None, "digital", "CH_DIGITAL_ACTIVE"),  # unknown branch: no dilution
        # frequent logins, but the counter dominates
        (AFFLUENT, 12, 9, "branch", "CH_BRANCH_ACTIVE"),
        (MASS, 11, 3, "branch", "CH_BRANCH_ACTIVE"),
        (MASS, None, 5, "branch", "CH_BRANCH_ACTIVE"),
        # little activity: phone for called tiers, self-service for the rest
        (WEALTH, 5, 2, "phone", "CH_PHONE_TIER"),
        (AFFLUENT, None, None, "phone", "CH_PHONE_TIER"),
        (MASS, 5, 2, "digital", "CH_SELF_SERVICE"),
        (CORPORATE_SMALL, 0, 0, "digital", "CH_SELF_SERVICE"),
    ],
)
def test_channel_by_activity_and_tier(
    policy: Policy, tier: dict[str, Any], logins: Any, branch: Any, channel: str, reason: str
) -> None:
    a = assessed(policy, **tier, **activity(logins, branch))
    batch = assess_batch(
        [CustomerProfile.model_validate(build(id="T9", **tier, **activity(logins, branch)))] * 2,
        policy,
        AS_OF,
    )[1]
    assert a.preferred_channel == batch.preferred_channel == channel
    assert fields(a)["preferred_channel"] == channel
    assert channel_reasons(a) == [reason] == channel_reasons(batch)


def test_thresholds_come_from_the_policy(policy: Policy) -> None:
    strict = policy_over_default(
        {"channel": {"digital_logins_min": 50, "phone_tiers": [], "rm_visit_tiers": []}}
    )
    assert assessed(policy, **WEALTH, **activity(40, 0)).preferred_channel == "digital"
    assert assessed(strict, **WEALTH, **activity(40, 0)).preferred_channel == "digital"
    assert "CH_SELF_SERVICE" in codes(assessed(strict, **WEALTH, **activity(40, 0)))
    assert assessed(strict, **PRIVATE, **activity(0, 9)).preferred_channel == "branch"


@settings(max_examples=60, deadline=None)
@given(
    tier=st.sampled_from([PRIVATE, WEALTH, AFFLUENT, MASS, CORPORATE_SMALL]),
    logins=st.none() | st.integers(0, 300),
    branch=st.none() | st.integers(0, 300),
)
def test_one_channel_and_one_reason_that_names_it(
    policy: Policy, tier: dict[str, Any], logins: Any, branch: Any
) -> None:
    a = assessed(policy, **tier, **activity(logins, branch))
    [reason] = channel_reasons(a)
    assert a.preferred_channel in CHANNELS and REASON_OF[reason] == a.preferred_channel
    more = assessed(policy, **tier, **activity((logins or 0) + 50, 0))
    if a.preferred_channel == "digital" and reason == "CH_DIGITAL_ACTIVE":
        assert more.preferred_channel == "digital"  # more digital use never moves it away


def test_channel_words_the_contact_tasks(policy: Policy) -> None:
    upgraded = {"previous": {"value_tier": "affluent"}, "feedback": {"nps": 3}}
    by_phone = assessed(policy, **WEALTH, **upgraded, **activity(2, 0))
    at_branch = assessed(policy, **WEALTH, **upgraded, **activity(2, 9))
    visited = assessed(policy, **PRIVATE, **upgraded, **activity(2, 9))
    assert tasks(by_phone)["upgrade_call"].subject.startswith("Call the customer: upgraded")
    assert tasks(at_branch)["upgrade_call"].subject.startswith("Invite the customer to the")
    assert tasks(visited)["upgrade_call"].subject.startswith("Visit the customer: upgraded")
    assert "call the customer" in tasks(by_phone)["service_recovery"].subject
    # the wording changes, the task's identity does not: a rerun upserts the same task
    keys = {a.rule: a.dedupe_key for a in by_phone.actions if a.kind == "task"}
    assert keys["upgrade_call"] == tasks(at_branch)["upgrade_call"].dedupe_key


@pytest.mark.parametrize("logins,branch", [(90, 0), (0, 9), (0, 0)])
@pytest.mark.parametrize("tier", [PRIVATE, WEALTH, AFFLUENT])
def test_channel_never_overrides_a_marketing_opt_out(
    policy: Policy, tier: dict[str, Any], logins: int, branch: int
) -> None:
    changes = {**tier, **activity(logins, branch), "previous": {"value_tier": "mass"}}
    opted_in = assessed(policy, **changes, consent={"marketing_opt_out": False})
    opted_out = assessed(policy, **changes, consent={"marketing_opt_out": True})
    assert opted_out.preferred_channel == opted_in.preferred_channel  # still recorded
    assert "upgrade_call" in tasks(opted_in) and "upgrade_call" not in tasks(opted_out)
    marketing = {k for k, c in policy.strategy.campaigns.items() if c.marketing}
    assert members(opted_in) & marketing
    assert not members(opted_out) & marketing


# --- defaults: the model, the shipped policy and the docs agree --------------------------


@pytest.mark.parametrize(
    ("section", "model"), [("channel", ChannelPolicy), ("coverage", CoveragePolicy)]
)
def test_each_default_is_the_shipped_and_documented_one(section: str, model: type) -> None:
    shipped = tomllib.loads(default_policy_text())[section]
    defaults = model().model_dump(mode="json")
    assert set(shipped) == set(defaults), section
    text = (DOCS / "policy.md").read_text(encoding="utf-8")
    for key, value in shipped.items():
        assert model.model_validate({key: value}).model_dump(mode="json")[key] == defaults[key]
        if isinstance(value, dict):
            for sub, number in value.items():
                assert f"`{section}.{key}.{sub}` = {number}" in text, (key, sub)
        elif isinstance(value, list):
            assert f"`{section}.{key}` (default `{_toml_list(value)}`)" in text, key
        else:
            assert f"`{section}.{key}` (default `{_toml(value)}`" in text, key


def _toml(value: Any) -> str:
    return (
        f'"{value}"'
        if isinstance(value, str)
        else f"{value:g}"
        if isinstance(value, float)
        else str(value)
    )


def _toml_list(values: list[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"
