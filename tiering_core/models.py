"""Canonical data of crmtier: what every connector produces and what the engine returns.

The JSON field names here are a public contract (docs/architecture.md): `crmtier tier` reads
`CustomerProfile` as JSON Lines and writes `Assessment` as JSON Lines, and the sync layer
stores and compares them. Every input block and field is optional because CRM data is
incomplete; *missing is not zero*, so the rules must treat ``None`` as "unknown" and say so
with a data-quality issue instead of silently assuming the lowest value.

Enumerated inputs (``kind``, ``loan_class``, ``industry_risk``, ...) are typed as plain
strings on purpose: an unknown enum value coming from a CRM is a data-quality issue that the
rules report, not a validation failure that would drop the whole record. A wrongly *typed*
value (text where a number belongs) still fails validation: the record cannot be read.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic_core import core_schema as cs

# --- vocabularies (the valid values the rules accept; anything else is a DQ issue) -------

CUSTOMER_KINDS = ("individual", "corporate")
LOAN_CLASSES = ("normal", "special_mention", "substandard", "doubtful", "loss")  # 五级分类
LEVELS = ("low", "medium", "high")

ValueTier = Literal[
    "private",
    "wealth",
    "affluent",
    "mass",
    "unrated",
    "corporate_strategic",
    "corporate_key",
    "corporate_standard",
    "corporate_small",
]
NeedsTier = Literal["basic", "advanced", "professional"]
RiskLevel = Literal["low", "medium", "high", "unrated"]
AmlRisk = Literal["low", "medium", "high", "prohibited", "unrated"]
Status = Literal["rated", "partial", "unrated"]
Priority = Literal["high", "normal", "low"]
#: The service channel recommended for a customer (``rules/channel.py``), most personal last.
Channel = Literal["digital", "phone", "branch", "rm_visit"]

#: Value tiers from the top down; the order the rules and hysteresis rely on.
VALUE_TIER_ORDER: tuple[str, ...] = ("private", "wealth", "affluent", "mass")
#: Corporates' own ladder, top down (deposits, credit lines, revenue; never AUM alone).
CORPORATE_TIER_ORDER: tuple[str, ...] = (
    "corporate_strategic",
    "corporate_key",
    "corporate_standard",
    "corporate_small",
)


#: The longest text an input field may hold: CRM ids are 15-24 characters and codes
#: shorter still, so a longer text is an entry or export error, not a value to assess
#: (nor one to echo into outputs and logs).
TEXT_MAX = 255
#: The largest integer an input may hold: the engine computes in float64, which holds every
#: integer up to 2**53 exactly; a longer one is not a count a CRM means.
INTEGER_MAX = 2**53


class _NumberInput:
    """The validation of a numeric input, all in pydantic-core (no Python call per value:
    a profile has some twenty numbers, and a per-value Python validator cost ingest
    about half its speed; this union costs about 10%).

    A JSON number (or a Python int/float) is taken as it is; text is parsed as a number
    (a CSV cell, a CRM export that quotes its numbers); ``true``/``false`` is refused,
    which lax validation would read as 1/0. Integers are bounded by ``INTEGER_MAX`` and
    also take a float with no fractional part (``5.0``). A number that parses but cannot
    be meant (1e308 as a balance) is the data-quality rules' business
    (``rules/quality.py``), not the reader's."""

    def __init__(self, integer: bool) -> None:
        self.integer = integer

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> Any:
        finite = cs.float_schema(strict=True, allow_inf_nan=False)
        if self.integer:
            bounded = cs.int_schema(ge=-INTEGER_MAX, le=INTEGER_MAX)
            choices: list[cs.CoreSchema | tuple[cs.CoreSchema, str]] = [
                cs.int_schema(strict=True, ge=-INTEGER_MAX, le=INTEGER_MAX),
                cs.chain_schema([finite, bounded]),
                cs.chain_schema([cs.str_schema(strict=True), bounded]),
            ]
            message = (
                "Input should be a valid integer (a whole number within ±2**53, or its "
                "text; not true/false)"
            )
        else:
            parsed = cs.float_schema(allow_inf_nan=False)
            choices = [finite, cs.chain_schema([cs.str_schema(strict=True), parsed])]
            message = (
                "Input should be a valid number (a finite number, or its text; not true/false)"
            )
        return cs.union_schema(
            choices,
            custom_error_type="number_type",
            custom_error_message=message,
        )


Number = Annotated[float, _NumberInput(integer=False)]
Integer = Annotated[int, _NumberInput(integer=True)]


