"""Chunked ingest (tiering_core/ingest.py) and ``crmtier tier``'s use of it: one unreadable
record costs only itself, with its line and field reported, whatever its place in a chunk
or across chunk boundaries; the column checks read exactly what the model reads."""

from __future__ import annotations

import contextlib
import gc
import io
import json
from pathlib import Path
from typing import Any

import pytest
from core_support import AS_OF
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.sandbox.generator import generate
from crmtier.commands.tier import open_input, run
from tiering_core import ingest
from tiering_core.engine import assess_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

POLICY = load_policy()


def record(i: int) -> dict[str, Any]:
    return {"id": f"C{i}", "kind": "individual", "assets": {"deposits": 1000.0 * i}}


BAD = {"id": "SECRET-ID", "assets": {"deposits": "lots"}}  # text where a number belongs
DEPOSITS_REASON = (
    "field assets.deposits: Input should be a valid number "
    "(a finite number, or its text; not true/false)"
)


def test_one_bad_json_line_in_a_chunk_costs_only_itself() -> None:
    texts = [json.dumps(record(i)) for i in range(5)]
    texts[2] = json.dumps(BAD)
    chunk = ingest.from_json_lines(enumerate(texts, start=10))
    assert chunk.cells.ids == ["C0", "C1", "C3", "C4"]
    assert chunk.lines == [10, 11, 13, 14]
    assert chunk.unreadable == [ingest.Unreadable(12, (DEPOSITS_REASON,))]


def test_one_bad_record_in_a_chunk_costs_only_itself() -> None:
    records = [record(i) for i in range(5)]
    records[0] = {"id": "C0", "credit": {"score": 1.5}, "aml": {"pep": "maybe"}}
    chunk = ingest.from_records(enumerate(records, start=2))
    assert chunk.cells.ids == ["C1", "C2", "C3", "C4"]
    (bad,) = chunk.unreadable
    assert bad.line == 2
    assert [r.split(":")[0] for r in bad.reasons] == ["field credit.score", "field aml.pep"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not valid JSON (key must be a string"),
        ("[1, 2]", "not a JSON object"),
        ('{"kind": "individual"}', "field id: Field required"),
        ('{"id": "C1", "colour": "red"}', "field colour: Extra inputs are not permitted"),
    ],
)
def test_reasons_are_one_line_and_name_the_field(text: str, reason: str) -> None:
    (bad,) = ingest.from_json_lines([(7, text)]).unreadable
    assert bad.line == 7
    assert bad.reasons[0].startswith(reason)
    assert all("\n" not in r for r in bad.reasons)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), max_size=40))
def test_chunk_keeps_every_good_record_in_order_and_every_bad_line(bad: list[bool]) -> None:
    texts = [json.dumps(BAD if b else record(i)) for i, b in enumerate(bad)]
    chunk = ingest.from_json_lines(enumerate(texts, start=1))
    assert chunk.cells.ids == [f"C{i}" for i, b in enumerate(bad) if not b]
    assert [u.line for u in chunk.unreadable] == [i + 1 for i, b in enumerate(bad) if b]
    assert all(u.reasons == (DEPOSITS_REASON,) for u in chunk.unreadable)


def test_tier_run_across_chunk_boundaries() -> None:
    """Bad lines first in a chunk, last in one and mid-chunk, with blank lines shifting the
    numbering: every other record is assessed, in order, and each bad one is reported once
    with its own line number and field, without its value."""
    n = 2 * ingest.CHUNK + 50
    texts = [json.dumps(record(i)) for i in range(n)]
    bad_at = {0, ingest.CHUNK - 1, ingest.CHUNK, ingest.CHUNK + 7, n - 1}
    for i in bad_at:
        texts[i] = json.dumps(BAD)
    source = [(t + "\n").encode() for t in texts]
    source.insert(3, b"\n")  # a blank line: skipped, but it still counts as a line
    out, err = io.StringIO(), io.StringIO()
    assert run(source, "jsonl", POLICY, AS_OF, out, err) == (n - len(bad_at), len(bad_at))
    assessed = [json.loads(line)["id"] for line in out.getvalue().splitlines()]
    assert assessed == [f"C{i}" for i in range(n) if i not in bad_at]
    reported = [f"line {i + 1 + (i >= 3)}: {DEPOSITS_REASON}" for i in sorted(bad_at)]
    assert err.getvalue().splitlines() == reported
    assert "SECRET-ID" not in err.getvalue() and "lots" not in err.getvalue()
    assert gc.isenabled()


