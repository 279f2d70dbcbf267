"""Field mapping: CRM field names ↔ canonical ``CustomerProfile`` paths, as configuration.

Every CRM folder ships a ``default_mapping.toml`` that matches its sandbox; an admin edits
the ``[mapping]`` and ``[writeback]`` sections of ``crmtier.toml`` to match their org.

``profile_from_crm`` turns one raw CRM record into a canonical profile. It is deliberately
forgiving per field and strict per value: a value that cannot be coerced to the canonical
type is dropped and reported as a ``DQ_BAD_TYPE`` issue naming the field, so one malformed
record never fails a page and never silently becomes a zero.
"""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from functools import cached_property
from importlib import resources
from typing import Any, Literal, NamedTuple, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tiering_core.models import OVERRIDE_AUDIT_FIELDS, CustomerProfile, DQIssue
from tiering_core.outputs import OUTPUTS, RESTRICTED

#: Canonical output fields a connector may write back to the CRM record: the declared
#: outputs (``tiering_core/outputs.py``), in their declared order.
WRITEBACK_FIELDS = tuple(o.name for o in OUTPUTS if not o.optional)
#: Outputs written only when ``[writeback.fields]`` maps them; unmapped, they are not made.
OPTIONAL_WRITEBACK_FIELDS = tuple(o.name for o in OUTPUTS if o.optional)


