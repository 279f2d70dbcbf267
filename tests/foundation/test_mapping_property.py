"""``profile_from_crm`` against the rule it implements, written out one field at a time.

The mapping loop is tuned (a block's slots in one run, the canonical value tested first);
this pins it to the plain reading of its docstring over generated mappings (blocks
interleaved, an unknown path) and raw values of every kind a CRM sends (absent, empty,
zero and false, numbers as text, out-of-range and non-finite numbers, over-long text, bad
dates, lists, picklist text): the same profile, the same fields set at every level, the same
DQ issues in the same order, and the same refusal when nothing can be dropped.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from connectors.mapping import (
    CANONICAL_TYPES,
    CoercionError,
    FieldMapping,
    coercer,
    profile_from_crm,
    set_path,
)
from tiering_core.models import INTEGER_MAX, TEXT_MAX, CustomerProfile, DQIssue

#: Mappable paths: every canonical one and one the model does not have.
PATHS = (*sorted(CANONICAL_TYPES), "assets.gold")

VALUES = st.one_of(
    st.none(),
    st.sampled_from(["", " ", "0", "1", "true", "no", "12.5", "7x", "1e400", "nan", "inf"]),
    st.sampled_from(["2026-03-01", "2026-02-30", "2026-03-01T09:00:00Z", "A;B", "a, b"]),
    st.sampled_from([0, 1, 2, -3, INTEGER_MAX + 1, 0.0, 700.0, 0.5, -1.5]),
    st.sampled_from([float("inf"), float("nan"), True, False, [], ["x", 1], {"k": 1}]),
    st.integers(),
    st.floats(),
    st.text(max_size=5),
    st.just("x" * (TEXT_MAX + 1)),
)


def reference(
    crm_id: str, raw: dict[str, Any], mapping: FieldMapping, **extra: Any
) -> tuple[CustomerProfile, tuple[DQIssue, ...]]:
    """The mapping module's docstring, field by field: empty means missing, a field that is
    not canonical or a value its coercer refuses is a DQ issue, what pydantic still refuses
    is dropped and reported."""
    tree: dict[str, Any] = {"id": crm_id, **extra}
    issues: list[DQIssue] = []
    for path, crm_field in mapping.fields.items():
        value = raw.get(crm_field)
        if value is None or value == "":
            continue
        if path not in CANONICAL_TYPES:
            issues.append(
                DQIssue(code="DQ_UNKNOWN_FIELD", field=path, problem="not a canonical field")
            )
            continue
        try:
            set_path(tree, path, coercer(CANONICAL_TYPES[path])(value))
        except CoercionError as exc:
            issues.append(DQIssue(code="DQ_BAD_TYPE", field=path, problem=f"{crm_field}: {exc}"))
    try:
        return CustomerProfile.model_validate(tree), tuple(issues)
    except ValidationError as exc:
        for err in exc.errors():
            *parents, leaf = [str(p) for p in err["loc"]]
            issues.append(
                DQIssue(code="DQ_BAD_TYPE", field=".".join((*parents, leaf)), problem=err["msg"])
            )
            node = tree
            for part in parents:
                child = node.get(part)
                if not isinstance(child, dict):
                    break
                node = child
            else:
                node.pop(leaf, None)
        return CustomerProfile.model_validate(tree), tuple(issues)


def fields_set(model: Any) -> Any:
    """Which fields were given, at every level (equality of models does not compare it)."""
    if not isinstance(model, BaseModel):
        return None
    return (
        sorted(model.model_fields_set),
        {name: fields_set(getattr(model, name)) for name in type(model).model_fields},
    )


@st.composite
def records(draw: st.DrawFn) -> tuple[FieldMapping, dict[str, Any], dict[str, Any]]:
    paths = draw(st.lists(st.sampled_from(PATHS), unique=True, max_size=len(PATHS)))
    mapping = FieldMapping(object="Account", fields={p: f"F{i}__c" for i, p in enumerate(paths)})
    raw = {f"F{i}__c": draw(VALUES) for i in range(len(paths))}
    extra = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "modified_at": st.sampled_from([datetime(2026, 3, 1, tzinfo=UTC), "not a date"]),
                "owner_id": st.sampled_from(["005x", ""]),
            },
        )
    )
    return mapping, raw, extra


@settings(max_examples=200, deadline=None)
@given(records())
def test_the_mapping_loop_is_its_rule_field_by_field(
    record: tuple[FieldMapping, dict[str, Any], dict[str, Any]],
) -> None:
    mapping, raw, extra = record
    try:
        expected = reference("001", raw, mapping, **extra)
    except ValidationError as refused:
        try:
            profile_from_crm("001", raw, mapping, **extra)
        except ValidationError as exc:
            assert exc.errors() == refused.errors()
            return
        raise AssertionError("the reference refused a record the mapping read") from None
    profile, issues = profile_from_crm("001", raw, mapping, **extra)
    assert (profile, issues) == expected
    assert fields_set(profile) == fields_set(expected[0])