class _Input(BaseModel):
    """Base of every input block: immutable, and strict about unknown keys (a typo in a
    column or mapping name should be reported, not silently ignored). NaN and infinity are
    not numbers a CRM can mean: they fail validation like any other wrongly typed value."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", allow_inf_nan=False, str_max_length=TEXT_MAX
    )


class Assets(_Input):
    deposits: Number | None = None
    investments: Number | None = None
    insurance: Number | None = None


class Activity(_Input):
    transactions_90d: Integer | None = None
    digital_logins_90d: Integer | None = None
    branch_transactions_90d: Integer | None = None  # counter transactions in a branch
    products_held: tuple[str, ...] | None = None


class Revenue12m(_Input):
    loan_interest: Number | None = None
    product_fees: Number | None = None
    service_fees: Number | None = None


class Credit(_Input):
    score: Integer | None = None
    debt_to_income: Number | None = None
    days_past_due_max_12m: Integer | None = None
    loan_class: str | None = None  # one of LOAN_CLASSES
    credit_line: float | None = None  # approved credit limit (授信额度): corporate ladder


class Aml(_Input):
    pep: bool | None = None
    sanctions_hit: bool | None = None
    high_risk_countries: tuple[str, ...] | None = None  # ISO 3166-1 alpha-2
    cash_volume_90d: Number | None = None
    cross_border_count_90d: Integer | None = None
    cross_border_volume_90d: Number | None = None
    industry_risk: str | None = None  # one of LEVELS
    str_count_12m: Integer | None = None
    refused_cdd: bool | None = None
    adverse_media: bool | None = None


class Ops(_Input):
    failed_operations_90d: Integer | None = None
    support_tickets_90d: Integer | None = None
    fraud_victim_flag: bool | None = None
    kyc_expired: bool | None = None


class Feedback(_Input):
    csat: Number | None = None  # 1..5
    nps: Integer | None = None  # the customer's own 0..10 answer (policy feedback.nps_min..max)
    open_complaints: Integer | None = None
    complaints_12m: Integer | None = None


class Consent(_Input):
    """What the customer has agreed to. ``marketing_opt_out`` true: the customer has refused
    personalised marketing (PIPL Art. 24: automated information push and commercial
    marketing must offer a convenient way to refuse), so no marketing campaign or marketing
    task is made for them; service, risk and compliance work goes on."""

    marketing_opt_out: bool | None = None


class Previous(_Input):
    """What crmtier last wrote for this customer; filled by the sync layer from its state
    store and used for hysteresis (no tier flapping) and upgrade detection."""

    value_tier: str | None = None
    needs_tier: str | None = None
    credit_risk: str | None = None
    aml_risk: str | None = None
    ops_risk: str | None = None
    assessed_at: date | None = None
    below_floor_since: date | None = None
    #: The tier the customer's own data earned last time and its downgrade clock, kept
    #: apart only while they differ from ``value_tier``/``below_floor_since`` (an applied
    #: tier override, or the buffer and grace after one: docs/overrides.md). Needs and
    #: channel follow this tier, never an override's; None: the same as the written one.
    qualified_value_tier: str | None = None
    qualified_below_floor_since: date | None = None


class Override(_Input):
    """A relationship manager's proposed tier override and its maker-checker trail
    (docs/overrides.md). ``value_tier``/``service_tier`` are what the maker proposes (a
    service tier names the value tier whose service level is given); ``approved`` is the
    checker's approval as the CRM holds it. ``maker_id``, ``checker_id`` and the two times
    come from the CRM's own audit (field history, timeline, approval flow), filled by the
    sync layer, never typed by a user: a self-declared checker proves nothing.
    ``rules/override.py`` decides whether it stands."""

    value_tier: str | None = None
    service_tier: str | None = None
    reason: str | None = None
    expires: date | None = None
    approved: bool | None = None
    maker_id: str | None = None
    checker_id: str | None = None
    proposed_at: datetime | None = None
    approved_at: datetime | None = None


#: ``Override`` fields that only the CRM's audit may fill (never a mapped CRM field).
OVERRIDE_AUDIT_FIELDS = ("maker_id", "checker_id", "proposed_at", "approved_at")


class CustomerProfile(_Input):
    id: Annotated[str, Field(min_length=1)]
    kind: str | None = None  # one of CUSTOMER_KINDS
    currency: str = "CNY"
    owner_id: str | None = None
    modified_at: datetime | None = None
    assets: Assets | None = None
    aum_avg_3m: Number | None = None
    activity: Activity | None = None
    revenue_12m: Revenue12m | None = None
    credit: Credit | None = None
    aml: Aml | None = None
    ops: Ops | None = None
    feedback: Feedback | None = None
    qualified_investor: bool | None = None
    consent: Consent | None = None
    previous: Previous | None = None
    override: Override | None = None


# --- output -----------------------------------------------------------------------------


class _Output(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Text(_Output):
    """A human explanation in both languages the product ships (sales staff read it in the CRM)."""

    en: str
    zh: str


class Reason(_Output):
    """Why a tier was given: a stable code (``VAL_AUM_PRIVATE``, ``AML_PEP``), the factor it
    looked at, what it observed, the threshold it compared with, and its weight (the top four
    by weight are what is written to the CRM)."""

    code: str
    dimension: Literal[
        "value", "needs", "credit", "aml", "ops", "feedback", "dq", "consent", "channel"
    ]
    factor: str
    value: Any = None
    threshold: Any = None
    weight: float = 0.0
    text: Text


class DQIssue(_Output):
    """A data-quality finding on one input field of one customer."""

    code: str  # e.g. DQ_MISSING, DQ_NEGATIVE, DQ_UNKNOWN_ENUM, DQ_IMPOSSIBLE, DQ_NO_FX
    field: str  # dotted canonical path, e.g. "assets.deposits"
    problem: str  # one line, no personal data
    value: Any = None


class SetFieldAction(_Output):
    """Write a canonical output field (``value_tier``, ``reasons``, ...) to the CRM record;
    the connector's write-back mapping decides the CRM field name, or skips it."""

    kind: Literal["set_field"] = "set_field"
    field: str
    value: Any


