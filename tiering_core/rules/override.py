"""Tier overrides with maker-checker and expiry: the one step that may set a tier against
the computed one, and only upwards.

A relationship manager (the maker) proposes a value tier or a service tier in the CRM with
a reason and an expiry; a second user (the checker) approves it; the CRM's own audit (field
history, timeline, approval flow: docs/overrides.md) says who did each, and the sync layer
fills ``CustomerProfile.override`` from it. This step runs after every computed tier and
is column-wise like the rules: one numpy pass over the batch, nothing per customer.

It may only *lift* a value or service tier (``[overrides] lift``). It never reads or
writes credit or AML risk, so an override cannot lower either; and it never lifts a
sanctioned or AML-prohibited customer: those stay compliance's (FATF Recommendation 6;
FFIEC BSA/AML manual, "approving changes to a customer's risk profile"). An approved
override that breaks a rule is refused, with one cause, and the maker gets a task saying
which (``refusal_tasks``); one not yet approved is pending and changes nothing.

While an override holds, the value rule's grace clock stands still (``below_floor_since``
is cleared), so when it expires the customer falls back to the computed tier through the
usual buffer and grace (``rules/value.py``), counted from the expiry, not from the day the
override began.

Needs and channel never read the tier it gives: they follow the tier the customer's own
data earns, hysteresis against the last such tier (``engine.qualified``), which the
decision carries apart while an override makes it differ (``Previous.qualified_value_tier``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from tiering_core.columns import MISSING, UNKNOWN, BoolArray, Columns, FloatArray
from tiering_core.dates import period_label
from tiering_core.models import ActionKind
from tiering_core.policy import Policy
from tiering_core.rules.base import (
    AML_LEVELS,
    FIRST_CORPORATE_TIER,
    UNRATED_TIER,
    VALUE_TIERS,
    IntArray,
    ReasonColumn,
)
from tiering_core.rules.strategy import dedupe_key

if TYPE_CHECKING:  # the engine imports this module; only its type is needed here
    from tiering_core.engine import Evaluation

ObjectArray = npt.NDArray[np.object_]

#: Why an approved override is refused, checked in this order (the first that applies is
#: the one reported), each as one line in English and Chinese for the maker's task.
CAUSES: dict[str, tuple[str, str]] = {
    "compliance": (
        "the customer is sanctioned or AML-prohibited: only compliance may change the tier",
        "客户命中制裁或反洗钱禁止类：等级仅由合规部门处理",
    ),
    "not_allowed": (
        "the policy does not allow overriding this tier ([overrides] lift)",
        "政策不允许调整该等级（[overrides] lift）",
    ),
    "unknown_tier": ("the proposed tier is not a tier crmtier knows", "申请的等级无效"),
    "no_maker": (
        "the CRM's audit does not show who proposed it",
        "CRM 审计记录未显示申请人",
    ),
    "no_checker": (
        "the CRM's audit does not show a checker who approved it",
        "CRM 审计记录未显示批准的复核人",
    ),
    "self_approved": (
        "the maker approved it; a second person with the checker role must",
        "申请人自行批准；须由另一名复核人批准",
    ),
    "no_expiry": ("it has no expiry date", "未设到期日"),
    "too_long": (
        "it runs longer than the policy allows ([overrides] max_days)",
        "有效期超过政策上限（[overrides] max_days）",
    ),
    "expired": ("it has expired; the computed tier applies again", "已到期，恢复计算等级"),
    "not_a_lift": (
        "it does not lift the computed tier; overrides may only lift",
        "未高于计算等级；调整只可上调",
    ),
}
CAUSE_NAMES: tuple[str, ...] = tuple(CAUSES)
#: The reason of an applied service-tier override: its value is the tier whose service
#: level the customer gets (``decisions.decided`` reads it from the reason cells).
SERVICE_REASON = "MANUAL_OVERRIDE_SERVICE"
#: The reason a refused override gives (its value the cause): the one its task reads.
REFUSAL_REASON = "OVERRIDE_REFUSED"
#: Reasons of the value rule's hysteresis that an applied override makes moot.
_HELD = frozenset({"VAL_HELD_BUFFER", "VAL_HELD_GRACE", "VAL_DOWNGRADE"})
#: Those of them that hold a tier above the one the customer qualifies for.
_HOLDS = _HELD - {"VAL_DOWNGRADE"}
_TIER_CODES: dict[str, int] = {tier: code for code, tier in enumerate(VALUE_TIERS)}
_PROHIBITED = AML_LEVELS.index("prohibited")


@dataclass(frozen=True)
class OverrideColumns:
    """The override inputs of a batch, column-wise (tier codes index ``VALUE_TIERS``;
    ``MISSING`` none asked, ``UNKNOWN`` a value that is no tier; dates as ordinals)."""

    present: BoolArray  # an override asks for a value or a service tier
    value: IntArray
    service: IntArray
    approved: BoolArray
    expires: FloatArray  # NaN: none
    approved_on: FloatArray  # the day of the approval; NaN: not known
    maker: BoolArray  # the CRM's audit names a maker
    checker: BoolArray  # ... and a checker
    same_user: BoolArray  # maker and checker are one user
    sanctioned: BoolArray
    expires_text: ObjectArray  # ISO expiry per row ("" none): what the reasons show

    @classmethod
    def of(cls, cols: Columns) -> OverrideColumns | None:
        """The columns of ``cols``' overrides, or None when no customer of the batch has
        one (most batches: ``Columns`` then holds no override cells at all)."""
        cells = cols.overrides
        if not cells:
            return None
        out = _empty(cols.n)
        rows = zip(*(cells[f"override.{name}"] for name in _CELLS), strict=True)
        for i, row in enumerate(rows):
            if any(x is not None for x in row):
                _fill(out, i, dict(zip(_CELLS, row, strict=True)))
        out["sanctioned"] = cols.flag["sanctions_hit"] == 1
        return cls(**out)


#: The override cells the step reads, by field name.
_CELLS = (
    "value_tier",
    "service_tier",
    "expires",
    "approved",
    "maker_id",
    "checker_id",
    "approved_at",
)


def _empty(n: int) -> dict[str, Any]:
    return {
        "present": np.zeros(n, dtype=np.bool_),
        "value": np.full(n, MISSING, dtype=np.int8),
        "service": np.full(n, MISSING, dtype=np.int8),
        "approved": np.zeros(n, dtype=np.bool_),
        "expires": np.full(n, np.nan),
        "approved_on": np.full(n, np.nan),
        "maker": np.zeros(n, dtype=np.bool_),
        "checker": np.zeros(n, dtype=np.bool_),
        "same_user": np.zeros(n, dtype=np.bool_),
        "expires_text": np.full(n, "", dtype=object),
    }


def _code(tier: str | None) -> int:
    return MISSING if tier is None else _TIER_CODES.get(tier, UNKNOWN)


def _fill(cols: dict[str, Any], i: int, o: dict[str, Any]) -> None:
    cols["value"][i] = _code(o["value_tier"])
    cols["service"][i] = _code(o["service_tier"])
    cols["present"][i] = o["value_tier"] is not None or o["service_tier"] is not None
    cols["approved"][i] = o["approved"] is True
    if o["expires"] is not None:
        cols["expires"][i] = o["expires"].toordinal()
        cols["expires_text"][i] = o["expires"].isoformat()
    if o["approved_at"] is not None:
        cols["approved_on"][i] = o["approved_at"].date().toordinal()
    maker, checker = o["maker_id"], o["checker_id"]
    cols["maker"][i] = bool(maker)
    cols["checker"][i] = bool(checker)
    cols["same_user"][i] = bool(maker) and maker == checker


@dataclass(frozen=True)
class Verdict:
    """What the step decided, per row: the tiers it gives where it applies, and the index
    into ``CAUSE_NAMES`` of a refusal (-1: not refused, i.e. none, pending or applied)."""

    value_tier: IntArray
    value_applied: BoolArray
    service_applied: BoolArray
    cause: IntArray


def _same_ladder(a: IntArray, b: IntArray) -> BoolArray:
    """Both retail tiers or both corporate ones (unrated is on neither ladder)."""
    retail = (a < UNRATED_TIER) & (b < UNRATED_TIER) & (a >= 0) & (b >= 0)
    corporate = (a >= FIRST_CORPORATE_TIER) & (b >= FIRST_CORPORATE_TIER)
    return retail | corporate


def decide(
    oc: OverrideColumns,
    value_tier: IntArray,
    aml_risk: IntArray,
    policy: Policy,
    as_of: date,
    held: BoolArray | None = None,
) -> Verdict:
    """The overrides' verdict on computed value tiers and AML levels: pure, column-wise.

    ``held``: the rows whose ``value_tier`` the value rule's hysteresis holds above the
    tier they qualify for. An override asking for that held tier still lifts: once the
    sync has written the override's tier, it comes back as the previous tier and the
    hysteresis holds the customer there, which must not turn the override moot and start
    the grace clock while it holds (docs/overrides.md, "Expiry")."""
    o = policy.overrides
    asked_value = oc.value != MISSING
    asked_service = oc.service != MISSING
    above = oc.value < value_tier
    if held is not None:
        above = above | (held & (oc.value == value_tier))
    lifts_value = asked_value & _same_ladder(oc.value, value_tier) & above
    base = np.where(lifts_value, oc.value, value_tier)
    lifts_service = asked_service & _same_ladder(oc.service, base) & (oc.service < base)
    lowers = (asked_value & ~lifts_value & (oc.value != value_tier)) | (
        asked_service & ~lifts_service & (oc.service != base)
    )
    today = float(as_of.toordinal())
    since = np.where(np.isnan(oc.approved_on), today, oc.approved_on)
    causes = {
        "compliance": oc.sanctioned | (aml_risk == _PROHIBITED),
        "not_allowed": (asked_value & ("value_tier" not in o.lift))
        | (asked_service & ("service_tier" not in o.lift)),
        "unknown_tier": (oc.value == UNKNOWN)
        | (oc.service == UNKNOWN)
        | (oc.value == UNRATED_TIER)
        | (oc.service == UNRATED_TIER),
        "no_maker": ~oc.maker,
        "no_checker": ~oc.checker,
        "self_approved": oc.same_user,
        "no_expiry": np.isnan(oc.expires),
        "too_long": np.greater(oc.expires - since, o.max_days),
        "expired": np.less(oc.expires, today),
        "not_a_lift": lowers,
    }
    considered = oc.present & oc.approved & o.enabled
    first = np.select(
        [causes[name] for name in CAUSE_NAMES], np.arange(len(CAUSE_NAMES)), default=-1
    )
    cause = cast(IntArray, np.where(considered, first, -1).astype(np.int8))
    ok = considered & (cause < 0)
    value_applied = ok & lifts_value
    return Verdict(
        value_tier=np.where(value_applied, oc.value, value_tier).astype(np.int8),
        value_applied=value_applied,
        service_applied=ok & lifts_service,
        cause=cause,
    )


def apply(ev: Evaluation, cols: Columns, policy: Policy, as_of: date) -> Evaluation:
    """``ev`` with the batch's approved overrides applied and refusals given as reasons;
    ``ev`` itself when no customer has an override. Credit and AML risk pass through."""
    oc = OverrideColumns.of(cols)
    if oc is None:
        return ev
    held = np.zeros(ev.n, dtype=np.bool_)
    for rc in ev.reasons:
        if rc.code in _HOLDS:
            held |= rc.mask
    v = decide(oc, ev.value_tier, ev.aml_risk, policy, as_of, held)
    kept = [_without_held(rc, v.value_applied) for rc in ev.reasons]
    asked = np.where(oc.value != MISSING, oc.value, oc.service)
    # per-row texts for the reasons' thresholds (the engine renders any array's cells)
    asked_text = cast(
        FloatArray,
        np.array([VALUE_TIERS[c] if c >= 0 else "" for c in asked.tolist()], dtype=object),
    )
    expires = cast(FloatArray, oc.expires_text)
    return replace(
        ev,
        value_tier=v.value_tier,
        below_floor_since=np.where(v.value_applied, np.nan, ev.below_floor_since),
        reasons=[
            *kept,
            ReasonColumn(
                "MANUAL_OVERRIDE",
                v.value_applied,
                oc.value,
                expires,
                labels=VALUE_TIERS,
            ),
            ReasonColumn(
                SERVICE_REASON,
                v.service_applied,
                oc.service,
                expires,
                labels=VALUE_TIERS,
            ),
            ReasonColumn(REFUSAL_REASON, v.cause >= 0, v.cause, asked_text, labels=CAUSE_NAMES),
        ],
    )


def _without_held(rc: ReasonColumn, applied: BoolArray) -> ReasonColumn:
    """The value rule's hold/downgrade reasons do not explain an overridden tier."""
    if rc.code in _HELD:
        return replace(rc, mask=rc.mask & ~applied)
    return rc


