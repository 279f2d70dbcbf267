"""Why a customer has its tiers: the content of ``crmtier explain``.

A customer may ask a bank to explain a decision made by automated means (PIPL Art. 24),
and an examiner asks the same of any tier. The explanation is rebuilt from what the
decision rested on: the inputs the sync stored when it assessed the customer
(``sync.inputs``), the committed state that fed hysteresis, and the active policy, decided
again by the same engine and planned by the same planner the sync uses. With households
on, the customer is decided beside the other members of its households as the store
recorded them (``sync.household_store``); the ``HOUSEHOLD_AUM`` reason names the
household, never another member's amounts. Nothing here re-implements a rule: each fired
rule is the engine's own reason with its threshold; a policy key is looked up for it in
``crmtier.explain_labels.POLICY_KEYS``.

Restricted parts (the AML rating, AML reasons and inputs, the EDD task) are left out
unless asked for, as every listing does (``sync.disclosure``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from connectors.mapping import FieldMapping, WritebackConfig
from crmtier.explain_labels import TASK_WHEN, label, policy_key
from sync.disclosure import Disclosure
from sync.explanation import EXPLANATION, explanation_text
from sync.inputs import StoredCustomer
from sync.planner import Known, plan_customer, tiers_of
from tiering_core.engine import decide, decide_batch
from tiering_core.models import Previous
from tiering_core.policy import Policy
from tiering_core.rules.household import HouseholdLinks, Link


@dataclass(frozen=True)
class Beside:
    """The other members of the customer's households and the links among them, as the
    state store recorded them (``sync.household_store``): what deciding the customer as
    the sync does needs. Their inputs only feed the household's sum; the explanation
    names the household, never another member or its amounts."""

    members: list[StoredCustomer] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


@dataclass(frozen=True)
class ExplainContext:
    policy: Policy
    mapping: FieldMapping
    writeback: WritebackConfig
    disclosure: Disclosure
    lang: str


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        out: list[tuple[str, Any]] = []
        for key, value in node.items():
            out += _leaves(value, f"{prefix}{key}.")
        return out
    return [(prefix[:-1], node)]


def _restricted_path(path: str) -> bool:
    return path.startswith("aml.")


def _decide(stored: StoredCustomer, beside: Beside, policy: Policy, as_of: date) -> Any:
    """The customer's decision, beside its households' other members when the policy
    reads households (as the sync decides it), alone otherwise."""
    if not policy.households.enabled:
        return decide(stored.assessed(), policy, as_of)
    batch = [stored, *(m for m in beside.members if m.customer_id != stored.customer_id)]
    links = HouseholdLinks.build([c.customer_id for c in batch], beside.links, policy)
    return decide_batch([c.assessed() for c in batch], policy, as_of, households=links)[0]


def explain(
    stored: StoredCustomer,
    known: Known,
    ctx: ExplainContext,
    as_of: date,
    beside: Beside | None = None,
) -> dict[str, Any]:
    """The explanation as JSON-ready data, restricted parts left out unless disclosed.
    ``beside``: the customer's households (none: it is in none, or households are off)."""
    d = ctx.disclosure
    beside = beside or Beside()
    assessment = _decide(stored, beside, ctx.policy, as_of)
    plan = plan_customer(assessment, stored.crm_values(), known, ctx.writeback)
    crm_field = {path: f for path, f in ctx.mapping.fields.items()}
    inputs = [
        {"input": path, "value": value, "crm_field": crm_field.get(path)}
        for path, value in _leaves(stored.profile.model_dump(mode="json", exclude_none=True))
        if path != "id" and (d.show or not _restricted_path(path))
    ]
    rules = [
        {
            "code": r["code"],
            "dimension": r["dimension"],
            "factor": r["factor"],
            "value": r["value"],
            "threshold": r["threshold"],
            "policy_key": policy_key(r["code"]),
            "text": dict(r["text"])[ctx.lang if ctx.lang in ("en", "zh") else "en"],
        }
        for r in assessment["reasons"]
        if d.show or r["dimension"] != "aml"
    ]
    tiers = d.mapping(tiers_of(assessment))
    committed = d.mapping(dict(stored.state.tiers or {}))
    out: dict[str, Any] = {
        "customer": {"crm_id": stored.customer_id, "pseudonym": stored.pseudonym},
        "policy_version": assessment["policy_version"],
        "as_of": as_of.isoformat(),
        "tiers": tiers,
        "service_level": d.value("service_level", assessment["service_level"]),
        "committed_tiers": committed,
        "inputs": inputs,
        "rules": rules,
        "hysteresis": _hysteresis(stored, assessment, ctx.policy, as_of),
        "tasks": _tasks(assessment, plan, known, ctx),
        "campaigns": _campaigns(assessment, plan, known, stored.profile.kind, ctx),
        "restricted_shown": d.show,
    }
    if ctx.policy.households.enabled:  # its own memberships: no other member is named
        out["households"] = [
            {"household": lk.household_id, "role": lk.role}
            for lk in beside.links
            if lk.customer_id == stored.customer_id
        ]
    if EXPLANATION in ctx.writeback.fields:  # what the sync writes to that CRM field
        out["crm_explanation"] = d.value(EXPLANATION, explanation_text(assessment, ctx.writeback))
    if committed and committed != {k: tiers.get(k) for k in committed}:
        out["note"] = label("stored_differs", ctx.lang)
    return out


