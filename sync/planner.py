"""The write-back planner: the fewest CRM writes that make the CRM show an assessment.

Inputs are the assessment's desired field values and what it asks of the CRM besides
(``tiering_core.wants.Wants``: its task actions and campaign memberships, read from a
batch's decision columns or from a whole ``AssessmentData``), the CRM's present write-back
values (``CrmRecord.current``) and what crmtier itself already made or has queued (tasks
by dedupe key, campaign memberships). Output is a ``CustomerPlan``: only fields whose value differs
from the CRM's, only tasks not yet made, only membership changes that change something. An
unchanged customer plans nothing; so does a customer whose record comes back because of
our own write (its CRM values now equal the assessment's). A campaign or task queue the
config switched off (``= false``) is not planned; one it never named is an error, never a
silent skip. What a restricted customer must lose is withdrawn whatever the switches: its
open sales tasks crmtier made are closed even with ``tasks = false``, and its memberships
crmtier made are removed even with ``campaign_memberships = false`` (``closures_of``,
``withdrawn_memberships``): a switch stops crmtier making more, never undoing what it made
(the start-up gate, ``sync.write_readiness``, checks what that needs while the store holds
any).

Pure functions, no I/O: a run's pages (the webhook worker's too) are planned with
``plan_wants``; ``plan_customer`` plans a whole decision (``crmtier explain``, the
simulation).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from sync.explanation import EXPLANATION, explanation_text
from sync.written_values import changed_fields, same_value
from tiering_core.models import ActionKind, AssessmentData, TaskAction
from tiering_core.row_reasons import codes_of
from tiering_core.wants import Wants, wants_of

TIER_FIELDS = ("value_tier", "needs_tier", "credit_risk", "aml_risk", "ops_risk", "status")


@dataclass(frozen=True)
class Membership:
    campaign: str
    member: bool
    dedupe_key: str


@dataclass(frozen=True)
class Known:
    """What crmtier has made for one customer (committed), and what it cannot know."""

    tasks: frozenset[str] = frozenset()  # dedupe keys
    # Dedupe key -> rule of the open tasks crmtier made (tasks made before the store kept
    # their rule are absent: nothing says what they were for).
    task_rules: Mapping[str, str] = field(default_factory=dict)
    memberships: Mapping[str, str] = field(default_factory=dict)  # active campaign -> key
    # Campaign -> key of memberships a write of ours may have changed without our seeing
    # the answer (a dead run's, one in flight, one a call of which went unanswered). Their
    # wanted state is planned explicitly, add or remove, both idempotent.
    in_doubt: Mapping[str, str] = field(default_factory=dict)
    # Dedupe key -> rule of tasks such a write may have made (not on record as made): this
    # run's, and those whose call went unanswered before (``side_effects.in_doubt``). A
    # restricted customer's sales tasks among them are closed like recorded ones
    # (``closures_of``); closing one the CRM never received creates nothing (the
    # connectors' task closure).
    tasks_in_doubt: Mapping[str, str] = field(default_factory=dict)

    @property
    def holds(self) -> bool:
        """Whether crmtier made, or may have made, a task or membership a sanctions hit
        withdraws (``closures_of``, ``withdrawn_memberships``) for this customer."""
        return bool(self.task_rules or self.tasks_in_doubt or self.memberships or self.in_doubt)


_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})


class Doubt(NamedTuple):
    """A customer's outstanding writes that may have reached the CRM without our seeing
    the answer (``sync.dispatch.Dispatcher.in_doubt``), as ``Known`` takes them; and the
    field values a field write of them carries (``countered``)."""

    memberships: dict[str, str]  # campaign -> key
    tasks: dict[str, str]  # task dedupe key -> rule
    fields: Mapping[str, Any] = _NO_FIELDS  # field -> value sent (the newest write's)


@dataclass(frozen=True)
class TaskClosure:
    """An open task crmtier made that is to be closed (withdrawn) in the CRM. ``in_doubt``:
    a task whose making was never answered (``Known.tasks_in_doubt``): the CRM may not hold
    it, and the closure's audit row says so."""

    rule: str
    dedupe_key: str
    in_doubt: bool = False


#: Task rules whose open tasks a sanctions hit (or a prohibited AML rating) withdraws: the
#: relationship-building and retention work of docs/policy.md. Compliance (sanctions, EDD),
#: complaint, credit and data-remediation tasks stay: the bank still owes that work.
SALES_TASK_RULES = frozenset(
    {
        "upgrade_call",
        "dedicated_advisor",
        "corporate_banking",
        "investment_advisory",
        "service_recovery",
    }
)
#: The reason code of a sanctions screening hit (tiering_core/reasons.py).
SANCTIONS_REASON = "AML_SANCTIONS"


@dataclass(frozen=True)
class CustomerPlan:
    customer_id: str
    fields: Mapping[str, Any] = field(default_factory=dict)
    tasks: tuple[TaskAction, ...] = ()
    memberships: tuple[Membership, ...] = ()
    closures: tuple[TaskClosure, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.fields or self.tasks or self.memberships or self.closures)

    def __len__(self) -> int:
        return (
            (1 if self.fields else 0) + len(self.tasks) + len(self.memberships) + len(self.closures)
        )