class FieldMapping(BaseModel):
    """Which CRM object holds customers and which CRM field feeds each canonical path."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    object: str
    fields: dict[str, str] = Field(default_factory=dict)  # canonical path -> CRM field

    def crm_fields(self) -> list[str]:
        """The CRM fields a read must request: exactly what the rules use (data minimisation)."""
        return sorted(set(self.fields.values()))

    @cached_property
    def slots(self) -> tuple[Slot, ...]:
        """Each mapped field resolved once: where it goes and how its value is coerced
        (``profile_from_crm`` runs for every record of every page)."""
        return tuple(Slot.of(path, crm_field) for path, crm_field in self.fields.items())

    @cached_property
    def runs(self) -> tuple[tuple[str | None, tuple[SlotFields, ...]], ...]:
        """The slots in mapping order, cut where the block changes: ``profile_from_crm``
        fills one block's dict per run instead of looking the block up for every field
        (a record's issues and its tree's keys keep the mapping's order). Each slot as a
        plain tuple without its block: unpacking a ``NamedTuple`` takes the interpreter's
        generic path, a plain tuple its fast one (a fifth of the loop's time)."""
        runs: list[tuple[str | None, list[SlotFields]]] = []
        for crm_field, path, coerce, exact, text, block, leaf in self.slots:
            fields = (crm_field, path, coerce, exact, text, leaf)
            if runs and runs[-1][0] == block:
                runs[-1][1].append(fields)
            else:
                runs.append((block, [fields]))
        return tuple((block, tuple(slots)) for block, slots in runs)


#: A slot in ``FieldMapping.runs``: ``Slot`` without its block, as a plain tuple.
SlotFields = tuple[str, str, Callable[[Any], Any] | None, type | None, bool, str]


class Slot(NamedTuple):
    """One mapped field: CRM field -> canonical path (its ``block``, None at the top level,
    and ``leaf``); ``coerce`` None when ``path`` is not a canonical field. ``exact`` is
    the type a value already has when its coercer would return it unchanged (a JSON float
    for a float field), so the usual value skips the call; None where every value is
    coerced (lists, dates). ``text``: ``exact`` is ``str``, the one exact type with an
    empty value that means missing (``""``; a 0 or a false is a value).
    ``FieldMapping.runs`` holds them grouped by block for ``profile_from_crm``."""

    crm_field: str
    path: str
    coerce: Callable[[Any], Any] | None
    exact: type | None
    text: bool
    block: str | None
    leaf: str

    @classmethod
    def of(cls, path: str, crm_field: str) -> Slot:
        block, _, leaf = path.rpartition(".")
        typ = CANONICAL_TYPES.get(path)  # its path has at most one block
        return cls(
            crm_field,
            path,
            None if typ is None else coercer(typ),
            typ if typ in _EXACT else None,
            typ is str,
            block or None,
            leaf,
        )


#: The ``[writeback]`` tables whose keys name a target; ``key = false`` switches one off.
TARGET_TABLES = ("fields", "campaigns", "queues")


class WritebackConfig(BaseModel):
    """What crmtier writes back. ``restricted`` names outputs (``aml_risk``) that may only go
    to fields compliance alone can read: the outputs declared restricted always, whatever
    the file says (an admin may restrict more, never fewer).

    Every output, campaign and queue the policy can produce names its CRM target here, or
    is switched off with ``false`` (``[writeback.campaigns] survey_mass = false``): the
    switched-off keys are kept apart in ``switched_off`` (``"campaigns.survey_mass"``), so
    the tables hold only real targets and "not written" is always something the admin said
    (``connectors/coverage.py`` checks this against the policy when the config loads).

    A campaign given as ``key = { id = "...", add = false }`` keeps its CRM id but takes
    no new member (``remove_only``): crmtier still removes the members it made there (a
    sanctions hit, an opt-out, a customer who no longer qualifies), which a campaign
    switched off cannot have done (no id), so the start-up gate refuses ``false`` while the
    store holds members crmtier made in it (``sync.write_readiness``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, str] = Field(default_factory=dict)  # canonical output -> CRM field
    restricted: tuple[str, ...] = tuple(o.name for o in OUTPUTS if o.restricted)
    campaigns: dict[str, str] = Field(default_factory=dict)  # campaign key -> CRM campaign id
    queues: dict[str, str] = Field(default_factory=dict)  # task queue -> CRM owner/queue id
    switched_off: frozenset[str] = frozenset()  # "<table>.<key>" set to false
    remove_only: frozenset[str] = frozenset()  # campaign keys given with add = false
    #: deprecated, never read: how many reasons the CRM's ``reasons`` field gets is the
    #: policy's ``strategy.reasons_top``. Still accepted so a file copied from an older
    #: shipped mapping loads; ``connectors/coverage.py`` refuses a value that differs from
    #: the policy's (a number configured and not honoured) and warns on one that agrees.
    reasons_max: int | None = None
    #: the ``explanation`` output (sync/explanation.py): its language and length, which
    #: ``connectors/coverage.py`` holds to the CRM's text field
    explanation_language: Literal["en", "zh"] = "en"
    explanation_max_chars: int = Field(default=255, ge=60)
    tasks: bool = True
    campaign_memberships: bool = True

    @model_validator(mode="before")
    @classmethod
    def _collect_switched_off(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        off = set(out.get("switched_off", ()))
        if isinstance(out.get("campaigns"), Mapping):
            out["campaigns"], remove_only = _campaign_ids(out["campaigns"])
            out["remove_only"] = frozenset(out.get("remove_only", ())) | remove_only
        for table in TARGET_TABLES:
            entries = out.get(table)
            if not isinstance(entries, Mapping):
                continue
            for key, target in entries.items():
                if target is True or (isinstance(target, str) and not target.strip()):
                    raise ValueError(
                        f"[writeback.{table}] {key}: give the CRM's name or id, or false to "
                        "switch it off"
                    )
            off |= {f"{table}.{key}" for key, target in entries.items() if target is False}
            out[table] = {key: t for key, t in entries.items() if t is not False}
        out["switched_off"] = frozenset(off)
        return out

    @model_validator(mode="before")
    @classmethod
    def _restricted_floor(cls, data: Any) -> Any:
        """The declared restricted outputs stay restricted when a file lists fewer."""
        if not isinstance(data, Mapping) or not isinstance(data.get("restricted"), list | tuple):
            return data
        given = tuple(data["restricted"])
        return {**data, "restricted": given + tuple(sorted(RESTRICTED - set(given)))}

    def is_off(self, table: str, key: str) -> bool:
        """Whether the admin switched ``key`` of ``[writeback.<table>]`` off."""
        return f"{table}.{key}" in self.switched_off

    def adds_to(self, campaign: str) -> bool:
        """Whether crmtier adds members to ``campaign``: memberships on, and the campaign
        mapped to its CRM id without ``add = false``."""
        return (
            self.campaign_memberships
            and campaign in self.campaigns
            and campaign not in self.remove_only
        )

    def switched_off_keys(self, table: str) -> list[str]:
        """The keys of ``[writeback.<table>]`` switched off, sorted."""
        return sorted(e.partition(".")[2] for e in self.switched_off if e.startswith(f"{table}."))


def _campaign_ids(entries: Mapping[str, Any]) -> tuple[dict[str, Any], frozenset[str]]:
    """``[writeback.campaigns]`` with each ``{ id = "...", add = false }`` entry replaced
    by its id, and the keys given ``add = false``; any other table is refused in one line
    (an unknown key in it would otherwise be a switch silently ignored)."""
    ids: dict[str, Any] = {}
    remove_only = set()
    for key, target in entries.items():
        if not isinstance(target, Mapping):
            ids[key] = target
            continue
        if set(target) - {"id", "add"} or not isinstance(target.get("add", True), bool):
            raise ValueError(
                f'[writeback.campaigns] {key}: write {key} = {{ id = "<CRM id>", add = false }}'
                " (keys id and add only, add true or false)"
            )
        given = target.get("id")  # anything but text is refused as ``true`` is
        ids[key] = given if isinstance(given, str) else True
        if target.get("add") is False:
            remove_only.add(key)
    return ids, frozenset(remove_only)


class DefaultMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    mapping: FieldMapping
    writeback: WritebackConfig


def load_default_mapping(crm: str) -> DefaultMapping:
    """The shipped ``connectors/<crm>/default_mapping.toml``, matching that CRM's sandbox."""
    text = resources.files(f"connectors.{crm}").joinpath("default_mapping.toml").read_text("utf-8")
    return DefaultMapping.model_validate(tomllib.loads(text))


# --- canonical field types, derived from the models so the two can never drift -----------


def _leaf_types(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        path = f"{prefix}{name}"
        target = unwrap_optional(info.annotation)
        if isinstance(target, type) and issubclass(target, BaseModel):
            out.update(_leaf_types(target, f"{path}."))
        else:
            out[path] = target
    return out


def unwrap_optional(annotation: Any) -> Any:
    """``X | None`` → ``X``, and ``Annotated[X, ...]`` → ``X`` (the model's validators and
    bounds are its own business; the CRM value's type is ``X``); any other annotation (a
    wider union too) as it is. Shared by the canonical types here and the config's own
    field types (``crmtier/config.py``), so the two read a model field's type the same way."""
    if get_origin(annotation) in (typing.Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        if len(inner) != 1:
            return annotation
        annotation = inner[0]
    return get_args(annotation)[0] if get_origin(annotation) is typing.Annotated else annotation


CANONICAL_TYPES: dict[str, Any] = {
    path: typ
    for path, typ in _leaf_types(CustomerProfile).items()
    if not path.startswith("previous.")
    and path not in {f"override.{name}" for name in OVERRIDE_AUDIT_FIELDS}
}


class CoercionError(ValueError):
    pass


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in (
        "true",
        "false",
        "1",
        "0",
        "yes",
        "no",
    ):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise CoercionError("expected a boolean")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise CoercionError("expected an integer")
    if isinstance(value, int):
        return value
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CoercionError("expected an integer") from None
    if not number.is_integer():
        raise CoercionError("expected an integer")
    return int(number)


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise CoercionError("expected a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise CoercionError("expected a number") from None


def _to_str(value: Any) -> str:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return str(value)
    raise CoercionError("expected text")


def _to_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):  # Salesforce multi-select picklists: "A;B;C"
        sep = ";" if ";" in value else ","
        return tuple(v.strip() for v in value.split(sep) if v.strip())
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value)
    raise CoercionError("expected a list")


def _as_is(value: Any) -> Any:
    return value  # dates: pydantic parses ISO strings and epoch numbers; it reports failures


#: Canonical types whose coercer returns a value of exactly that type unchanged.
_EXACT: frozenset[type] = frozenset({bool, int, float, str})

_COERCERS: dict[Any, Callable[[Any], Any]] = {
    bool: _to_bool,
    int: _to_int,
    float: _to_float,
    str: _to_str,
    datetime: _as_is,
    date: _as_is,
}


def coercer(typ: Any) -> Callable[[Any], Any]:
    """The function that turns a CRM value into canonical type ``typ`` or raises
    ``CoercionError``; chosen once per mapped field, not per value."""
    if typ in _COERCERS:
        return _COERCERS[typ]
    if get_origin(typ) is tuple:
        return _to_tuple

    def unsupported(_: Any) -> Any:
        raise CoercionError(f"unsupported canonical type {typ!r}")

    return unsupported


def set_path(tree: dict[str, Any], path: str, value: Any) -> None:
    """Put ``value`` at a dotted canonical path in a nested dict, creating blocks as needed."""
    *parents, leaf = path.split(".")
    _put(tree, parents, leaf, value)


def _put(tree: dict[str, Any], parents: Sequence[str], leaf: str, value: Any) -> None:
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def profile_from_crm(
    crm_id: str, raw: Mapping[str, Any], mapping: FieldMapping, **extra: Any
) -> tuple[CustomerProfile, tuple[DQIssue, ...]]:
    """Build a canonical profile from one raw CRM record.

    ``extra`` sets canonical top-level values the connector knows itself (``modified_at``,
    ``owner_id`` from a system field). Empty strings and nulls mean *missing*.
    """
    tree: dict[str, Any] = {"id": crm_id, **extra}
    issues: list[DQIssue] = []
    get = raw.get
    # One pass over the slots, a block's run at a time into its dict, and the coercer
    # called only for a value not already canonical: this runs for every field of every
    # record read. The usual value (canonical, ``Slot.exact``) costs one type test and
    # one truth test; the rest (absent, empty text, to coerce) comes after it.
    for block, slots in mapping.runs:
        node = tree if block is None else tree.get(block) or {}
        for crm_field, path, coerce, exact, text, leaf in slots:
            value = get(crm_field)
            if value is None:
                continue
            if type(value) is exact:
                if value or not text:
                    node[leaf] = value
                continue
            if value == "":
                continue
            if coerce is None:
                issues.append(
                    DQIssue(code="DQ_UNKNOWN_FIELD", field=path, problem="not a canonical field")
                )
                continue
            try:
                node[leaf] = coerce(value)
            except CoercionError as exc:
                issues.append(
                    DQIssue(code="DQ_BAD_TYPE", field=path, problem=f"{crm_field}: {exc}")
                )
        if node and block is not None:
            tree[block] = node
    try:
        return CustomerProfile.model_validate(tree), tuple(issues)
    except ValidationError as exc:
        # A value pydantic still rejects (a malformed date): drop each offending field.
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            issues.append(DQIssue(code="DQ_BAD_TYPE", field=path, problem=err["msg"]))
            _drop_path(tree, [str(p) for p in err["loc"]])
        return CustomerProfile.model_validate(tree), tuple(issues)


def _drop_path(tree: dict[str, Any], parts: list[str]) -> None:
    node = tree
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            return
        node = child
    node.pop(parts[-1], None)
