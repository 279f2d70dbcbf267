"""The ``[strategy]`` and ``[overrides]`` sections of the policy: what the bank does with
an assessment (service levels, the risk limits on marketing and credit products, the tasks
and campaigns it creates, how reasons are shown) and how a tier override is approved.
Its own module because these sections describe actions, not ratings;
``tiering_core/policy.py`` composes them into ``Policy``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tiering_core.policy_base import AmlLevel, Section, TierName

Period = Literal["month", "quarter", "half_year", "year"]


class ServiceLevels(Section):
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


class RiskOverrides(Section):
    no_marketing_aml: tuple[AmlLevel, ...]
    no_campaigns_aml: tuple[AmlLevel, ...]
    no_credit_products_credit: tuple[Literal["low", "medium", "high", "unrated"], ...]


class TaskRule(Section):
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


class Tasks(Section):
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


class OverridePolicy(Section):
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


class Campaign(Section):
    tiers: tuple[TierName, ...] = ()
    needs: tuple[Literal["basic", "advanced", "professional"], ...] = ()
    kinds: tuple[Literal["individual", "corporate"], ...] = ()
    credit: tuple[Literal["low", "medium", "high", "unrated"], ...] = ()
    marketing: bool = True
    credit_product: bool = False
    cadence: str = ""


class StrategyPolicy(Section):
    reasons_top: int = Field(ge=1, le=20)
    reasons_language: Literal["en", "zh", "both"]
    reasons_max_chars: int = Field(ge=40)
    risk: RiskOverrides
    tasks: Tasks
    campaigns: dict[str, Campaign]