# --- per customer, when the decision is assembled (engine._decision) ----------------------


def _verdict(cause: str) -> str:
    """How the task names what happened: an expiry ends an override, the rest refuse it."""
    return "ended" if cause == "expired" else "refused"


def row_of(cols: Columns, i: int) -> dict[str, Any] | None:
    """Customer ``i``'s override cells by field name (``value_tier``, ...), or None."""
    if not cols.overrides:
        return None
    row = {k.removeprefix("override."): c[i] for k, c in cols.overrides.items()}
    return row if row.get("value_tier") is not None or row.get("service_tier") else None


#: The rule name of a refused override's task (the last of a decision's actions).
REFUSED_RULE = "override_refused"


def refusal_tasks(
    customer_id: str,
    owner_id: str | None,
    o: Mapping[str, Any],
    reasons: Sequence[dict[str, Any]],
    policy: Policy,
    as_of: date,
    kinds: frozenset[ActionKind],
) -> list[dict[str, Any]]:
    """The task telling the maker why their override (``o``: its cells by field name) was
    refused (none when it was not).

    It goes to the maker the CRM's audit names, else the customer's owner, else the
    rule's queue. Its key is the customer, the override (tiers, expiry, when proposed),
    the cause and the rule's period: a rerun upserts it; a refused override left in the
    CRM is reported again next period; a new proposal is a new task."""
    rule = policy.overrides.refused_task
    if "task" not in kinds or not rule.enabled:
        return []
    refused = next((r for r in reasons if r["code"] == REFUSAL_REASON), None)
    if refused is None:
        return []
    cause = str(refused["value"])
    en, zh = CAUSES[cause]
    owner = o.get("maker_id") or owner_id
    due = as_of + timedelta(days=rule.due_days)
    asked = o.get("value_tier") or f"{o.get('service_tier')} service"
    expires, proposed = o.get("expires"), o.get("proposed_at")
    parts = (
        o.get("value_tier") or "",
        o.get("service_tier") or "",
        expires.isoformat() if expires else "",
        proposed.isoformat() if proposed else "",
    )
    return [
        {
            "kind": "task",
            "rule": REFUSED_RULE,
            "subject": f"Tier override to {asked} {_verdict(cause)}: {en}",
            "priority": rule.priority,
            "due": due,
            "queue": None if owner else rule.queue,
            "owner_id": owner,
            "description": (
                f"Your override to {asked} was not applied: {en}. / 调整未生效：{zh}。"
                f" Reason given: {o.get('reason') or '(none)'}. Due {due.isoformat()}"
                f" ({rule.deadline_source or 'bank policy'})."
            ),
            "dedupe_key": dedupe_key(
                customer_id, REFUSED_RULE, cause, *parts, period_label(as_of, rule.period)
            ),
        }
    ]
