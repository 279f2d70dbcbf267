"""``crmtier calibrate`` end to end through the real CLI, on a generated history."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from calibrate_support import SENSITIVE
from click.testing import CliRunner

from connectors.sandbox.history import TRUE_AUM_FLOORS, history_lines
from crmtier.cli import cli
from crmtier.report.links import discover

PERIOD = date(2025, 6, 30)


def crmtier(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "crmtier", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_calibrate_writes_a_proposal_that_policy_validate_accepts(
    history_file: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "history.jsonl"
    bad.write_text(history_file.read_text("utf-8") + '{"period": "2025-06-30"}\n', "utf-8")
    proposal, report = tmp_path / "proposed.toml", tmp_path / "report.json"
    run = crmtier(
        "calibrate",
        bad,
        "--output",
        proposal,
        "--report",
        report,
        "--sensitive",
        ",".join(SENSITIVE),
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.startswith("line 20001: field customer: ")
    assert "proposed policy written to" in run.stdout and "(not applied)" in run.stdout
    assert "fairness age_band (proposed): FLAGGED 18-34" in run.stdout  # planted disparity
    text = proposal.read_text("utf-8")
    assert text.startswith("# PROPOSED by crmtier calibrate")
    floors = tomllib.loads(text)["value"]["tiers"]
    for tier, truth in TRUE_AUM_FLOORS.items():
        assert abs(floors[tier]["aum_floor"] - truth) / truth <= 0.05
    validate = crmtier("policy", "validate", proposal)
    assert validate.returncode == 0, validate.stderr
    figures = json.loads(report.read_text("utf-8"))
    assert figures["rows"] == {"used": 20_000, "skipped": 1, "trained_on": 10_000}
    assert set(figures["fairness"]) == set(SENSITIVE)
    assert set(figures["stability"]["inputs"]) == set(figures["model_inputs"])
    assert not set(SENSITIVE) & set(figures["model_inputs"])
    # the report next to them links both (crmtier/report/links.py)
    found, _ = discover(tmp_path)
    assert {(f.kind, f.path.name) for f in found} == {
        ("proposal", "proposed.toml"),
        ("calibration", "report.json"),
    }


def test_calibrate_starts_from_the_current_policy_file(
    small_history_file: Path, tmp_path: Path
) -> None:
    current = tmp_path / "bank.toml"
    current.write_text('name = "bank"\n[value]\nbuffer = 0.2\n', "utf-8")
    proposal = tmp_path / "proposed.toml"
    result = CliRunner().invoke(
        cli,
        [
            "calibrate",
            str(small_history_file),
            "--policy",
            str(current),
            "--output",
            str(proposal),
            "--target",
            "attrition",
        ],
    )
    assert result.exit_code == 0, result.output
    doc = tomllib.loads(proposal.read_text("utf-8"))
    assert doc["name"] == "bank-calibrated-attrition" and doc["value"]["buffer"] == 0.2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sensitive", "aum"], "--sensitive aum: is a model input"),
        (["--sensitive", "religion"], "--sensitive religion: no history row has this attribute"),
    ],
)
def test_bad_sensitive_names_are_refused(
    small_history_file: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(
        cli, ["calibrate", str(small_history_file), "--output", str(tmp_path / "p.toml"), *args]
    )
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "p.toml").exists()


def test_one_snapshot_date_is_too_little_history(tmp_path: Path) -> None:
    history = tmp_path / "h.jsonl"
    history.write_text("\n".join(history_lines(50, seed=1, periods=(PERIOD,))), "utf-8")
    result = CliRunner().invoke(
        cli, ["calibrate", str(history), "--output", str(tmp_path / "p.toml")]
    )
    assert result.exit_code == 2
    assert "1 snapshot date(s); calibrate needs two or more" in result.output


def test_without_scikit_learn_the_command_says_how_to_install_it(
    small_history_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn -> ImportError
    monkeypatch.setitem(sys.modules, "sklearn.ensemble", None)
    result = CliRunner().invoke(
        cli, ["calibrate", str(small_history_file), "--output", str(tmp_path / "p.toml")]
    )
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "Error: crmtier calibrate needs scikit-learn: pip install 'crmtier[ml]'"
    ]


def test_help_names_the_options_and_says_nothing_is_applied() -> None:
    result = CliRunner().invoke(cli, ["calibrate", "--help"])
    assert result.exit_code == 0
    for word in ("--target", "--policy", "--output", "--report", "--sensitive", "never applied"):
        assert word in " ".join(result.output.split())
    assert "calibrate" in CliRunner().invoke(cli, ["--help"]).output


def test_the_commands_docs_calibrate_md_shows_exist() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "calibrate.md").read_text("utf-8")
    shown = " ".join(doc.replace("\\\n", " ").split("```")[1].split())
    page = " ".join(CliRunner().invoke(cli, ["calibrate", "--help"]).output.split())
    options = [w for w in shown.split() if w.startswith("--")]
    assert len(options) >= 5
    assert all(option in page for option in options)


def test_a_csv_history_with_an_unknown_column_cannot_start(tmp_path: Path) -> None:
    history = tmp_path / "h.csv"
    history.write_text("period,id,colour,outcome.attrited\n2025-06-30,a,red,false\n", "utf-8")
    result = CliRunner().invoke(
        cli, ["calibrate", str(history), "--output", str(tmp_path / "p.toml")]
    )
    assert result.exit_code == 2
    assert "CSV column colour: not a canonical field" in result.output


def test_a_value_error_of_the_fit_is_a_bug_s_traceback_not_the_history_s_fault(
    small_history_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only what judges the input says "the history cannot be used" (``UnusableInput``,
    exit 2); a ``ValueError`` from inside the fit (numpy's, scikit-learn's, crmtier's) was
    shown as ``history.jsonl: Input X contains NaN.``, exit 2, its traceback lost."""

    def matrix(*args: object) -> None:
        raise ValueError("Input X contains NaN.")

    monkeypatch.setattr("crmtier.calibrate.features.matrix", matrix)
    result = CliRunner().invoke(
        cli, ["calibrate", str(small_history_file), "--output", str(tmp_path / "p.toml")]
    )
    assert isinstance(result.exception, ValueError), result.output
    assert result.exit_code == 1
    assert "contains NaN" not in result.output


