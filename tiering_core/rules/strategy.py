"""Service strategy: what the CRM should do for one assessed customer.

Three kinds of action (docs/policy.md): ``set_field`` for every canonical output, follow-up
``task``s and ``campaign`` memberships. Risk overrides marketing: an AML high/prohibited
customer gets an EDD task for compliance and no marketing campaign; a sanctions hit gets a
compliance task due the same day, no sales or service-recovery task and no campaign
membership at all (the planner then removes every membership crmtier made); a credit-high
customer gets a limit review and no credit-product campaign. Mass-tier and basic-needs customers
are served self-service: their tasks go to team queues, never to a relationship manager.
A task that contacts the customer (upgrade call, investment advisory, service recovery)
opens with how to reach them in their preferred channel (``rules/channel.py``); the channel
only says how, so a marketing opt-out, applied first, withholds the task in every channel.

Every task carries a deterministic ``dedupe_key`` (customer + rule + period) so a rerun in
the same period upserts the same task; every campaign action carries one per (customer,
campaign), and a customer who no longer qualifies gets ``member = false`` so the sync layer
can remove a membership it added earlier.
"""

from __future__ import annotations

import hashlib
from binascii import hexlify
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from functools import lru_cache
from hashlib import sha256
from typing import Any, NamedTuple

from tiering_core.columns import BoolArray, FloatArray
from tiering_core.dates import period_label
from tiering_core.models import (
    CUSTOMER_KINDS,
    ActionKind,
    AmlRisk,
    Channel,
    DecidedFields,
    NeedsTier,
    Priority,
    RiskLevel,
    Status,
    ValueTier,
)
from tiering_core.policy import Policy
from tiering_core.policy_strategy import TaskRule
from tiering_core.rules import task_text
from tiering_core.rules.base import AML_LEVELS, NEEDS_TIERS, RISK_LEVELS, VALUE_TIERS, IntArray
from tiering_core.rules.campaigns import among
from tiering_core.rules.channel import CONTACT

#: An action as the plain data of ``SetFieldAction``/``TaskAction``/``CampaignAction``; the
#: engine validates the whole Assessment at once.
Action = dict[str, Any]
#: Value tiers a relationship manager serves; others are self-service (no RM task).
RM_TIERS = (
    "private",
    "wealth",
    "affluent",
    "corporate_strategic",
    "corporate_key",
    "corporate_standard",
)


class Customer(NamedTuple):
    """What the strategy reads of a customer besides its decisions, as given: the id (for
    dedupe keys), the relationship manager, the kind as written (a campaign may name
    kinds) and whether screening hit a sanction."""

    id: str
    owner_id: str | None
    kind: str | None
    sanctioned: bool


class Outcome(NamedTuple):
    """One customer's decided results: what the strategy acts on (a NamedTuple: one is
    made per customer whose tasks are derived, and a frozen dataclass's ``__init__``
    costs several times a tuple's)."""

    value_tier: ValueTier
    value_score: float | None
    needs_tier: NeedsTier
    credit_risk: RiskLevel
    aml_risk: AmlRisk
    ops_risk: RiskLevel
    edd_required: bool
    next_review: date
    service_level: str
    status: Status
    upgraded_from: ValueTier | None
    open_complaints: int
    detractor: bool
    dq_fields: tuple[str, ...]
    marketing_opt_out: bool = False  # refused personalised marketing (PIPL Art. 24)
    preferred_channel: Channel | None = None  # rules/channel.py; None: not decided


def dedupe_key(*parts: str) -> str:
    """A stable external id: the same parts always give the same 32 hex characters."""
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]


def actions(
    customer: Customer,
    set_fields: tuple[Action, ...],
    outcome: Outcome | None,
    reasons: list[dict[str, Any]],
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
    memberships: tuple[tuple[str, ...], Sequence[bool]],
) -> tuple[Action, ...]:
    """The actions of ``kinds``, in kind order; a kind not asked for is not derived.
    ``set_fields``: the customer's ``set_field`` actions (from ``set_field_columns``, made for the
    whole batch); ``outcome``: what the tasks read (needed only when they are asked for);
    ``memberships``: the campaign keys and this customer's membership of each."""
    if "task" not in kinds and "campaign" not in kinds:
        return set_fields if "set_field" in kinds else ()
    out = list(set_fields) if "set_field" in kinds else []
    if "task" in kinds:
        if outcome is None:
            raise ValueError("tasks need the customer's outcome")
        out += tasks(customer, outcome, policy, as_of, reasons)
    if "campaign" in kinds:
        out += campaigns(customer.id, *memberships)
    return tuple(out)


