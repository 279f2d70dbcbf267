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

The larger sections live beside it (``policy_aml.py``, ``policy_strategy.py``,
``policy_relations.py``) and the cross-key checks in ``policy_checks.py``; this module holds
the whole ``Policy`` and how it is loaded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from tiering_core.policy_aml import AmlPolicy
from tiering_core.policy_base import NonNeg, TierName
from tiering_core.policy_base import Section as _Section
from tiering_core.policy_checks import (
    CURRENCY,
    consistency_problems,
    regulatory_problems,
)
from tiering_core.policy_relations import ChannelPolicy, CoveragePolicy, HouseholdPolicy
from tiering_core.policy_strategy import OverridePolicy, ServiceLevels, StrategyPolicy

Level = Literal["low", "medium", "high"]


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


class Regulatory(_Section):
    """``waivers``: floor id (``FLOORS``) -> the reason the bank weakens it. A waiver is part
    of the policy's content and is named in its version, so every assessment and audit row
    shows it."""

    waivers: dict[str, str] = Field(default_factory=dict)


class Policy(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    currency: str = Field(pattern=CURRENCY.pattern)
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
    problems = consistency_problems(policy) + regulatory_problems(policy)
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
        for problem in consistency_problems(policy) + regulatory_problems(policy)
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
