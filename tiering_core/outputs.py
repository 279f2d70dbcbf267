"""The canonical write-back outputs, each declared once: name, type and restriction.

A ``set_field`` action (``rules/strategy.py``) names one of these outputs. Everything else
about an output is read from here, never restated: the connectors' ``[writeback.fields]``
keys (``connectors/mapping.py``), each CRM's value encoding (every CRM maps the
*types* below to its own field types and values, never individual outputs), the fields
``crmtier doctor --fix`` creates in Salesforce, the sandboxes' field metadata, and which
outputs a listing hides without ``--show-restricted``. Tests check the shipped default
mappings and the sandbox schemas against this table, and that every ``set_field`` the
strategy emits is declared here with a value its type accepts.

Adding an output is one ``Output(...)`` entry below, the strategy line that computes its
value, and (where a CRM needs a field name) one line in each CRM's default mapping:
docs/architecture.md, "Adding a write-back field".

This module is pure data on purpose (the core imports no connector): a CRM's encoding of
each type lives in that CRM's folder under ``connectors/``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal, get_args

from tiering_core.models import AmlRisk, Channel, NeedsTier, RiskLevel, Status, ValueTier

#: The types an output can have; each CRM maps every one of them to a field type of its own.
OutputKind = Literal["picklist", "text", "long_text", "number", "date", "boolean"]
OUTPUT_KINDS: tuple[OutputKind, ...] = get_args(OutputKind)

#: The longest single-line text a CRM text field holds everywhere crmtier writes
#: (Salesforce Text: 255; Zoho single-line: 255).
TEXT_LENGTH = 255
#: Long text (the reasons): far below Salesforce's Long Text Area limit of 131,072
#: characters ("Custom Field Types", Salesforce Help); the policy's
#: ``strategy.reasons_max_chars`` cuts the reasons, and the config check holds it to this
#: (``connectors/coverage.py``), so no writer cuts them further.
LONG_TEXT_LENGTH = 4000


@dataclass(frozen=True, slots=True)
class OutputType:
    """What values an output takes. ``values``: a picklist's closed vocabulary, in the
    order a CRM should list it; ``max_length``: a text's limit; ``scale``: the decimals
    a number keeps."""

    kind: OutputKind
    values: tuple[str, ...] = ()
    max_length: int | None = None
    scale: int | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not one of this type's values (None: it is, or it is empty)."""
        if value is None:
            return None
        if self.kind == "picklist":
            ok = value in self.values
        elif self.kind in ("text", "long_text"):
            ok = isinstance(value, str) and len(value) <= (self.max_length or len(value))
        elif self.kind == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif self.kind == "date":
            ok = isinstance(value, date) or (isinstance(value, str) and _is_iso_date(value))
        else:
            ok = isinstance(value, bool)
        return None if ok else f"{value!r} is not a {self.describe()} value"

    def describe(self) -> str:
        """One line for docs and messages: ``picklist (low, medium)``, ``text (255)``."""
        if self.values:
            return f"{self.kind} ({', '.join(self.values)})"
        if self.max_length:
            return f"{self.kind} ({self.max_length})"
        return self.kind


def picklist(vocabulary: Any) -> OutputType:
    """A closed vocabulary, from a ``Literal`` of ``tiering_core.models``."""
    return OutputType("picklist", values=tuple(str(v) for v in get_args(vocabulary)))


TEXT = OutputType("text", max_length=TEXT_LENGTH)
LONG_TEXT = OutputType("long_text", max_length=LONG_TEXT_LENGTH)
SCORE = OutputType("number", scale=2)
DATE = OutputType("date")
BOOLEAN = OutputType("boolean")


@dataclass(frozen=True, slots=True)
class Output:
    """One canonical write-back output. ``restricted``: the value reveals an AML rating,
    which a bank keeps confidential (PRC Anti-Money Laundering Law; PBOC 保密原则): the
    CRM field must be readable by compliance only, and crmtier's listings hide it unless
    ``--show-restricted`` is given. ``optional``: written only when ``[writeback.fields]``
    maps it (the shipped mappings leave it out, unless the CRM has a place for it that its
    sync reads, as Salesforce has for ``household_tier``); every other output is mapped or switched
    off explicitly."""

    name: str
    type: OutputType
    label: str
    restricted: bool = False
    optional: bool = False


OUTPUTS: tuple[Output, ...] = (
    Output("value_tier", picklist(ValueTier), "Value tier"),
    Output("value_score", SCORE, "Value score"),
    Output("needs_tier", picklist(NeedsTier), "Needs tier"),
    Output("credit_risk", picklist(RiskLevel), "Credit risk"),
    Output("aml_risk", picklist(AmlRisk), "AML risk", restricted=True),
    Output("ops_risk", picklist(RiskLevel), "Operational risk"),
    Output("edd_required", BOOLEAN, "EDD required", restricted=True),
    Output("next_review", DATE, "Next review"),
    Output("service_level", TEXT, "Service level"),
    Output("preferred_channel", picklist(Channel), "Preferred channel"),
    Output("reasons", LONG_TEXT, "Tier reasons"),
    Output("status", picklist(Status), "Tier status"),
    Output("policy_version", TEXT, "Tier policy version"),
    # computed by the sync's planner from the assessment (sync/explanation.py), not a
    # set_field of the strategy; its length is the admin's explanation_max_chars
    Output("explanation", TEXT, "Tier explanation", optional=True),
    # the tier of the member's best household (rules/household.py), decided only when the
    # sync reads the CRM's households; optional because not every org has a field for it
    Output("household_tier", picklist(ValueTier), "Household tier", optional=True),
)

#: The outputs by name.
BY_NAME: Mapping[str, Output] = {o.name: o for o in OUTPUTS}
#: The names of the restricted outputs.
RESTRICTED: frozenset[str] = frozenset(o.name for o in OUTPUTS if o.restricted)


def declared(name: str) -> Output:
    """The declaration of output ``name``; KeyError names an undeclared output."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not a declared write-back output") from None


def output_type(name: str) -> OutputType:
    """The declared type of output ``name`` (what each CRM's encoder goes by)."""
    return declared(name).type


def _is_iso_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