#: The canonical output fields written back, in order: the decided ones, then these two.
SET_FIELDS = (*DecidedFields.__annotations__, "policy_version", "reasons")


def set_field_columns(columns: Mapping[str, Sequence[Any]]) -> dict[str, Sequence[Any]]:
    """The ``set_field`` values of a batch by field, in the order a customer's actions
    list them: one per canonical output (``SET_FIELDS``, then ``household_tier`` when the
    CRM's households were read). ``columns`` holds each field's value per customer as
    written (dates as ISO text)."""
    names = [*SET_FIELDS, *(("household_tier",) if "household_tier" in columns else ())]
    return {name: columns[name] for name in names}


def tasks(
    customer: Customer,
    o: Outcome,
    policy: Policy,
    as_of: date,
    reasons: Sequence[dict[str, Any]] = (),
) -> list[Action]:
    """The follow-up tasks; each one's description says what to do, why (the customer's
    top reasons for it) and where its due date comes from (``task_text``)."""
    t = policy.strategy.tasks
    out: list[Action] = []

    def add(
        rule_name: str,
        rule: TaskRule,
        subject: str,
        *,
        key: str = "",
        priority: Priority | None = None,
        due_days: int | None = None,
        dq_fields: tuple[str, ...] = (),
    ) -> None:
        if not rule.enabled or (rule.marketing and o.marketing_opt_out):
            return
        serves_rm = o.value_tier in RM_TIERS and o.needs_tier != "basic"
        owner = customer.owner_id if rule.to_owner and serves_rm and customer.owner_id else None
        period = period_label(as_of, rule.period)
        days = rule.due_days if due_days is None else due_days
        due = as_of + timedelta(days=days)
        out.append(
            {
                "kind": "task",
                "rule": rule_name,
                "subject": subject,
                "priority": priority or rule.priority,
                "due": due,
                "queue": None if owner else rule.queue,
                "owner_id": owner,
                "description": task_text.description(
                    rule_name, rule, reasons, policy, due, days, dq_fields
                ),
                "dedupe_key": dedupe_key(customer.id, rule_name + key, period),
            }
        )

    # A sanctions hit is handled the day it is found, by compliance, whatever level the
    # policy rates it; it replaces the EDD review (which waits up to edd_review.due_days).
    sanctioned = customer.sanctioned
    if sanctioned:
        add(
            "sanctions_review",
            t.sanctions_review,
            "Sanctions screening hit: restrict the relationship and review it today",
        )
    elif o.aml_risk in ("high", "prohibited"):
        subject = (
            "Prohibited AML level: restrict and review the relationship"
            if o.aml_risk == "prohibited"
            else "Enhanced due diligence review"
        )
        add("edd_review", t.edd_review, subject)
    if o.credit_risk == "high":
        add("credit_limit_review", t.credit_limit_review, "Credit limit and pricing review")
    if o.open_complaints > 0:
        # One deadline for every customer (the complaint rules set it by law, not by tier);
        # a priority tier only moves the task up the queue.
        rule = t.complaint
        add(
            "complaint",
            rule,
            f"Resolve {o.open_complaints} open complaint(s)",
            priority="high" if o.value_tier in rule.priority_tiers else None,
        )
    # Relationship-building (sales) tasks wait while AML risk blocks marketing: EDD and
    # senior approval come before VIP treatment. Complaints and service recovery do not.
    if o.aml_risk not in policy.strategy.risk.no_marketing_aml:
        if o.upgraded_from is not None:
            add(
                "upgrade_call",
                t.upgrade_call,
                f"{CONTACT[o.preferred_channel]}: upgraded from {o.upgraded_from} to "
                f"{o.value_tier}",
                key=f":{o.value_tier}",
            )
        if o.value_tier in t.dedicated_advisor.tiers and not customer.owner_id:
            add(
                "dedicated_advisor",
                t.dedicated_advisor,
                f"Assign a dedicated advisor ({o.value_tier} customer without one)",
            )
        rule = t.corporate_banking
        if customer.kind == "corporate" and (not rule.tiers or o.value_tier in rule.tiers):
            add(
                "corporate_banking",
                rule,
                "Corporate banking review: cash management, credit lines and trade finance"
                if customer.owner_id
                else f"Assign a corporate relationship manager ({o.value_tier} without one)",
            )
        if o.needs_tier == "professional" and customer.kind != "corporate":
            add(
                "investment_advisory",
                t.investment_advisory,
                f"Investment advisory review: {CONTACT[o.preferred_channel].lower()}",
            )
    # Service recovery is retention: never for a customer the bank must restrict.
    if o.detractor and not sanctioned and o.aml_risk != "prohibited":
        rule = t.service_recovery
        add(
            "service_recovery",
            rule,
            f"Service recovery: {CONTACT[o.preferred_channel].lower()} about their feedback",
            priority="high" if o.value_tier in rule.priority_tiers else None,
        )
    if o.dq_fields:
        add(
            "data_remediation",
            t.data_remediation,
            f"Complete or correct customer data ({len(o.dq_fields)} field(s))",
            dq_fields=o.dq_fields,
        )
    return out


