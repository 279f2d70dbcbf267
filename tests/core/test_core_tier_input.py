"""``crmtier tier`` on hostile and broken input, through its command line (click's runner):
each broken record is one ``line N: ...`` line on stderr and costs only itself, the rest is
assessed, the exit status is 1; a parseable but implausible value is a DQ issue; and no
input whatever produces a traceback or loses a record without a word."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crmtier.commands.tier import command

BIG = 10 * 1024 * 1024  # 10 MB
NUMBER = "Input should be a valid number (a finite number, or its text; not true/false)"
INTEGER = (
    "Input should be a valid integer (a whole number within ±2**53, or its text; not true/false)"
)
SUMMARY = re.compile(r"crmtier tier: (\d+) assessed, (\d+) skipped")


def tier(tmp_path: Path, name: str, data: bytes) -> Result:
    path = tmp_path / name
    path.write_bytes(data)
    return CliRunner().invoke(command, ["--input", str(path), "--as-of", "2026-11-28"])


def jsonl(*records: Any) -> bytes:
    return b"".join(
        (r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records
    )


def assessed(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def problems(result: Result) -> list[str]:
    return [line for line in result.stderr.splitlines() if not SUMMARY.match(line)]


CASES = [
    pytest.param(
        "c.jsonl",
        jsonl({"id": "A1"}, b'{"id": "A\xff2"}', {"id": "A3"}),
        ["line 2: not UTF-8 text (at column 10)"],
        ["A1", "A3"],
        id="invalid-utf8-jsonl",
    ),
    pytest.param(
        "c.csv",
        b"id,kind\nA1,individual\nA\xff2,individual\nA3,corporate\n",
        ["line 3: not UTF-8 text (at column 2)"],
        ["A1", "A3"],
        id="invalid-utf8-csv",
    ),
    pytest.param(
        "c.jsonl",
        jsonl(b'{"id": "B1", "credit": {"score": ' + b"9" * 401 + b"}}", {"id": "B2"}),
        [f"line 1: field credit.score: {INTEGER}"],
        ["B2"],
        id="401-digit-integer",
    ),
    pytest.param(
        "c.csv",
        b"id,assets.deposits\nC1,5,extra\nC2,6\n",
        ["line 2: 3 cells, but the header names 2 columns"],
        ["C2"],
        id="csv-extra-cells",
    ),
    pytest.param(
        "c.csv",
        b"id,assets.deposits\nD1," + b"1" * BIG + b"\nD2,5\n",
        ["line 2: a cell is longer than 131,072 characters"],
        ["D2"],
        id="csv-10mb-cell",
    ),
    pytest.param(
        "c.csv",
        b'id,kind\nE1,"individual\nE2,corporate\nE3,individual\n',
        ["line 2: unterminated quote (a record is one line)"],
        ["E2", "E3"],
        id="csv-unterminated-quote",
    ),
    pytest.param(
        "c.jsonl",
        jsonl({"id": "F1", "assets": {"deposits": True}}, {"id": "F2"}),
        [f"line 1: field assets.deposits: {NUMBER}"],
        ["F2"],
        id="true-as-a-number",
    ),
    pytest.param(
        "c.jsonl",
        jsonl({"id": "G1"}, {"id": "G2"}, {"id": "G1", "kind": "corporate"}),
        ["line 3: field id: duplicate of line 1; skipped"],
        ["G1", "G2"],
        id="duplicate-id",
    ),
    pytest.param(
        "c.csv",
        b"id,kind\nG1,individual\nG1,corporate\n",
        ["line 3: field id: duplicate of line 2; skipped"],
        ["G1"],
        id="duplicate-id-csv",
    ),
    pytest.param(
        "c.jsonl",
        jsonl({"id": "H" * BIG}, {"id": "H2"}),
        ["line 1: field id: String should have at most 255 characters"],
        ["H2"],
        id="10mb-id",
    ),
]


@pytest.mark.filterwarnings("error")  # a numpy overflow warning fails the case
@pytest.mark.parametrize(("name", "data", "expected", "ids"), CASES)
def test_each_broken_record_costs_only_itself(
    tmp_path: Path, name: str, data: bytes, expected: list[str], ids: list[str]
) -> None:
    result = tier(tmp_path, name, data)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 1
    assert problems(result) == expected
    assert [a["id"] for a in assessed(result)] == ids
    assert f"{len(ids)} assessed, {len(expected)} skipped" in result.stderr


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize(
    ("value", "code"),
    [(1e308, "DQ_IMPOSSIBLE"), (1e16, "DQ_IMPOSSIBLE"), (-1e308, "DQ_NEGATIVE")],
)
def test_an_implausible_amount_is_a_dq_issue_not_a_tier(
    tmp_path: Path, value: float, code: str
) -> None:
    record = {
        "id": "I1",
        "kind": "individual",
        "assets": {"deposits": value, "investments": 10_000.0, "insurance": 0.0},
    }
    result = tier(tmp_path, "c.jsonl", jsonl(record))
    assert result.exit_code == 0, result.stderr
    (out,) = assessed(result)
    assert out["value_tier"] == "mass"  # AUM 10,000: the implausible deposits are ignored
    issues = {(d["code"], d["field"]) for d in out["dq_issues"]}
    assert (code, "assets.deposits") in issues
    assert "inf" not in result.stdout.lower()


def physical_records(data: bytes) -> int:
    """Non-blank lines as the command reads them (binary lines, a first-line BOM dropped)."""
    lines = data.split(b"\n")
    lines[0] = lines[0].removeprefix(b"\xef\xbb\xbf")
    return sum(1 for line in lines if line and not line.isspace())


FRAGMENTS = st.sampled_from(
    [
        b"{",
        b"}",
        b"[",
        b"]",
        b'"id"',
        b":",
        b",",
        b'"C1"',
        b'"assets"',
        b'{"deposits": ',
        b"1e308",
        b"9" * 30,
        b"true",
        b"null",
        b'"\\ud800"',
        b"\xff",
        b"\xc3",
        b"\n",
        b"\r\n",
        b'"',
        b";",
        b"-",
        b"\x00",
    ]
)
BYTES = st.one_of(st.binary(max_size=400), st.lists(FRAGMENTS, max_size=60).map(b"".join))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=BYTES, fmt=st.sampled_from(["jsonl", "csv"]))
# a CSV line of a control character str.isspace() counts as blank: once dropped unreported
@example(data=b"\x1c", fmt="csv")
@example(data=b"\x1f\n\x85", fmt="csv")
def test_arbitrary_bytes_never_produce_a_traceback(tmp_path: Path, data: bytes, fmt: str) -> None:
    """Every record is assessed or reported, one line each; the exit status says which."""
    if fmt == "csv":
        data = b"id,kind,assets.deposits,aml.high_risk_countries\n" + data
    result = tier(tmp_path, f"c.{fmt}", data)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exc_info
    assert "Traceback" not in result.stderr
    summary = SUMMARY.search(result.stderr)
    assert summary, result.stderr
    good, bad = int(summary[1]), int(summary[2])
    assert len(assessed(result)) == good
    expected = physical_records(data) - (1 if fmt == "csv" else 0)
    assert good + bad == expected
    assert result.exit_code == (1 if bad else 0)
    assert all(line.startswith("line ") for line in problems(result))
