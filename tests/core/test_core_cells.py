"""The column checks (tiering_core/cells.py) read exactly what the model reads.

For arbitrary records (right and wrong types in every field: numbers as text, floats where
integers belong, ``true`` where a number belongs, huge integers, overlong text, unknown
keys, blocks that are not objects), a record ``ingest`` keeps must be one the model
accepts, with the very cells the model's profile has, and a record it reports must be one
the model refuses, with the model's own reasons. The JSON path and the Python (CSV) path
are both held to it.
"""

from __future__ import annotations

import json
from typing import Any

from core_support import generated_bank
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from tiering_core import ingest
from tiering_core.cells import FIELDS, Cells
from tiering_core.models import CustomerProfile

TEXT = st.text(max_size=4)
ODD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(["12", " 7 ", "1e3", "x", "", "2026-01-31", "true", "2**60", "1.5"]),
    TEXT,
    st.just("L" * 300),
    st.lists(TEXT, max_size=2),
)
NUMBER = st.one_of(st.none(), st.integers(-1000, 10**7), st.floats(-1e6, 1e9), ODD)
FLAG = st.one_of(st.none(), st.booleans(), ODD)
WORD = st.one_of(st.none(), st.sampled_from(["individual", "corporate", "low", "loss"]), ODD)


def block(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    keys = st.fixed_dictionaries({}, optional=fields)
    return st.one_of(st.none(), keys, keys.map(lambda d: {**d, "extra": 1}), st.just([1]))


RECORDS = st.fixed_dictionaries(
    {"id": st.one_of(st.text(min_size=1, max_size=6), st.just(""), st.none(), st.integers())},
    optional={
        "kind": WORD,
        "currency": st.one_of(st.sampled_from(["CNY", "USD"]), ODD),
        "owner_id": WORD,
        "modified_at": st.one_of(st.just("2026-11-28T10:00:00Z"), ODD),
        "aum_avg_3m": NUMBER,
        "qualified_investor": FLAG,
        "assets": block({"deposits": NUMBER, "investments": NUMBER, "insurance": NUMBER}),
        "activity": block(
            {
                "transactions_90d": NUMBER,
                "products_held": st.one_of(st.lists(WORD, max_size=3), ODD),
            }
        ),
        "credit": block({"score": NUMBER, "loan_class": WORD, "credit_line": NUMBER}),
        "aml": block(
            {
                "pep": FLAG,
                "high_risk_countries": st.one_of(st.lists(TEXT, max_size=3), ODD),
                "str_count_12m": NUMBER,
            }
        ),
        "previous": block(
            {"value_tier": WORD, "below_floor_since": st.one_of(st.just("2026-05-01"), ODD)}
        ),
        "colour": st.just("red"),
    },
)


def model_verdict(record: Any) -> Cells | tuple[str, ...]:
    try:
        return Cells.from_profiles([CustomerProfile.model_validate(record)])
    except ValidationError as exc:
        return ingest.reasons(exc)


def chunk_verdict(chunk: ingest.Chunk) -> Cells | tuple[str, ...]:
    if chunk.unreadable:
        (bad,) = chunk.unreadable
        return bad.reasons
    return chunk.cells


def plain(value: Any) -> Any:
    """Lists and tuples alike (both are JSON arrays); a number keeps its type, so that an
    integer input stays one, but 5 and 5.0 of a number field are the same number."""
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if type(value) is int:
        return float(value)
    return value


def same(a: Cells | tuple[str, ...], b: Cells | tuple[str, ...]) -> bool:
    if isinstance(a, Cells) and isinstance(b, Cells):
        return plain(list(a.values.items())) == plain(list(b.values.items())) and (
            a.blocks == b.blocks
        )
    return a == b


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORDS, min_size=1, max_size=6))
def test_python_records_read_as_the_model_reads_them(records: list[dict[str, Any]]) -> None:
    chunk = ingest.from_records(enumerate(records, start=1))
    kept = iter(range(chunk.cells.n))
    reported = {u.line: u.reasons for u in chunk.unreadable}
    for line, record in enumerate(records, start=1):
        expected = model_verdict(record)
        if line in reported:
            assert reported[line] == expected
        else:
            assert same(chunk.cells.take([next(kept)]), expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORDS, min_size=1, max_size=6))
def test_json_lines_read_as_the_model_reads_them(records: list[dict[str, Any]]) -> None:
    texts = [json.dumps(r) for r in records]
    chunk = ingest.from_json_lines(enumerate(texts, start=1))
    kept = iter(range(chunk.cells.n))
    reported = {u.line: u.reasons for u in chunk.unreadable}
    for line, text in enumerate(texts, start=1):
        try:
            expected: Cells | tuple[str, ...] = Cells.from_profiles(
                [CustomerProfile.model_validate_json(text)]
            )
        except ValidationError as exc:
            expected = ingest.reasons(exc)
        if line in reported:
            assert reported[line] == expected
        else:
            assert same(chunk.cells.take([next(kept)]), expected)


def test_profiles_cells_are_their_attributes() -> None:
    """``Cells.from_profiles`` gathers a profile's cells from each model's ``__dict__``: every
    leaf (``FIELDS``) is a declared field of a frozen, extra-forbidding model, so the dict
    holds exactly what reading the attribute gives, on validated profiles as on ones made
    without validation (``model_construct``, defaults filled in) or copied with changes."""
    book = generated_bank(200, seed=5, dirty=True)
    first = book[0]
    blocks = {
        name: type(block).model_construct(**block.model_dump())
        for name, block in first
        if isinstance(block, BaseModel)
    }
    constructed = CustomerProfile.model_construct(
        **{**first.model_dump(exclude=set(blocks)), **blocks, "id": "C-built"}
    )
    copied = first.model_copy(update={"id": "C-copied", "owner_id": None})
    profiles = [*book, constructed, copied, CustomerProfile.model_validate({"id": "C-bare"})]
    cells = Cells.from_profiles(profiles)
    for f in FIELDS:
        holders = [getattr(p, f.block) if f.block else p for p in profiles]
        assert cells.values[f.path] == [None if h is None else getattr(h, f.attr) for h in holders]
    assert all(not type(p).model_computed_fields for p in (first, *blocks.values()))
