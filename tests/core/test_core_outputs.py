"""The write-back outputs' declaration (tiering_core/outputs.py) agrees with the engine:
the strategy emits exactly the declared outputs, each with a value its declared type
accepts, and each declared type matches the Assessment field it comes from."""

from __future__ import annotations

import json
import types
import typing
from datetime import date
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import pytest
from core_support import AS_OF, build

from tiering_core.engine import assess
from tiering_core.models import Assessment, CustomerProfile, SetFieldAction
from tiering_core.outputs import (
    BOOLEAN,
    BY_NAME,
    DATE,
    LONG_TEXT,
    OUTPUTS,
    RESTRICTED,
    SCORE,
    TEXT,
    OutputType,
    output_type,
)
from tiering_core.policy import Policy

EXAMPLES = Path(__file__).parents[2] / "examples" / "customers.jsonl"


def _profiles() -> list[CustomerProfile]:
    lines = EXAMPLES.read_text("utf-8").splitlines()
    shipped = [CustomerProfile.model_validate(json.loads(line)) for line in lines if line]
    edge = [
        build(aml={"sanctions_hit": True}),
        build(aml={"pep": True, "industry_risk": "high"}),
        build(kind="corporate", assets={"deposits": 90_000_000}),
        build(assets=None, activity=None, credit=None, aml=None),
    ]
    return shipped + [CustomerProfile.model_validate(p) for p in edge]


def _set_fields(assessment: Assessment) -> dict[str, Any]:
    return {a.field: a.value for a in assessment.actions if isinstance(a, SetFieldAction)}


def test_names_are_unique():
    assert len(BY_NAME) == len(OUTPUTS)


def test_the_strategy_writes_exactly_the_declared_outputs_with_values_of_their_type(
    policy: Policy,
):
    # the optional outputs are computed where they are mapped (the planner's explanation)
    written: dict[str, set[Any]] = {o.name: set() for o in OUTPUTS if not o.optional}
    for profile in _profiles():
        assessment = assess(profile, policy, AS_OF)
        fields = _set_fields(assessment)
        assert set(fields) == set(written), profile.id
        assert sum(isinstance(a, SetFieldAction) for a in assessment.actions) == len(fields)
        for name, value in fields.items():
            assert output_type(name).problem(value) is None, (profile.id, name, value)
            written[name].add(value)
    # The sample is not all alike: the restricted outputs take more than one value.
    assert len(written["aml_risk"]) > 1 and written["edd_required"] == {True, False}


def _plain(annotation: Any) -> Any:
    if get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in get_args(annotation) if a is not type(None)]
    return get_args(annotation)[0] if get_origin(annotation) is typing.Annotated else annotation


@pytest.mark.parametrize(
    "output", [o for o in OUTPUTS if o.name in Assessment.model_fields], ids=lambda o: o.name
)
def test_a_declared_type_matches_the_assessment_field(output):
    """A vocabulary is the Literal's, in its order; the reasons (a tuple of Reason) are
    written as their long-text summary."""
    annotation = _plain(Assessment.model_fields[output.name].annotation)
    if get_origin(annotation) is Literal:
        assert output.type.kind == "picklist"
        assert output.type.values == get_args(annotation)
    else:
        kinds = {bool: "boolean", float: "number", date: "date", str: "text", tuple: "long_text"}
        kind = kinds[get_origin(annotation) or annotation]
        assert output.type.kind == kind


def test_the_outputs_that_reveal_an_aml_rating_are_restricted():
    """The AML level and the EDD flag that follows from it (PBOC 保密原则); nothing else."""
    assert {"aml_risk", "edd_required"} == RESTRICTED


def test_an_undeclared_output_is_named_in_the_error():
    with pytest.raises(KeyError, match="tier_note"):
        output_type("tier_note")


@pytest.mark.parametrize(
    ("typ", "value", "ok"),
    [
        (OutputType("picklist", values=("low", "high")), "low", True),
        (OutputType("picklist", values=("low", "high")), "medium", False),
        (TEXT, "x" * 255, True),
        (TEXT, "x" * 256, False),
        (TEXT, 5, False),
        (LONG_TEXT, "x" * 4000, True),
        (LONG_TEXT, "x" * 4001, False),
        (SCORE, 71.5, True),
        (SCORE, True, False),
        (SCORE, "71.5", False),
        (DATE, date(2027, 3, 1), True),
        (DATE, "2027-03-01", True),
        (DATE, "soon", False),
        (BOOLEAN, False, True),
        (BOOLEAN, "false", False),
        (BOOLEAN, None, True),
    ],
)
def test_a_type_accepts_only_its_values(typ, value, ok):
    problem = typ.problem(value)
    assert (problem is None) is ok
    if problem:
        assert typ.kind in problem