def task_candidates(
    policy: Policy,
    *,
    sanctioned: BoolArray,
    aml_risk: IntArray,
    credit_risk: IntArray,
    open_complaints: FloatArray,
    upgraded_from: IntArray,
    value_tier: IntArray,
    needs_tier: IntArray,
    kind: IntArray,
    detractor: BoolArray,
    dq: BoolArray,
) -> BoolArray:
    """Which customers of a batch ``tasks`` may give a task, column-wise (codes as
    ``Evaluation`` has them; ``kind``: the input's, -1 missing, -2 unknown): any rule's
    trigger, without what only withholds a task (a disabled rule, a marketing opt-out, AML
    holding sales tasks back, an owner already assigned). A superset of the customers
    ``tasks`` gives one (tests/core hold it to ``tasks`` customer by customer), so a
    batch's writer asks ``tasks`` for these alone: 41 % of a generated book, against
    the 33 % who get a task (docs/operations.md). A trigger added to ``tasks`` is added
    here: tests/core/test_core_task_candidates.py tries every value of every field
    ``tasks`` reads and fails on a customer given a task who is not a candidate."""
    corporate = among(kind, CUSTOMER_KINDS, ("corporate",))  # written exactly so
    candidates: BoolArray = (
        sanctioned
        | among(aml_risk, AML_LEVELS, ("high", "prohibited"))
        | (credit_risk == RISK_LEVELS.index("high"))
        | (open_complaints > 0)
        | (upgraded_from >= 0)
        | among(value_tier, VALUE_TIERS, policy.strategy.tasks.dedicated_advisor.tiers)
        | corporate
        | ((needs_tier == NEEDS_TIERS.index("professional")) & ~corporate)
        | detractor
        | dq
    )
    return candidates


def campaigns(customer_id: str, keys: tuple[str, ...], member: Sequence[bool]) -> list[Action]:
    """One campaign action per campaign key, member or not (``rules.campaigns`` decides
    membership for the whole batch). Its dedupe key is ``dedupe_key(customer_id,
    "campaign", key)``: the customer's part hashed once and copied per campaign (as
    ``campaign_digests`` does), the first 32 hex digits read straight from the hash, with
    each action made in the same pass: 15 % less than the keys made first and the actions
    zipped from them (ten campaigns a customer, every customer of a sync that writes
    memberships; bench/core.py)."""
    prefix = sha256(f"{customer_id}\x1fcampaign\x1f".encode())
    out = []
    for key, encoded, m in zip(keys, _encoded(keys), member, strict=True):
        h = prefix.copy()
        h.update(encoded)
        out.append(
            {"kind": "campaign", "campaign": key, "member": m, "dedupe_key": h.hexdigest()[:32]}
        )
    return out


def campaign_digests(customer_id: str, keys: tuple[str, ...]) -> list[bytes]:
    """The campaign dedupe keys as ASCII bytes (what ``crmtier tier``'s lines splice in:
    ``tiering_core.lines``): the customer's part is hashed once and
    copied per campaign, 40% cheaper than hashing each whole key (ten campaigns a
    customer); the first 16 bytes of the digest in hex are the first 32 hex digits."""
    prefix = sha256(f"{customer_id}\x1fcampaign\x1f".encode())
    out = []
    for encoded in _encoded(keys):
        h = prefix.copy()
        h.update(encoded)
        out.append(hexlify(h.digest()[:16]))
    return out


@lru_cache(maxsize=8)
def _encoded(keys: tuple[str, ...]) -> tuple[bytes, ...]:
    return tuple(key.encode("utf-8") for key in keys)
