"""The tiering policy: every number a decision depends on, loaded from TOML and validated.

A bank's admin changes tiers by editing a policy file, never code, so the policy is the
product's real configuration surface. It is validated as a whole before any customer is
assessed, and every error names the key and the problem
(``value.tiers.private.aum_floor: must be > value.tiers.wealth.aum_floor``), because the
person reading it edits TOML, not Python.

An admin's file is merged over the built-in default (``default_policy.toml``), so it holds
only what it changes. ``Policy.version`` (``name@<12 hex>``) hashes the validated content,
so two files that mean the same policy have the same version, and every assessment records
exactly which policy produced it.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import tomllib
from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from tiering_core.models import CORPORATE_TIER_ORDER, LOAN_CLASSES, VALUE_TIER_ORDER
from tiering_core.policy_base import NonNeg, TierName
from tiering_core.policy_base import Section as _Section
from tiering_core.policy_relations import ChannelPolicy, CoveragePolicy

Level = Literal["low", "medium", "high"]
AmlLevel = Literal["low", "medium", "high", "prohibited"]
Period = Literal["month", "quarter", "half_year", "year"]

_CURRENCY = re.compile(r"^[A-Z]{3}$")
#: Words that would reveal an AML rating in a customer-facing campaign key (PBOC 保密原则).
_CONFIDENTIAL_WORDS = ("aml", "edd", "pep", "sanction", "launder", "risk", "str_", "suspicious")


class PolicyError(ValueError):
    """A policy that cannot be used; ``problems`` holds one ``key: problem`` line each."""

    def __init__(self, problems: list[str], source: str = "policy") -> None:
        self.problems = problems
        self.source = source
        super().__init__(f"{source}: " + "; ".join(problems))


class TierFloor(_Section):
    aum_floor: float = Field(gt=0)
    revenue_floor: float = NonNeg


class Lift(_Section):
    enabled: bool
    aum_share: float = Field(ge=0, le=1)


class ValueScore(_Section):
    aum_weight: float = NonNeg
    aum_cap: float = Field(gt=0)
    revenue_weight: float = NonNeg
    revenue_cap: float = Field(gt=0)
    activity_weight: float = NonNeg
    transactions_cap: float = Field(gt=0)
    logins_cap: float = Field(gt=0)
    products_cap: float = Field(gt=0)


class Engagement(_Section):
    active_transactions_from: float = NonNeg
    dormant_transactions_max: float = NonNeg


class CorporateFloor(_Section):
    """A corporate tier is reached when *any* of the three reaches its floor: what the
    bank holds for the company (average balances), what it extends (approved credit
    lines) and what it earns from it (12-month revenue)."""

    balance_floor: float = Field(gt=0)
    credit_line_floor: float = Field(gt=0)
    revenue_floor: float = Field(gt=0)


class CorporateLadder(_Section):
    tiers: dict[
        Literal["corporate_strategic", "corporate_key", "corporate_standard"], CorporateFloor
    ]


class ValuePolicy(_Section):
    buffer: float = Field(ge=0, lt=1)
    grace_days: int = NonNeg
    prefer_avg_3m: bool
    tiers: dict[Literal["private", "wealth", "affluent"], TierFloor]
    lift: Lift
    score: ValueScore
    engagement: Engagement
    corporate: CorporateLadder


class NeedsPolicy(_Section):
    professional_tiers: tuple[TierName, ...]
    advanced_tiers: tuple[TierName, ...]
    advanced_products: tuple[str, ...]


class CreditPolicy(_Section):
    """Cut-offs left out (None) never fire. The score keys need ``score_scale``: the name of
    the bureau or internal scale they are on."""

    score_scale: str = ""
    score_min: int | None = None
    score_max: int | None = None
    high_score_below: int | None = None
    medium_score_below: int | None = None
    medium_dti_over: float | None = Field(default=None, ge=0)
    high_dti_over: float | None = Field(default=None, ge=0)
    dti_max: float = Field(gt=0)
    medium_dpd_from: int = Field(ge=1)
    high_dpd_over: int = NonNeg
    loan_class: dict[Literal["normal", "special_mention", "substandard", "doubtful", "loss"], Level]


class AmlWeights(_Section):
    customer: float = NonNeg
    geography: float = NonNeg
    business: float = NonNeg
    industry: float = NonNeg


class AmlPoints(_Section):
    pep: float = Field(ge=0, le=100)
    adverse_media: float = Field(ge=0, le=100)
    str_each: float = Field(ge=0, le=100)
    corporate: float = Field(ge=0, le=100)
    high_risk_country: float = Field(ge=0, le=100)
    call_for_action_country: float = Field(ge=0, le=100)
    cash_large: float = Field(ge=0, le=100)
    cash_very_large: float = Field(ge=0, le=100)
    cross_border_frequent: float = Field(ge=0, le=100)
    cross_border_large: float = Field(ge=0, le=100)
    industry_medium: float = Field(ge=0, le=100)
    industry_high: float = Field(ge=0, le=100)


class AmlThresholds(_Section):
    cash_large_from: float = Field(gt=0)
    cash_very_large_from: float = Field(gt=0)
    cross_border_count_from: float = Field(gt=0)
    cross_border_volume_from: float = Field(gt=0)


class AmlCountries(_Section):
    call_for_action: tuple[str, ...]


class AmlOverrides(_Section):
    """The level a single fact forces *at least*; empty string = no override."""

    sanctions_hit: AmlLevel | Literal[""]
    pep: AmlLevel | Literal[""]
    refused_cdd: AmlLevel | Literal[""]
    repeated_str: AmlLevel | Literal[""]
    repeated_str_min: int = Field(ge=1)


class ReviewMonths(_Section):
    high: int = Field(ge=1)
    medium: int = Field(ge=1)
    low: int = Field(ge=1)


class NewCustomer(_Section):
    working_days: int = Field(ge=1)


class AmlPolicy(_Section):
    medium_from: float = Field(gt=0, le=100)
    high_from: float = Field(gt=0, le=100)
    weights: AmlWeights
    points: AmlPoints
    thresholds: AmlThresholds
    countries: AmlCountries
    overrides: AmlOverrides
    review_months: ReviewMonths
    new_customer: NewCustomer


class OpsPolicy(_Section):
    kyc_expired_level: Level
    fraud_victim_level: Level
    failed_medium_from: int = Field(ge=1)
    failed_high_from: int = Field(ge=1)
    tickets_medium_from: int = Field(ge=1)
    tickets_high_from: int = Field(ge=1)


class FeedbackPolicy(_Section):
    csat_min: float
    csat_max: float
    detractor_csat_max: float
    nps_min: float
    nps_max: float
    detractor_nps_max: float


class QualityPolicy(_Section):
    required: tuple[
        Literal["kind", "assets", "aml", "ops", "credit", "activity", "revenue_12m", "feedback"],
        ...,
    ]


class ServiceLevels(_Section):
    private: str = Field(min_length=1)
    wealth: str = Field(min_length=1)
    affluent: str = Field(min_length=1)
    mass: str = Field(min_length=1)
    unrated: str = Field(min_length=1)
    prohibited: str = Field(min_length=1)
    corporate_strategic: str = Field(min_length=1)
    corporate_key: str = Field(min_length=1)
    corporate_standard: str = Field(min_length=1)
    corporate_small: str = Field(min_length=1)


class RiskOverrides(_Section):
    no_marketing_aml: tuple[AmlLevel, ...]
    no_campaigns_aml: tuple[AmlLevel, ...]
    no_credit_products_credit: tuple[Literal["low", "medium", "high", "unrated"], ...]


class TaskRule(_Section):
    """One task-generating rule. ``to_owner`` gives the task to the customer's relationship
    manager when there is one (else to ``queue``); ``period`` decides when a rerun creates a
    new task instead of upserting the same one."""

    enabled: bool = True
    queue: str = Field(min_length=1)
    to_owner: bool = False
    priority: Literal["high", "normal", "low"]
    due_days: int = Field(ge=0)
    period: Period
    tiers: tuple[TierName, ...] = ()
    priority_tiers: tuple[TierName, ...] = ()
    # A sales task: withheld from customers who refused personalised marketing (PIPL Art. 24)
    marketing: bool = False
    # Where the due date comes from (a regulation, or "bank policy"): shown in the task
    deadline_source: str = ""
    # Task volume (the sync layer enforces them): new tasks of this rule per run, and open
    # tasks of it per relationship manager; None: unbounded. Beyond them, tasks wait.
    budget_per_run: int | None = Field(default=None, ge=0)
    open_per_owner: int | None = Field(default=None, ge=1)


class Tasks(_Section):
    sanctions_review: TaskRule
    edd_review: TaskRule
    credit_limit_review: TaskRule
    complaint: TaskRule
    upgrade_call: TaskRule
    dedicated_advisor: TaskRule
    corporate_banking: TaskRule
    investment_advisory: TaskRule
    service_recovery: TaskRule
    data_remediation: TaskRule


OverrideDimension = Literal["value_tier", "service_tier"]


class OverridePolicy(_Section):
    """Tier overrides with maker-checker and expiry (docs/overrides.md). Only value and
    service tiers are ever liftable, so an override can never touch AML or credit risk;
    ``lift`` narrows that further. ``max_days``: the longest approval, counted from the
    checker's approval to the expiry date (a quarter by default: the RM re-argues it each
    quarter). ``refused_task``: the task that tells the maker why an override was refused
    (its ``queue`` when the CRM's audit names no maker and the customer has no owner)."""

    enabled: bool = True
    max_days: int = Field(default=92, ge=1, le=731)
    lift: tuple[OverrideDimension, ...] = ("value_tier", "service_tier")
    refused_task: TaskRule = TaskRule(
        queue="relationship_managers",
        priority="normal",
        due_days=3,
        period="month",
        deadline_source="bank policy: a refused override is answered within three days",
    )


class Campaign(_Section):
    tiers: tuple[TierName, ...] = ()
    needs: tuple[Literal["basic", "advanced", "professional"], ...] = ()
    kinds: tuple[Literal["individual", "corporate"], ...] = ()
    credit: tuple[Literal["low", "medium", "high", "unrated"], ...] = ()
    marketing: bool = True
    credit_product: bool = False
    cadence: str = ""


class StrategyPolicy(_Section):
    reasons_top: int = Field(ge=1, le=20)
    reasons_language: Literal["en", "zh", "both"]
    reasons_max_chars: int = Field(ge=40)
    risk: RiskOverrides
    tasks: Tasks
    campaigns: dict[str, Campaign]


#: Regulatory floors: what a policy may weaken only by naming the floor in
#: ``[regulatory.waivers]`` with a reason. Floor id -> what it keeps.
FLOORS: dict[str, str] = {
    "sanctions": "a sanctions hit is rated prohibited, goes to compliance due the same day, "
    "and ends every campaign and marketing",
    "pep": "a politically exposed person is rated at least high",
    "complaint_deadline": "every open complaint gets a task due within 15 days",
    "aml_review": "AML review cycles: high at most 6 months, each lower level at most twice "
    "the one above",
}
#: The audit trail's policy_version column holds this many characters.
VERSION_MAX_CHARS = 80


#: A member's role in a household, as the connectors normalise the CRM's relationship roles.
HouseholdRole = Literal[
    "primary", "spouse", "partner", "child", "parent", "other_family", "business", "other"
]


class HouseholdPolicy(_Section):
    """Household tiering (rules.household): whether a household's summed AUM lifts its
    members, which member roles count towards it, and which AML levels of any member flag
    the household for compliance review."""

    enabled: bool
    count_roles: tuple[HouseholdRole, ...]
    review_aml: tuple[AmlLevel, ...]


class Regulatory(_Section):
    """``waivers``: floor id (``FLOORS``) -> the reason the bank weakens it. A waiver is part
    of the policy's content and is named in its version, so every assessment and audit row
    shows it."""

    waivers: dict[str, str] = Field(default_factory=dict)


class Policy(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    currency: str = Field(pattern=_CURRENCY.pattern)
    fx: dict[str, float] = Field(default_factory=dict)
    value: ValuePolicy
    needs: NeedsPolicy
    credit: CreditPolicy
    aml: AmlPolicy
    ops: OpsPolicy
    feedback: FeedbackPolicy
    quality: QualityPolicy
    service_levels: ServiceLevels
    strategy: StrategyPolicy
    households: HouseholdPolicy
    channel: ChannelPolicy = Field(default_factory=ChannelPolicy)
    coverage: CoveragePolicy = Field(default_factory=CoveragePolicy)
    regulatory: Regulatory = Field(default_factory=Regulatory)
    overrides: OverridePolicy = Field(default_factory=OverridePolicy)

    @cached_property
    def version(self) -> str:
        """``name@<12 hex>`` of the validated content (key order and formatting ignored),
        then ``+waived:<floor>,...`` when the policy waives a regulatory floor."""
        content = json.dumps(self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
        version = f"{self.name}@{hashlib.sha256(content.encode('utf-8')).hexdigest()[:12]}"
        if self.regulatory.waivers:
            version += "+waived:" + ",".join(sorted(self.regulatory.waivers))
        return version

    def fx_rate(self, currency: str) -> float | None:
        """Policy-currency units per unit of ``currency``; None when the policy has no rate."""
        if currency == self.currency:
            return 1.0
        return self.fx.get(currency)

    def floor(self, tier: str) -> float:
        """AUM floor of a value tier (mass: 0)."""
        return self.tier_floors().get(tier, 0.0)

    def tier_floors(self) -> dict[str, float]:
        """AUM floor by tier name, for the tiers above mass."""
        return {str(name): floor.aum_floor for name, floor in self.value.tiers.items()}


# --- loading -------------------------------------------------------------------------------


def default_policy_text() -> str:
    """The built-in policy TOML exactly as shipped (what ``crmtier policy show`` prints)."""
    return resources.files("tiering_core").joinpath("default_policy.toml").read_text("utf-8")


def load_policy(path: Path | None = None) -> Policy:
    """The built-in default (``path`` None) or an admin's file merged over it."""
    if path is None:
        return parse_policy(tomllib.loads(default_policy_text()), source="default_policy.toml")
    source = str(path)
    try:
        overrides = tomllib.loads(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise PolicyError([f"cannot read the file ({exc.strerror or exc})"], source) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError([f"not valid TOML ({exc})"], source) from None
    if "name" not in overrides:
        overrides["name"] = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(path).stem) or "custom"
    return policy_over_default(overrides, source)


def parse_policy(data: Mapping[str, Any], source: str = "policy") -> Policy:
    """Validate a policy tree; raise ``PolicyError`` listing every problem by key, all in
    one pass: a bad value or an unknown key does not hide a cross-key or regulatory problem
    elsewhere (an admin fixes the file once, not once per run of ``policy validate``)."""
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        raise PolicyError(
            [_describe(err) for err in errors] + _problems_beside(data, errors), source
        ) from None
    problems = _consistency_problems(policy) + _regulatory_problems(policy)
    if problems:
        raise PolicyError(problems, source)
    return policy


def policy_over_default(overrides: Mapping[str, Any], source: str = "policy") -> Policy:
    """``overrides`` (a parsed admin file) merged over the built-in default, validated."""
    return parse_policy(_merge(tomllib.loads(default_policy_text()), overrides), source)


def _problems_beside(data: Mapping[str, Any], errors: list[Any]) -> list[str]:
    """The cross-key and regulatory problems of ``data`` apart from its invalid keys: each
    invalid value is set to the default's (an unknown key dropped), the result validated,
    and a problem naming a replaced key left out (it would describe the default, not the
    file). Nothing when the tree cannot be mended that way."""
    default = tomllib.loads(default_policy_text())
    mended: dict[str, Any] = copy.deepcopy(dict(data))
    replaced: list[str] = []
    for err in errors:
        loc = [str(part) for part in err["loc"]]
        if err["type"] == "extra_forbidden":
            parent = _node(mended, loc[:-1])
            if isinstance(parent, dict):
                parent.pop(loc[-1], None)
            continue
        known = 0
        while known < len(loc) and _node(default, loc[: known + 1]) is not None:
            known += 1
        parent = _node(mended, loc[: known - 1])
        if known == 0 or not isinstance(parent, dict):
            return []
        parent[loc[known - 1]] = copy.deepcopy(_node(default, loc[:known]))
        replaced.append(".".join(loc[:known]))
    try:
        policy = Policy.model_validate(mended)
    except ValidationError:
        return []
    names = [re.compile(rf"(?<![\w.]){re.escape(key)}(?![\w])") for key in replaced]
    return [
        problem
        for problem in _consistency_problems(policy) + _regulatory_problems(policy)
        if not any(name.search(problem) for name in names)
    ]


def _node(tree: Any, path: list[str]) -> Any:
    """The value at ``path`` in nested tables, or None."""
    for part in path:
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge tables; a value (including a list) in ``overrides`` replaces the base's."""
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(err: Any) -> str:
    key = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if err["type"] == "missing":
        return f"{key}: required"
    return f"{key}: {err['msg'].removeprefix('Value error, ')}"


def _score_scale_problems(c: CreditPolicy) -> list[str]:
    """Score keys only with a named scale; a named scale with its range; cut-offs in order."""
    keys = {
        "score_min": c.score_min,
        "score_max": c.score_max,
        "high_score_below": c.high_score_below,
        "medium_score_below": c.medium_score_below,
    }
    if not c.score_scale.strip():
        return [
            f"credit.{k}: needs credit.score_scale (the name of the scale the score is on)"
            for k, v in keys.items()
            if v is not None
        ]
    if c.score_min is None or c.score_max is None:
        return [
            f"credit.{k}: required with credit.score_scale"
            for k in ("score_min", "score_max")
            if keys[k] is None
        ]
    if c.score_min >= c.score_max:
        return ["credit.score_min: must be < credit.score_max"]
    cuts = [v for v in (c.high_score_below, c.medium_score_below) if v is not None]
    if cuts != sorted(cuts) or any(not c.score_min <= v <= c.score_max for v in cuts):
        return [
            "credit.high_score_below: must satisfy score_min <= high_score_below"
            " <= medium_score_below <= score_max"
        ]
    return []


def _consistency_problems(p: Policy) -> list[str]:
    """Rules that relate several keys: the ladders must be ordered, the cadences lawful."""
    out: list[str] = []
    tiers = {str(name): floor for name, floor in p.value.tiers.items()}
    ladder = [t for t in VALUE_TIER_ORDER if t != "mass"]
    for tier in ladder:
        if tier not in tiers:
            out.append(f"value.tiers.{tier}: required")
    for upper, lower in itertools.pairwise(ladder):
        if upper in tiers and lower in tiers and tiers[upper].aum_floor <= tiers[lower].aum_floor:
            out.append(f"value.tiers.{upper}.aum_floor: must be > value.tiers.{lower}.aum_floor")
    out += _corporate_ladder_problems(p)
    if p.value.score.aum_weight + p.value.score.revenue_weight + p.value.score.activity_weight <= 0:
        out.append("value.score: the component weights must not all be 0")
    c = p.credit
    for loan_class in LOAN_CLASSES:
        if loan_class not in c.loan_class:
            out.append(f"credit.loan_class.{loan_class}: required")
    out += _score_scale_problems(c)
    if (
        c.medium_dti_over is not None
        and c.high_dti_over is not None
        and c.medium_dti_over > c.high_dti_over
    ):
        out.append("credit.medium_dti_over: must be <= credit.high_dti_over")
    if c.medium_dpd_from > c.high_dpd_over:
        out.append("credit.medium_dpd_from: must be <= credit.high_dpd_over")
    a = p.aml
    if a.medium_from >= a.high_from:
        out.append("aml.medium_from: must be < aml.high_from")
    weights = a.weights
    total = weights.customer + weights.geography + weights.business + weights.industry
    if abs(total - 100) > 1e-9:
        out.append(f"aml.weights: must sum to 100 (they sum to {total:g})")
    if a.thresholds.cash_large_from > a.thresholds.cash_very_large_from:
        out.append("aml.thresholds.cash_large_from: must be <= aml.thresholds.cash_very_large_from")
    for i, code in enumerate(a.countries.call_for_action):
        if not re.fullmatch(r"[A-Z]{2}", code):
            out.append(f"aml.countries.call_for_action.{i}: must be an ISO 3166 alpha-2 code")
    o = p.ops
    if o.failed_medium_from > o.failed_high_from:
        out.append("ops.failed_medium_from: must be <= ops.failed_high_from")
    if o.tickets_medium_from > o.tickets_high_from:
        out.append("ops.tickets_medium_from: must be <= ops.tickets_high_from")
    f = p.feedback
    if not f.csat_min < f.csat_max:
        out.append("feedback.csat_min: must be < feedback.csat_max")
    if not f.csat_min <= f.detractor_csat_max <= f.csat_max:
        out.append("feedback.detractor_csat_max: must lie within [csat_min, csat_max]")
    if not f.nps_min < f.nps_max:
        out.append("feedback.nps_min: must be < feedback.nps_max")
    if not f.nps_min <= f.detractor_nps_max < f.nps_max:
        out.append("feedback.detractor_nps_max: must lie within [nps_min, nps_max)")
    for code, rate in p.fx.items():
        if not _CURRENCY.match(code):
            out.append(f"fx.{code}: must be an ISO 4217 currency code")
        if not rate > 0:
            out.append(f"fx.{code}: must be > 0")
    for key in p.strategy.campaigns:
        if not re.fullmatch(r"[a-z0-9_]+", key):
            out.append(f"strategy.campaigns.{key}: keys are lower_snake_case")
        if any(word in key.lower() for word in _CONFIDENTIAL_WORDS):
            out.append(
                f"strategy.campaigns.{key}: campaign keys are customer-facing and must not"
                " reveal a risk rating"
            )
    return out


def _corporate_ladder_problems(p: Policy) -> list[str]:
    """Every corporate floor present, and each criterion's floors strictly decreasing."""
    out: list[str] = []
    tiers = {str(name): floor for name, floor in p.value.corporate.tiers.items()}
    ladder = [t for t in CORPORATE_TIER_ORDER if t != "corporate_small"]
    for tier in ladder:
        if tier not in tiers:
            out.append(f"value.corporate.tiers.{tier}: required")
    for upper, lower in itertools.pairwise(ladder):
        if upper not in tiers or lower not in tiers:
            continue
        for key in ("balance_floor", "credit_line_floor", "revenue_floor"):
            if getattr(tiers[upper], key) <= getattr(tiers[lower], key):
                out.append(
                    f"value.corporate.tiers.{upper}.{key}: must be >"
                    f" value.corporate.tiers.{lower}.{key}"
                )
    return out


def _floor_breaches(p: Policy) -> list[tuple[str, str]]:
    """(floor id, ``key: problem``) for every regulatory floor the policy weakens."""
    out: list[tuple[str, str]] = []
    o, risk, t = p.aml.overrides, p.strategy.risk, p.strategy.tasks
    if o.sanctions_hit != "prohibited":
        out.append(
            (
                "sanctions",
                'aml.overrides.sanctions_hit: must be "prohibited" (PBOC'
                " 银发〔2013〕2号: a listed customer goes straight to the highest level)",
            )
        )
    for key in ("no_marketing_aml", "no_campaigns_aml"):
        if "prohibited" not in getattr(risk, key):
            out.append(("sanctions", f'strategy.risk.{key}: must include "prohibited"'))
    s = t.sanctions_review
    if not s.enabled or s.due_days > 0 or s.priority != "high":
        out.append(
            (
                "sanctions",
                "strategy.tasks.sanctions_review: must be enabled, priority"
                ' "high" and due_days = 0 (FATF R.6: act without delay)',
            )
        )
    if o.pep not in ("high", "prohibited"):
        out.append(
            (
                "pep",
                'aml.overrides.pep: must be "high" or "prohibited" (FATF R.12:'
                " enhanced measures for every PEP)",
            )
        )
    c = t.complaint
    if not c.enabled or c.due_days > 15:
        out.append(
            (
                "complaint_deadline",
                "strategy.tasks.complaint.due_days: must be <= 15"
                " with the rule enabled (银行保险机构消费投诉处理管理办法, 2020)",
            )
        )
    r = p.aml.review_months
    if r.high > 6:
        out.append(("aml_review", "aml.review_months.high: must be <= 6 (PBOC 银发〔2013〕2号)"))
    if r.medium > 2 * r.high:
        out.append(
            ("aml_review", "aml.review_months.medium: must be <= 2 x aml.review_months.high")
        )
    if r.low > 2 * r.medium:
        out.append(("aml_review", "aml.review_months.low: must be <= 2 x aml.review_months.medium"))
    return out


def _regulatory_problems(p: Policy) -> list[str]:
    """A weakened floor without a waiver, and every waiver that is not one with a reason."""
    waivers = p.regulatory.waivers
    breaches = _floor_breaches(p)
    out = [
        f"{problem}; a regulatory floor: weaken it only with [regulatory.waivers] {floor} ="
        ' "<reason>"'
        for floor, problem in breaches
        if not waivers.get(floor, "").strip()
    ]
    weakened = {floor for floor, _ in breaches}
    for floor, reason in waivers.items():
        if floor not in FLOORS:
            out.append(f"regulatory.waivers.{floor}: unknown floor (one of {', '.join(FLOORS)})")
        elif not reason.strip():
            out.append(f"regulatory.waivers.{floor}: needs the reason for the waiver")
        elif floor not in weakened:
            out.append(
                f"regulatory.waivers.{floor}: the policy keeps this floor; remove the waiver"
            )
    if len(p.version) > VERSION_MAX_CHARS:
        out.append(
            f"name: too long: the version {p.version!r} must fit {VERSION_MAX_CHARS}"
            " characters (the audit trail's column)"
        )
    return out
