"""The CRM's reasons field, chosen for a whole batch at once (tiering_core/reasons_field.py),
is each customer's own top reasons: the heaviest visible ones, ties by code, no AML reason,
in the field's language, cut at its length."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.core.core_support import AS_OF, generated_bank, policies
from tiering_core import decisions, reasons_field
from tiering_core.columns import Columns
from tiering_core.engine import decide_batch, evaluate
from tiering_core.models import AssessmentData
from tiering_core.policy import Policy, load_policy, policy_over_default
from tiering_core.reasons import reason_line, top_reasons
from tiering_core.rules import override


def _policies() -> dict[str, Policy]:
    short = {"reasons_top": 2, "reasons_language": "zh", "reasons_max_chars": 40}
    one = {"reasons_top": 1, "reasons_language": "both", "reasons_max_chars": 60}
    return {
        **policies(),
        "short": policy_over_default({"name": "short", "strategy": short}),
        "one": policy_over_default({"name": "one", "strategy": one}),
    }


def _field(decision: AssessmentData) -> Any:
    (value,) = [
        a["value"]
        for a in decision["actions"]
        if a["kind"] == "set_field" and a["field"] == "reasons"
    ]
    return value


def one_by_one(reasons: Sequence[dict[str, Any]], policy: Policy) -> str:
    """The field as one customer's reasons alone define it."""
    s = policy.strategy
    chosen = top_reasons(reasons, s.reasons_top)
    joined = "; ".join(reason_line(r, s.reasons_language) for r in chosen)
    return joined if len(joined) <= s.reasons_max_chars else joined[: s.reasons_max_chars - 1] + "…"


@pytest.mark.parametrize("rendered", [False, True])
@pytest.mark.parametrize("name", ["default", "fico", "variant", "short", "one"])
def test_each_customers_field_is_its_own_top_reasons(name: str, rendered: bool) -> None:
    """``rendered``: the texts made up front (``crmtier tier``, which writes them all), the
    field's lines then made from them (``ReasonCells.lines``), else from the cells' values."""
    policy = _policies()[name]
    bank = generated_bank(400, seed=11, dirty=True)
    cols = Columns.from_profiles(bank, policy)
    ev = override.apply(evaluate(cols, policy, AS_OF, None), cols, policy, AS_OF)
    decided = decisions.decided(
        cols, ev, policy, AS_OF, frozenset({"set_field"}), rendered=rendered
    )
    fields = [_field(d) for d in decided]
    assert fields == [one_by_one(d["reasons"], policy) for d in decided]
    assert any("; " in f for f in fields) or policy.strategy.reasons_top == 1
    assert not any(f.startswith("AML_") or "; AML_" in f for f in fields)
    # a batch of one (the webhook path) gives each customer the same field
    alone = [_field(decide_batch([p], policy, AS_OF, kinds=frozenset({"set_field"}))[0])
             for p in bank[:25]]  # fmt: skip
    assert alone == fields[:25]


@pytest.mark.parametrize("rendered", [False, True])
@pytest.mark.parametrize("language", ["en", "zh", "both"])
def test_every_cells_line_is_its_reason_line(rendered: bool, language: str) -> None:
    """``ReasonCells.lines`` of every cell of a batch, a listed value's too (a high-risk
    country list, which the field never shows but a caller may ask for), is the cell's
    reason as ``reasons.reason_line`` shows it."""
    policy = load_policy()
    bank = generated_bank(400, seed=11, dirty=True)
    cols = Columns.from_profiles(bank, policy)
    ev = override.apply(evaluate(cols, policy, AS_OF, None), cols, policy, AS_OF)
    cells = decisions.decided(cols, ev, policy, AS_OF, frozenset(), rendered=rendered).cells
    listed = {rc.code for rc in cells.columns if rc.profile_path is not None}
    chosen = list(range(cells.row.size))
    assert listed & {cells.columns[c].code for c in cells.column.tolist()}, "a listed value"
    lines = cells.lines(chosen, language)
    assert lines == [reason_line(reason, language) for reason in cells.reasons]


#: (text, max_chars, the field) — lengths in UTF-16 code units, as Salesforce counts them
CUT_CASES = [
    pytest.param("abc", 3, "abc", id="ascii-fits"),
    pytest.param("abcd", 3, "ab…", id="ascii-cut"),
    pytest.param("存款余额", 4, "存款余额", id="chinese-fits-one-unit-each"),
    pytest.param("存款余额高", 4, "存款余…", id="chinese-cut"),
    pytest.param("😀😀", 4, "😀😀", id="emoji-two-units-each-fit"),
    pytest.param("😀😀😀", 4, "😀…", id="emoji-cut-not-split"),
    pytest.param("a😀", 2, "a…", id="emoji-would-overhang-left-out"),
    pytest.param("𠮟𠮟a", 4, "𠮟…", id="cjk-extension-b-two-units"),
]


@pytest.mark.parametrize(("text", "max_chars", "field"), CUT_CASES)
def test_the_field_is_cut_by_utf16_units_never_longer_than_max_chars(
    text: str, max_chars: int, field: str
) -> None:
    """Counted by code points, four emoji made a "4-character" field of 8 units, which
    a Salesforce field of 4 refuses whole."""
    assert reasons_field.cut(text, max_chars) == field
    assert reasons_field.utf16_length(field) <= max_chars
    assert len(field.encode("utf-16-le")) // 2 == reasons_field.utf16_length(field)


@given(text=st.text(), max_chars=st.integers(min_value=1, max_value=50))
def test_a_cut_field_fits_and_keeps_the_start(text: str, max_chars: int) -> None:
    field = reasons_field.cut(text, max_chars)
    assert reasons_field.utf16_length(field) <= max_chars
    assert field == text or (field.endswith("…") and text.startswith(field[:-1]))