def _hysteresis(
    stored: StoredCustomer, assessment: Any, policy: Policy, as_of: date
) -> dict[str, Any]:
    previous = stored.state.previous()
    below = assessment["below_floor_since"]
    grace = policy.value.grace_days
    return {
        "previous_value_tier": previous.value_tier if previous else None,
        "previous_assessed_at": (
            previous.assessed_at.isoformat() if previous and previous.assessed_at else None
        ),
        "below_floor_since": below.isoformat() if below else None,
        "downgrade_due": _due(below, grace),
        **_qualified(previous, assessment, grace),
        "buffer": policy.value.buffer,
        "grace_days": grace,
    }


def _qualified(previous: Previous | None, assessment: Any, grace: int) -> dict[str, Any]:
    """What the customer's own data earns, where a tier override keeps it apart from the
    value tier (docs/overrides.md, "What an override changes"): the tier an examiner asks
    for ("what would the customer be without the override"), which needs and channel
    follow, with its own downgrade clock. Nothing where neither the committed state nor
    this decision keeps one apart; where only the committed state does, the two agree
    again from this decision on (the value tier's clock is the qualified one's)."""
    carried = previous.qualified_value_tier if previous else None
    if carried is None and "qualified_value_tier" not in assessment:
        return {}
    if "qualified_value_tier" in assessment:
        tier, since = assessment["qualified_value_tier"], assessment["qualified_below_floor_since"]
    else:
        tier, since = assessment["value_tier"], assessment["below_floor_since"]
    return {
        "previous_qualified_tier": carried,
        "qualified_value_tier": tier,
        "qualified_below_floor_since": since.isoformat() if since else None,
        "qualified_downgrade_due": _due(since, grace),
    }


def _due(since: date | None, grace: int) -> str | None:
    """The day a downgrade falls due on a clock started ``since`` (None: no clock)."""
    return (since + timedelta(days=grace)).isoformat() if since else None


def _tasks(assessment: Any, plan: Any, known: Known, ctx: ExplainContext) -> list[dict[str, Any]]:
    lang, d = ctx.lang, ctx.disclosure
    fired = {a["rule"]: a for a in assessment["actions"] if a["kind"] == "task"}
    planned = {t.dedupe_key for t in plan.tasks}
    closing = {c.rule for c in plan.closures}
    rules = ctx.policy.strategy.tasks.model_dump()
    out = []
    for rule in sorted(rules):
        if d.hides_rule(rule):
            continue
        action = fired.get(rule)
        if action is None:
            when = TASK_WHEN.get(rule, (rule, rule))[1 if lang == "zh" else 0]
            status = "disabled" if not rules[rule].get("enabled", True) else "not_fired"
            why = label(status, lang, when=when)
        elif not ctx.writeback.tasks:
            why = label("not_written", lang)
        elif action["dedupe_key"] in planned:
            why = label("created", lang)
        elif action["dedupe_key"] in known.tasks:
            why = label("made", lang)
        else:
            why = label("not_written", lang)
        if rule in closing:
            why = label("closes", lang)
        out.append(
            {
                "rule": rule,
                "policy_key": f"strategy.tasks.{rule}",
                "fired": action is not None,
                "why": why,
            }
        )
    return out


def _campaigns(
    assessment: Any, plan: Any, known: Known, kind: str | None, ctx: ExplainContext
) -> list[dict[str, Any]]:
    """Each campaign of the policy and what the next sync does about the customer in it.
    A customer who qualifies but whom crmtier will not add (``WritebackConfig.adds_to``:
    the campaign given ``add = false``, or memberships off) is said to stay out, and why,
    unless crmtier made (or may have made) the membership already: it stays a member."""
    lang, writeback = ctx.lang, ctx.writeback
    changes = {m.campaign: m.member for m in plan.memberships}
    held = {*known.memberships, *known.in_doubt}
    out = []
    for action in assessment["actions"]:
        if action["kind"] != "campaign":
            continue
        key = action["campaign"]
        c = ctx.policy.strategy.campaigns[key]
        if key not in writeback.campaigns:
            why = label("not_mapped", lang)
        elif key in changes:
            why = label("joins" if changes[key] else "leaves", lang)
        elif action["member"] and key not in held and not writeback.adds_to(key):
            why = label("no_adds" if writeback.campaign_memberships else "memberships_off", lang)
        elif action["member"]:
            why = label("member", lang)
        else:
            why = label("not_member", lang, why="; ".join(_unmet(c, kind, assessment, ctx)))
        out.append(
            {
                "campaign": key,
                "policy_key": f"strategy.campaigns.{key}",
                "member": bool(action["member"]),
                "why": why,
            }
        )
    return out


def _unmet(c: Any, kind: str | None, assessment: Any, ctx: ExplainContext) -> list[str]:
    """Each campaign criterion the customer misses, and each risk rule that keeps it out
    (an AML one named only when restricted values are shown)."""
    risk = ctx.policy.strategy.risk
    out = [
        f"{name} {value} not in {list(allowed)}"
        for name, value, allowed in (
            ("value tier", assessment["value_tier"], c.tiers),
            ("needs", assessment["needs_tier"], c.needs),
            ("kind", kind, c.kinds),
            ("credit risk", assessment["credit_risk"], c.credit),
        )
        if allowed and value not in allowed
    ]
    aml = assessment["aml_risk"]
    if aml in risk.no_campaigns_aml or (c.marketing and aml in risk.no_marketing_aml):
        out.append(
            "AML risk keeps it out (strategy.risk)"
            if ctx.disclosure.show
            else "a restricted rating keeps it out"
        )
    if c.credit_product and assessment["credit_risk"] in risk.no_credit_products_credit:
        out.append("credit risk keeps credit products out (strategy.risk)")
    return out