#: The stored tiers' household keys (the report's household tables read them): the
#: member's best household's tier (``none``: in no rated household) and whether that lifted
#: the member's own value tier (``HOUSEHOLD_AUM``). Present only when households were read.
HOUSEHOLD_TIER, HOUSEHOLD_LIFT = "household_tier", "household_lift"
NO_HOUSEHOLD = "none"
#: The stored tiers' keys of what the customer's own data earns and its downgrade clock
#: (ISO day), kept only while a tier override makes them differ from the written value
#: tier and ``below_floor_since``: the next decision's ``previous`` (``CustomerState``).
QUALIFIED_TIER, QUALIFIED_SINCE = "qualified_value_tier", "qualified_below_floor_since"


def tiers_of(assessment: AssessmentData) -> dict[str, str]:
    """The tier codes the state store keeps per customer (and the audit trail compares)."""
    tiers = {name: str(assessment[name]) for name in TIER_FIELDS}  # type: ignore[literal-required]
    if "household_tier" in assessment:
        tiers[HOUSEHOLD_TIER] = assessment["household_tier"] or NO_HOUSEHOLD
        lifted = "HOUSEHOLD_AUM" in codes_of(assessment["reasons"])
        tiers[HOUSEHOLD_LIFT] = "yes" if lifted else "no"
    if "qualified_value_tier" in assessment:
        tiers[QUALIFIED_TIER] = assessment["qualified_value_tier"]
        since = assessment.get("qualified_below_floor_since")
        if since is not None:
            tiers[QUALIFIED_SINCE] = since.isoformat()
    return tiers


def action_kinds(writeback: WritebackConfig) -> frozenset[ActionKind]:
    """The action kinds ``plan_customer`` can use under ``writeback``: all an engine need
    derive for it (tier fields always; tasks and campaigns when written back)."""
    kinds: set[ActionKind] = {"set_field"}
    if writeback.tasks:
        kinds.add("task")
    if writeback.campaign_memberships:
        kinds.add("campaign")
    return frozenset(kinds)


def field_values(assessment: AssessmentData) -> dict[str, Any]:
    """The engine's ``set_field`` values of a whole decision, by field, in action order
    (what ``DecisionColumns.field_values`` reads from the columns)."""
    return {
        action["field"]: action["value"]
        for action in assessment["actions"]
        if action["kind"] == "set_field"
    }