def test_tier_run_csv_reports_the_row_line() -> None:
    rows = [b"id,assets.deposits\n", b"C1,10\n", b"C2,abc\n", b"C3,\n"]
    out, err = io.StringIO(), io.StringIO()
    assert run(rows, "csv", POLICY, AS_OF, out, err) == (2, 1)
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == ["C1", "C3"]
    assert err.getvalue() == f"line 3: {DEPOSITS_REASON}\n"
    assert gc.isenabled()


def test_in_chunks_hands_over_every_chunk_and_leaves_the_collector_alone() -> None:
    seen: list[tuple[int, bool]] = []

    def handle(chunk: ingest.Chunk) -> None:
        seen.append((chunk.cells.n, gc.isenabled()))

    texts = enumerate((json.dumps(record(i)) for i in range(ingest.CHUNK + 1)), start=1)
    assert ingest.in_chunks(texts, ingest.from_json_lines, handle) == (ingest.CHUNK + 1, 0)
    assert seen == [(ingest.CHUNK, True), (1, True)]

    def fail(chunk: ingest.Chunk) -> None:
        raise RuntimeError("output closed")

    with pytest.raises(RuntimeError):
        ingest.in_chunks(enumerate([json.dumps(record(1))]), ingest.from_json_lines, fail)
    assert gc.isenabled()


@pytest.mark.parametrize(
    ("fmt", "text"),
    [
        ("jsonl", "\ufeff" + "".join(json.dumps(record(i)) + "\r\n" for i in (1, 2))),
        ("csv", "\ufeffid,assets.deposits\r\nC1,5\r\nC2,\r\n"),
    ],
)
def test_open_input_drops_a_bom_and_reads_crlf_lines(tmp_path: Path, fmt: str, text: str) -> None:
    path = tmp_path / f"customers.{fmt}"
    path.write_bytes(text.encode("utf-8"))
    out, err = io.StringIO(), io.StringIO()
    with open_input(path) as source:
        assert run(source, fmt, POLICY, AS_OF, out, err) == (2, 0), err.getvalue()
    assert [json.loads(line)["id"] for line in out.getvalue().splitlines()] == ["C1", "C2"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["good", "not json", "not utf-8", "rejected"]), max_size=30))
def test_lines_that_do_not_parse_cost_only_themselves(kinds: list[str]) -> None:
    """The chunk is parsed in one pass that resumes after each line that does not parse:
    wherever such lines fall (first, last, in a row), every other line is kept, in order."""
    texts: list[str | bytes | ingest.Rejected] = []
    for i, kind in enumerate(kinds):
        good = json.dumps(record(i)).encode()
        bad = {"not json": b"{" + good, "not utf-8": good.replace(b'"C', b'"\xffC')}
        texts.append(ingest.Rejected("cut") if kind == "rejected" else bad.get(kind, good))
    chunk = ingest.from_json_lines(enumerate(texts, start=1))
    assert chunk.cells.ids == [f"C{i}" for i, kind in enumerate(kinds) if kind == "good"]
    assert [(u.line, u.reasons[0].split(" (")[0]) for u in chunk.unreadable] == [
        (i + 1, {"rejected": "cut", "not json": "not valid JSON"}.get(kind, "not UTF-8 text"))
        for i, kind in enumerate(kinds)
        if kind != "good"
    ]


def test_tier_output_is_each_readable_records_assessment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``crmtier tier`` on a generated book (dirty values, missing fields and blocks, text
    in numeric fields, a line that is not JSON, a duplicate id, a non-ASCII id), across
    chunk boundaries: exactly the lines of the model path, record by record (validate the
    line, assess it, ``model_dump_json``), byte for byte, and the other records reported."""
    monkeypatch.setattr(ingest, "CHUNK", 97)
    raw = [{"id": c.id, **c.profile} for c in generate(400, seed=7)]
    raw[5]["id"] = "客户-Ω-5"
    raw[250]["id"] = raw[249]["id"]
    lines = [json.dumps(r, ensure_ascii=False).encode() for r in raw]
    lines[120] = b"{not json"
    out, err = io.StringIO(), io.StringIO()
    assessed, skipped = run([line + b"\n" for line in lines], "jsonl", POLICY, AS_OF, out, err)
    profiles: dict[str, CustomerProfile] = {}
    for line in lines:
        with contextlib.suppress(ValidationError):
            profile = CustomerProfile.model_validate_json(line)
            profiles.setdefault(profile.id, profile)
    expected = [a.model_dump_json() for a in assess_batch(list(profiles.values()), POLICY, AS_OF)]
    assert out.getvalue().splitlines() == expected
    assert (assessed, skipped) == (len(expected), len(lines) - len(expected))
    assert len(err.getvalue().splitlines()) == skipped > 2