class TaskAction(_Output):
    """A follow-up task. ``dedupe_key`` is deterministic (customer + rule + period) so that a
    rerun, a crash or a duplicate event upserts the same task instead of creating another."""

    kind: Literal["task"] = "task"
    rule: str
    subject: str
    priority: Priority
    due: date
    queue: str | None = None  # a team queue (compliance, corporate_banking, ...)
    owner_id: str | None = None  # the relationship manager, when the task is theirs
    description: str = ""
    dedupe_key: str


class CampaignAction(_Output):
    """Campaign membership: ``campaign`` is a stable key that the write-back config maps to
    the CRM's campaign id; ``member`` false means remove."""

    kind: Literal["campaign"] = "campaign"
    campaign: str
    member: bool
    dedupe_key: str


Action = Annotated[SetFieldAction | TaskAction | CampaignAction, Field(discriminator="kind")]
ActionKind = Literal["set_field", "task", "campaign"]
#: Every kind: what an Assessment carries unless a caller asks for fewer (``decide_batch``).
ACTION_KINDS: frozenset[ActionKind] = frozenset({"set_field", "task", "campaign"})


class Assessment(_Output):
    id: str
    status: Status
    value_tier: ValueTier
    value_score: Annotated[float, Field(ge=0, le=100)] | None
    needs_tier: NeedsTier
    credit_risk: RiskLevel
    aml_risk: AmlRisk
    ops_risk: RiskLevel
    edd_required: bool
    next_review: date | None
    service_level: str
    preferred_channel: Channel | None = None
    reasons: tuple[Reason, ...] = ()
    actions: tuple[Action, ...] = ()
    dq_issues: tuple[DQIssue, ...] = ()
    policy_version: str
    below_floor_since: date | None = None  # carried so the sync layer can persist hysteresis
    # the best household's tier (rules/household.py); only when households were read
    household_tier: ValueTier | None = None
    # what the customer's own data earns and its clock, only where a tier override makes
    # them differ from ``value_tier``/``below_floor_since`` (``Previous`` carries them on)
    qualified_value_tier: ValueTier | None = None
    qualified_below_floor_since: date | None = None

    @model_serializer(mode="wrap")
    def _without_absent_keys(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Leave ``household_tier`` and the qualified keys out when the decision did not
        carry them (no household links read, no override in play): such an Assessment
        serialises exactly as before, and dumping it adds no key the plain decision lacks."""
        data = handler(self)
        for name in _ONLY_WHEN_SET:
            if name not in self.model_fields_set:
                data.pop(name, None)
        return data


#: ``Assessment`` keys a decision carries only when they apply.
_ONLY_WHEN_SET = ("household_tier", "qualified_value_tier", "qualified_below_floor_since")


class DecidedFields(TypedDict):
    """The decided outputs by their canonical names (``Assessment`` and CRM field names)."""

    value_tier: ValueTier
    value_score: float | None
    needs_tier: NeedsTier
    credit_risk: RiskLevel
    aml_risk: AmlRisk
    ops_risk: RiskLevel
    edd_required: bool
    next_review: date | None
    service_level: str
    preferred_channel: Channel | None
    status: Status


class AssessmentData(DecidedFields):
    """An ``Assessment`` as the plain data the engine decides and the model validates:
    the same keys; reasons, actions and DQ issues as dicts of their models' fields; dates
    as ``date``; a reason's text as a read-only mapping that renders a language when read
    (``reasons.ReasonText``: ``dict()`` of it before serialising it yourself). The sync
    layer plans from it without building the ~40 nested models (the engine's module
    docstring says why); ``Assessment.model_validate`` accepts it as is."""

    id: str
    reasons: Sequence[dict[str, Any]]
    actions: Sequence[dict[str, Any]]
    dq_issues: Sequence[dict[str, Any]]
    policy_version: str
    below_floor_since: date | None
    #: present only when the batch came with household links (None: in no rated household)
    household_tier: NotRequired[ValueTier | None]
    #: present only where a tier override makes what the customer's own data earns (and
    #: its downgrade clock) differ from ``value_tier`` (``Previous.qualified_value_tier``)
    qualified_value_tier: NotRequired[ValueTier]
    qualified_below_floor_since: NotRequired[date | None]
