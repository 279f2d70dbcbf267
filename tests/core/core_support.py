"""Helpers shared by the tiering-core tests: a clean baseline customer that each test
changes in one respect, a fixed assessment date (the core never reads the clock, so
neither do its tests), and accessors for the parts of an Assessment tests look at."""

from __future__ import annotations

import copy
import tomllib
from datetime import date, timedelta
from typing import Any

from connectors.sandbox.generator import generate
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import Policy, load_policy, policy_over_default

AS_OF = date(2026, 11, 28)

BASELINE: dict[str, Any] = {
    "id": "T0001",
    "kind": "individual",
    "currency": "CNY",
    "owner_id": "RM001",
    "assets": {"deposits": 20_000, "investments": 0, "insurance": 0},
    "activity": {"transactions_90d": 10, "digital_logins_90d": 10, "products_held": ["deposit"]},
    "revenue_12m": {"loan_interest": 0, "product_fees": 0, "service_fees": 0},
    "credit": {
        "score": 760,
        "debt_to_income": 0.2,
        "days_past_due_max_12m": 0,
        "loan_class": "normal",
    },
    "aml": {
        "pep": False,
        "sanctions_hit": False,
        "high_risk_countries": [],
        "cash_volume_90d": 0,
        "cross_border_count_90d": 0,
        "cross_border_volume_90d": 0,
        "industry_risk": "low",
        "str_count_12m": 0,
        "refused_cdd": False,
        "adverse_media": False,
    },
    "ops": {
        "failed_operations_90d": 0,
        "support_tickets_90d": 0,
        "fraud_victim_flag": False,
        "kyc_expired": False,
    },
    "feedback": {"csat": 4.5, "nps": 9, "open_complaints": 0, "complaints_12m": 0},
    "qualified_investor": False,
}


#: A policy that declares its score scale (FICO) and turns DTI on: what a bank must write
#: before a credit score or a debt-to-income ratio rates anyone.
FICO_POLICY = """
[credit]
score_scale = "FICO Score 8 (300-850)"
score_min = 300
score_max = 850
high_score_below = 580
medium_score_below = 670
medium_dti_over = 0.40
high_dti_over = 0.55
"""


#: A policy that moves every switch the default leaves alone: point-in-time balances over
#: the 3-month average, no profit lift, reasons in both languages, an exchange rate, more
#: required blocks and a corporate ladder with lower floors.
VARIANT_POLICY = """
name = "variant"
[fx]
USD = 7.1
[value]
prefer_avg_3m = false
[value.lift]
enabled = false
[value.corporate.tiers.corporate_key]
balance_floor = 5000000
[quality]
required = ["kind", "assets", "aml", "ops", "credit", "activity", "revenue_12m", "feedback"]
[strategy]
reasons_language = "both"
"""


def policies() -> dict[str, Policy]:
    """The default policy and the variants every rule's branches are held to."""
    return {
        "default": load_policy(),
        "fico": policy_over_default({"name": "fico", **tomllib.loads(FICO_POLICY)}),
        "variant": policy_over_default(tomllib.loads(VARIANT_POLICY)),
    }


#: A policy whose task rules are set as a bank may set them (loaded from TOML like an admin's
#: file): other tiers get a dedicated advisor, every corporate a banking review, no upgrade
#: calls, and sales tasks not held back for AML (waived). The task candidates depend on these
#: settings; ``policies`` leaves them at the default's.
TASK_SETTINGS_POLICY = """
name = "task_settings"
[regulatory.waivers]
sanctions = "test: sales tasks whatever the AML level"
[strategy.risk]
no_marketing_aml = []
[strategy.tasks.dedicated_advisor]
tiers = ["affluent", "corporate_key"]
[strategy.tasks.corporate_banking]
tiers = []
marketing = false
[strategy.tasks.upgrade_call]
enabled = false
[strategy.tasks.complaint]
priority_tiers = ["mass"]
"""


def task_settings_policy() -> Policy:
    """``TASK_SETTINGS_POLICY`` over the default."""
    return policy_over_default(tomllib.loads(TASK_SETTINGS_POLICY))


def generated_bank(n: int, seed: int, *, dirty: bool = False) -> list[CustomerProfile]:
    """Generated customers, a third of them with a previous tier and a below-floor clock
    at various ages, so hysteresis is exercised too. ``dirty`` adds foreign and unknown
    currencies, unknown previous tiers and corporate ones."""
    tiers = [None, "private", "wealth", "affluent", "mass", "unrated"]
    if dirty:
        tiers += ["corporate_key", "corporate_small", "bogus"]
    batch = []
    for c in generate(n, seed=seed):
        if c.profile["activity"] and isinstance(c.profile["activity"]["transactions_90d"], str):
            continue  # text in a numeric field: unreadable, the CLI skips such records
        data: dict[str, Any] = {"id": c.id, **c.profile}
        if c.index % 3 == 0:
            data["previous"] = {
                "value_tier": tiers[c.index % len(tiers)],
                "below_floor_since": (
                    AS_OF - timedelta(days=c.index % 200) if c.index % 2 else None
                ),
            }
        if dirty and c.index % 7 == 1:
            # a currency the policy converts (USD) and one it has no rate for (ISO 4217
            # "XXX", no currency): the second must give DQ_NO_FX, not a made-up amount
            data["currency"] = ("USD", "XXX")[c.index % 2]
        batch.append(CustomerProfile.model_validate(data))
    return batch


def override_of(k: int) -> dict[str, Any]:
    """An approved override to private (with a priority service tier unless ``k`` is a
    multiple of 3); for an odd ``k`` its checker is its maker, so it is refused."""
    return {
        "value_tier": "private",
        "service_tier": "priority" if k % 3 else None,
        "reason": "reviewed",
        "expires": "2027-02-15",
        "approved": True,
        "maker_id": "005RM1",
        "checker_id": "005RM1" if k % 2 else "005HEAD",
        "proposed_at": "2026-11-19T16:00:00",
        "approved_at": "2026-11-20T09:30:00",
    }


def build(**changes: Any) -> dict[str, Any]:
    """BASELINE with ``changes``: a dict value for a block is merged into that block
    (``assets={"deposits": 1}``), ``None`` removes the block, dotted keys are not used."""
    data = copy.deepcopy(BASELINE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return data


def codes(assessment: Assessment) -> set[str]:
    return {r.code for r in assessment.reasons}


def dq(assessment: Assessment) -> set[tuple[str, str]]:
    return {(i.code, i.field) for i in assessment.dq_issues}


def tasks(assessment: Assessment) -> dict[str, Any]:
    return {a.rule: a for a in assessment.actions if a.kind == "task"}


def members(assessment: Assessment) -> set[str]:
    return {a.campaign for a in assessment.actions if a.kind == "campaign" and a.member}


def fields(assessment: Assessment) -> dict[str, Any]:
    return {a.field: a.value for a in assessment.actions if a.kind == "set_field"}