def desired_fields(
    assessment: AssessmentData,
    writeback: WritebackConfig,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The write-back field values the assessment means the CRM to show, whether or not the
    CRM shows them already: the engine's ``set_field`` values, and the explanation when
    mapped (made here from the assessment: ``sync.explanation``, which reads no action).
    ``values``: those of the mapped fields only, when the caller has them from the columns
    (``Decided.field_rows``); else they are read from the actions. The result is a dict of
    its own: ``values`` is copied (a C-level copy, not a filter), never changed."""
    fields = writeback.fields
    if values is None:
        out = {name: value for name, value in field_values(assessment).items() if name in fields}
    else:
        out = dict(values)
    if EXPLANATION in fields:
        out[EXPLANATION] = explanation_text(assessment, writeback)
    return out


def fields_only(writeback: WritebackConfig) -> bool:
    """Whether ``writeback`` makes no task or membership: then the plan of a customer
    crmtier holds nothing of (``Known.holds``) is its changed fields, and ``plan_customer``
    would read nothing else of the assessment."""
    return not writeback.tasks and not writeback.campaign_memberships


def plan_customer(
    assessment: AssessmentData,
    current: Mapping[str, Any],
    known: Known,
    writeback: WritebackConfig,
    *,
    desired: Mapping[str, Any] | None = None,
) -> CustomerPlan:
    """The plan of a whole decision (``plan_wants`` of its ``wants_of``). ``desired``:
    the assessment's ``desired_fields`` under ``writeback``, when the caller has them
    already."""
    if desired is None:
        desired = desired_fields(assessment, writeback)
    return plan_wants(wants_of(assessment), current, known, writeback, desired)


def plan_wants(
    wants: Wants,
    current: Mapping[str, Any],
    known: Known,
    writeback: WritebackConfig,
    desired: Mapping[str, Any],
) -> CustomerPlan:
    """The plan of a decision's ``desired`` field values and its ``wants`` (a batch's
    decision columns give them without a decision dict: ``DecisionColumns.wants``). The
    plan's tasks are validated into ``TaskAction`` here: only the few planned ones, which
    the outbox and the connectors carry on."""
    fields = changed_fields(desired, current)
    tasks: list[TaskAction] = []
    if writeback.tasks:
        for action in wants.tasks:
            if action["dedupe_key"] not in known.tasks and _targeted(
                writeback, "queues", action["queue"]
            ):
                tasks.append(TaskAction.model_validate(action))
    return CustomerPlan(
        wants.id,
        fields,
        tuple(tasks),
        (
            _memberships(wants, known, writeback)
            if writeback.campaign_memberships
            else withdrawn_memberships(wants, known, writeback)
        ),
        closures_of(wants, known),
    )


def countered(
    plan: CustomerPlan, desired: Mapping[str, Any], sent: Mapping[str, Any]
) -> CustomerPlan:
    """``plan`` with the desired value of each field a write on its way (``sent``:
    ``Doubt.fields``) sets to another value, though the CRM as read shows the desired one:
    read before that write landed, the plan would leave the CRM showing the older value
    once it does (its customer's tier moved and moved back within one run). The newer
    write goes out after that write's answer: a customer's writes never overtake its writes
    in flight (``sync.writepool``)."""
    extra = {
        name: desired[name]
        for name, value in sent.items()
        if name in desired and name not in plan.fields and not same_value(desired[name], value)
    }
    return replace(plan, fields={**plan.fields, **extra}) if extra else plan


def _memberships(wants: Wants, known: Known, writeback: WritebackConfig) -> tuple[Membership, ...]:
    """The membership changes that make the CRM show ``wants``: each campaign it is a
    member of that crmtier has not made (or may have made: ``in_doubt``), added; each one
    crmtier made or may have made that it is no longer a member of, removed. A campaign
    given ``add = false`` (``WritebackConfig.remove_only``) has its removals, never an add."""
    mapped = writeback.campaigns  # looked up before ``_targeted``
    if not all(map(mapped.__contains__, wants.campaigns)):  # most configs map them all
        for campaign in wants.campaigns:  # each named must be mapped or switched off
            if campaign not in mapped:
                _targeted(writeback, "campaigns", campaign)
    members = {
        campaign: key
        for campaign, key in wants.members.items()
        if campaign in mapped or _targeted(writeback, "campaigns", campaign)
    }
    memberships = [
        Membership(campaign, True, key)
        for campaign, key in sorted(members.items())
        if (campaign not in known.memberships or campaign in known.in_doubt)
        and writeback.adds_to(campaign)  # not ``add = false``: removals only
    ]
    # a customer with no membership crmtier made or may have made (most) leaves none
    if known.memberships or known.in_doubt:
        maybe_member = {**known.memberships, **known.in_doubt}
        memberships += [
            Membership(campaign, False, dedupe_key)
            for campaign, dedupe_key in sorted(maybe_member.items())
            if campaign not in members and _targeted(writeback, "campaigns", campaign)
        ]
    return tuple(memberships)


def restricted(wants: Wants) -> bool:
    """Whether the bank must withdraw sales work from this customer now: a sanctions hit
    (whatever level a waiver rates it) or a prohibited AML rating."""
    return wants.aml_risk == "prohibited" or SANCTIONS_REASON in wants.codes


def withdrawn_memberships(
    wants: Wants, known: Known, writeback: WritebackConfig
) -> tuple[Membership, ...]:
    """With ``campaign_memberships = false``: a restricted customer's memberships crmtier
    made or may have made, removed all the same (docs/policy.md: a sanctions hit removes
    every campaign membership crmtier made), in each campaign the config still maps; none
    for anyone else, and nothing added. A campaign switched off (``= false``) has no CRM
    id to remove a member from, nor one the config never named: either refuses the start
    while the store holds members crmtier made in it (``sync.write_readiness``)."""
    if not (known.memberships or known.in_doubt) or not restricted(wants):
        return ()
    mapped = writeback.campaigns
    maybe_member = {**known.memberships, **known.in_doubt}
    return tuple(
        Membership(campaign, False, key)
        for campaign, key in sorted(maybe_member.items())
        if campaign in mapped and campaign not in wants.members
    )


def closures_of(wants: Wants, known: Known) -> tuple[TaskClosure, ...]:
    """The open sales tasks crmtier made, or may have made (``Known.tasks_in_doubt``: a
    write whose answer was never seen), for a restricted customer, to close in the same run
    as its sanctions review is created. Whether or not tasks are written back now: with
    ``tasks = false`` the tasks made while they were on (or left in doubt) are closed all
    the same, so no relationship manager keeps working a customer the bank must restrict.
    A customer with no such task (most) has none: its reasons are not read."""
    if not (known.task_rules or known.tasks_in_doubt):
        return ()
    if not restricted(wants):
        return ()
    wanted = {a["dedupe_key"] for a in wants.tasks}
    made = {key: rule for key, rule in known.task_rules.items() if key in known.tasks}
    return tuple(
        TaskClosure(rule, key, key not in made)
        for key, rule in sorted({**known.tasks_in_doubt, **made}.items())
        if rule in SALES_TASK_RULES and key not in wanted
    )


def _targeted(writeback: WritebackConfig, table: str, key: str | None) -> bool:
    """Whether a campaign or a task's queue is written: True when mapped (or a task has no
    queue: it goes to its owner), False when the admin switched it off. Anything else is a
    key the config never named; the config check at load refuses that, so meeting one here
    is a caller's bug, raised rather than skipped in silence."""
    if key is None or key in getattr(writeback, table):
        return True
    if writeback.is_off(table, key):
        return False
    raise ConfigError(
        f"[writeback.{table}] {key}: the policy produced it but the config names no CRM "
        "target; map it, or switch it off with false"
    )