Rows = list[dict[str, Any]]


def _everyone(attrited: bool) -> Callable[[Rows], Rows]:
    def held_out(rows: Rows) -> Rows:
        for row in rows:
            if row["period"] == PERIOD.isoformat():
                row["outcome"]["attrited"] = attrited
        return rows

    return held_out


def _one_held_out_row(rows: Rows) -> Rows:
    held = [row for row in rows if row["period"] == PERIOD.isoformat()]
    return [row for row in rows if row["period"] != PERIOD.isoformat()] + held[:1]


#: a held-out period on which the inputs' importance cannot be measured -> (how the
#: history is made, the target, what the one line says after the file's name)
THIN_HELD_OUT: dict[
    str, tuple[Callable[[list[dict[str, Any]]], list[dict[str, Any]]], str, str]
] = {
    "attrition-everyone-stayed": (
        _everyone(attrited=False),
        "attrition",
        "the held-out period 2025-06-30: every row has outcome.attrited = false; ROC AUC",
    ),
    "attrition-everyone-left": (
        _everyone(attrited=True),
        "attrition",
        "the held-out period 2025-06-30: every row has outcome.attrited = true; ROC AUC",
    ),
    "attrition-one-row": (
        _one_held_out_row,
        "attrition",
        "the held-out period 2025-06-30: every row has outcome.attrited = ",
    ),
    "revenue-one-row": (
        _one_held_out_row,
        "revenue",
        "the held-out period 2025-06-30: 1 row; R²",
    ),
}


@pytest.mark.parametrize("case", sorted(THIN_HELD_OUT))
def test_a_held_out_period_too_thin_to_measure_importance_is_the_history_s_fault(
    tmp_path: Path, case: str
) -> None:
    """It ended in ``cannot convert float NaN to integer`` (the importance's NaN, rounded):
    a traceback, or before ``UnusableInput`` that line blaming the history without a why."""
    make, target, said = THIN_HELD_OUT[case]
    rows = make([json.loads(line) for line in history_lines(100, 5)])
    history = tmp_path / "h.jsonl"
    history.write_text("".join(f"{json.dumps(row)}\n" for row in rows), "utf-8")
    result = CliRunner().invoke(
        cli,
        ["calibrate", str(history), "--target", target, "--output", str(tmp_path / "p.toml")],
    )
    assert isinstance(result.exception, SystemExit), result.exc_info
    assert result.exit_code == 2, result.output
    [line] = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert line.startswith(f"Error: {history}: {said}"), line
    assert not (tmp_path / "p.toml").exists()
