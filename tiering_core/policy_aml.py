"""The ``[aml]`` section of the policy: how a customer's money-laundering risk is scored
(weighted factor points against the medium/high cut-offs), which single facts force a
level at least (sanctions, PEP, refused due diligence, repeated STRs) and how often each
level is reviewed. Its own module because it is the largest section and is read by
compliance apart from the rest; ``tiering_core/policy.py`` composes it into ``Policy``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tiering_core.policy_base import AmlLevel, NonNeg, Section


class AmlWeights(Section):
    customer: float = NonNeg
    geography: float = NonNeg
    business: float = NonNeg
    industry: float = NonNeg


class AmlPoints(Section):
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


class AmlThresholds(Section):
    cash_large_from: float = Field(gt=0)
    cash_very_large_from: float = Field(gt=0)
    cross_border_count_from: float = Field(gt=0)
    cross_border_volume_from: float = Field(gt=0)


class AmlCountries(Section):
    call_for_action: tuple[str, ...]


class AmlOverrides(Section):
    """The level a single fact forces *at least*; empty string = no override."""

    sanctions_hit: AmlLevel | Literal[""]
    pep: AmlLevel | Literal[""]
    refused_cdd: AmlLevel | Literal[""]
    repeated_str: AmlLevel | Literal[""]
    repeated_str_min: int = Field(ge=1)


class ReviewMonths(Section):
    high: int = Field(ge=1)
    medium: int = Field(ge=1)
    low: int = Field(ge=1)


class NewCustomer(Section):
    working_days: int = Field(ge=1)


class AmlPolicy(Section):
    medium_from: float = Field(gt=0, le=100)
    high_from: float = Field(gt=0, le=100)
    weights: AmlWeights
    points: AmlPoints
    thresholds: AmlThresholds
    countries: AmlCountries
    overrides: AmlOverrides
    review_months: ReviewMonths
    new_customer: NewCustomer
