"""Query filter operators: exactly the ones FXiaoke's query pages list, in both the
connector (``query.OPERATORS``, ``flt``) and the sandbox.

The table ("operator Parameter Description" of every object's query page, e.g. "Query
Customer Object List by Criteria", fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/
collection/object/AccountObj/query-acc/) spells not-equal ``N`` and greater-or-equal
``GTE``; ``NE`` is the APL reference's spelling (``Operator.NE`` of ``Fx.object.find``),
and ``GE`` / ``LE`` appear only on the "Field Value Description" guide page, against every
query page's table (docs/fxiaoke-api-audit.md): crmtier keeps the query pages' spelling.

The same table types ``field_values`` ``List[String]``: a modstamp bound goes as decimal text.
"""

from __future__ import annotations

from typing import Any

import pytest

from connectors.fxiaoke.query import OPERATORS, flt
from tests.fxiaoke.fx_wire import Wire

DOCUMENTED = (
    "EQ", "N", "GT", "GTE", "LT", "LTE", "LIKE", "NLIKE", "IS", "ISN", "IN", "NIN",
    "BETWEEN", "NBETWEEN", "STARTWITH", "ENDWITH", "HASANYOF", "NHASANYOF",
)  # fmt: skip
UNDOCUMENTED = ("NE", "GE", "LE", "gte", "n", "CONTAINS", "NEQ")
SCORE = "field_credit_score__c"


def test_the_connector_knows_exactly_the_documented_operators() -> None:
    assert set(DOCUMENTED) == OPERATORS


@pytest.mark.parametrize("operator", UNDOCUMENTED)
def test_the_connector_refuses_an_undocumented_operator(operator: str) -> None:
    with pytest.raises(ValueError, match=repr(operator)):
        flt(SCORE, operator, 1)


def _total(wire: Wire, headers: dict[str, str], *filters: dict[str, Any]) -> int:
    answer = wire.query(headers, filters=list(filters), limit=1)
    assert answer["errorCode"] == 0, answer
    return int(answer["data"]["total"])


def _values(operator: str) -> list[Any]:
    return [600, 700] if operator.endswith("BETWEEN") else [] if operator in ("IS", "ISN") else [1]


@pytest.mark.parametrize("operator", DOCUMENTED)
def test_the_sandbox_serves_every_documented_operator(wire: Wire, operator: str) -> None:
    _total(wire, wire.login(), flt(SCORE, operator, *_values(operator)))


@pytest.mark.parametrize("operator", [*UNDOCUMENTED, None])
def test_the_sandbox_refuses_any_other_operator(wire: Wire, operator: str | None) -> None:
    spec = {"field_name": SCORE, "field_values": [1]}
    given = spec if operator is None else {**spec, "operator": operator}
    assert wire.query(wire.login(), filters=[given])["errorCode"] == 15002


def test_between_and_n_mean_what_the_table_says(wire: Wire) -> None:
    headers = wire.login()
    everyone = _total(wire, headers)
    inside = _total(wire, headers, flt(SCORE, "BETWEEN", 600, 700))
    assert inside == _total(wire, headers, flt(SCORE, "GTE", 600), flt(SCORE, "LTE", 700))
    assert 0 < inside < everyone
    assert _total(wire, headers, flt(SCORE, "NBETWEEN", 600, 700)) == everyone - inside
    # N "can query empty values": a customer without the field is not equal to anything.
    assert _total(wire, headers, flt("field_no_such__c", "N", "x")) == everyone


@pytest.mark.parametrize(
    ("values", "sent"),
    [((1717300000000,), ["1717300000000"]), (("a", "b"), ["a", "b"]), ((), [])],
    ids=["epoch-ms", "ids", "none"],
)
def test_the_connector_sends_filter_values_as_strings(values: tuple[Any, ...], sent: Any) -> None:
    assert flt("last_modified_time", "GTE", *values)["field_values"] == sent


@pytest.mark.parametrize("value", [1.5, True], ids=["float", "bool"])
def test_the_connector_refuses_a_value_it_cannot_spell(value: Any) -> None:
    with pytest.raises(ValueError, match=f"filter value for {SCORE} must be text"):
        flt(SCORE, "EQ", value)


@pytest.mark.parametrize(
    "values",
    [[700], [700.0], ["700", 800], [None], "700"],
    ids=["int", "float", "mixed", "null", "bare"],
)
def test_the_sandbox_refuses_filter_values_that_are_not_strings(wire: Wire, values: Any) -> None:
    spec = {"field_name": SCORE, "field_values": values, "operator": "GTE"}
    assert wire.query(wire.login(), filters=[spec])["errorCode"] == 15002


@pytest.mark.parametrize(
    "bound", ["abc", "", "nan", "inf", "1e400"], ids=["word", "empty", "nan", "inf", "overflow"]
)
def test_the_sandbox_refuses_a_modstamp_bound_that_is_no_number(wire: Wire, bound: str) -> None:
    # An FXiaoke answer is HTTP 200 with an errorCode, never a failed request.
    spec = {"field_name": "last_modified_time", "field_values": [bound], "operator": "GTE"}
    answer = wire.query(wire.login(), filters=[spec])
    assert answer["errorCode"] == 15002
    assert "last_modified_time" in answer["errorMessage"]


def test_a_modstamp_bound_as_text_still_compares_as_a_number(wire: Wire) -> None:
    headers = wire.login()
    everyone = _total(wire, headers)
    assert _total(wire, headers, flt("last_modified_time", "GTE", 0)) == everyone
    assert _total(wire, headers, flt("last_modified_time", "LT", 0)) == 0
    assert _total(wire, headers, flt(SCORE, "GTE", "700")) < everyone
