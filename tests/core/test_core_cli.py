"""``crmtier tier`` and ``crmtier policy`` as a user runs them: the installed console script
in a subprocess, on good, bad and CSV input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "customers.jsonl"
CRMTIER = str(Path(sys.executable).with_name("crmtier"))


def crmtier(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CRMTIER, *args], capture_output=True, text=True, timeout=120, check=False
    )


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_sample_file_is_fully_assessed_in_order() -> None:
    result = crmtier("tier", "--input", str(EXAMPLES), "--as-of", "2026-11-28")
    assert result.returncode == 0, result.stderr
    out = lines(result.stdout)
    ids = [json.loads(line)["id"] for line in EXAMPLES.read_text().splitlines()]
    assert [a["id"] for a in out] == ids
    # the sample's three corporates are on their own ladder, not the retail one
    assert {a["value_tier"] for a in out} == {
        "private",
        "wealth",
        "affluent",
        "mass",
        "unrated",
        "corporate_key",
        "corporate_small",
    }
    assert {a["aml_risk"] for a in out} == {"low", "medium", "high", "prohibited", "unrated"}
    assert {a["credit_risk"] for a in out} == {"low", "medium", "high", "unrated"}
    assert {a["ops_risk"] for a in out} == {"low", "medium", "high", "unrated"}
    assert {a["status"] for a in out} == {"rated", "partial", "unrated"}
    assert "40 assessed, 0 skipped" in result.stderr


def test_bad_lines_are_reported_and_skipped(tmp_path: Path) -> None:
    good = EXAMPLES.read_text().splitlines()[:2]
    source = tmp_path / "mixed.jsonl"
    source.write_text(
        "\n".join(
            [
                good[0],
                "{not json",
                json.dumps({"id": "X1", "assets": {"deposits": "lots"}}),
                "",
                json.dumps({"id": "X2", "credit": {"score": 1.5}, "aml": {"pep": "maybe"}}),
                "[1, 2]",
                json.dumps({"kind": "individual"}),
                good[1],
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    output = tmp_path / "out.jsonl"
    result = crmtier(
        "tier", "--input", str(source), "--output", str(output), "--as-of", "2026-11-28"
    )
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    assert errors[0].startswith("line 2: not valid JSON")
    assert (
        errors[1] == "line 3: field assets.deposits: Input should be a valid number "
        "(a finite number, or its text; not true/false)"
    )
    assert errors[2].startswith("line 5: field credit.score: ")
    assert errors[3].startswith("line 5: field aml.pep: ")
    assert errors[4] == "line 6: not a JSON object"
    assert errors[5] == "line 7: field id: Field required"
    assert "lots" not in result.stderr and "maybe" not in result.stderr  # no input echoed
    assert [a["id"] for a in lines(output.read_text())] == ["EX001", "EX002"]
    assert "2 assessed, 5 skipped" in result.stderr


def test_csv_input_with_dotted_columns_and_lists(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text(
        "id,kind,assets.deposits,assets.investments,aml.high_risk_countries,aml.pep,"
        "aml.sanctions_hit,ops.kyc_expired,activity.products_held\n"
        "C1,individual,6500000,0,,false,false,false,deposit;fund\n"
        "C2,individual,-5,60000,IR;ZZ,true,false,true,\n"
        "C3,individual,abc,,,false,false,false,\n",
        encoding="utf-8",
    )
    result = crmtier("tier", "--input", str(source), "--as-of", "2026-11-28")
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("line 4: field assets.deposits: ")
    c1, c2 = lines(result.stdout)
    assert (c1["id"], c1["value_tier"], c1["needs_tier"]) == ("C1", "private", "professional")
    assert (c2["value_tier"], c2["aml_risk"], c2["ops_risk"]) == ("affluent", "high", "medium")
    assert {(d["code"], d["field"]) for d in c2["dq_issues"]} >= {
        ("DQ_NEGATIVE", "assets.deposits"),
        ("DQ_UNKNOWN_ENUM", "aml.high_risk_countries"),
    }


def test_csv_unknown_column_stops_the_run(tmp_path: Path) -> None:
    source = tmp_path / "customers.csv"
    source.write_text("id,assets.deposit\nC1,5\n", encoding="utf-8")
    result = crmtier("tier", "--input", str(source))
    assert result.returncode == 2
    assert "CSV column assets.deposit: not a canonical field" in result.stderr


def test_bad_policy_stops_the_run(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text("[value.tiers.private]\naum_floor = 100\n", encoding="utf-8")
    result = crmtier("tier", "--input", str(EXAMPLES), "--policy", str(policy))
    assert result.returncode == 2
    assert "value.tiers.private.aum_floor: must be > value.tiers.wealth.aum_floor" in result.stderr
    assert result.stdout == ""


def test_custom_policy_changes_tiers(tmp_path: Path) -> None:
    policy = tmp_path / "cmb.toml"
    policy.write_text("[value.tiers.private]\naum_floor = 10_000_000\n", encoding="utf-8")
    result = crmtier(
        "tier", "--input", str(EXAMPLES), "--policy", str(policy), "--as-of", "2026-11-28"
    )
    assert result.returncode == 0
    out = {a["id"]: a for a in lines(result.stdout)}
    assert out["EX001"]["value_tier"] == "wealth"  # 7M is no longer private
    assert out["EX001"]["policy_version"].startswith("cmb@")


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("[value]\nbuffer = 0.2\n", 0, "ok (bank@"),
        ("[aml.weights]\ncustomer = 10\n", 1, "aml.weights: must sum to 100"),
        ("[value]\nbufer = 0.2\n", 1, "value.bufer: unknown key"),
        # a regulatory floor: refused (it validated as "ok" before)
        (
            '[aml.overrides]\nsanctions_hit = "medium"\n',
            1,
            'aml.overrides.sanctions_hit: must be "prohibited"',
        ),
    ],
)
def test_policy_validate(tmp_path: Path, text: str, code: int, expected: str) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(text, encoding="utf-8")
    result = crmtier("policy", "validate", str(path))
    assert result.returncode == code
    assert expected in (result.stdout + result.stderr)


def test_policy_show_prints_the_default_and_its_version() -> None:
    result = crmtier("policy", "show")
    assert result.returncode == 0
    assert result.stdout.startswith("# version: default@")
    assert "aum_floor = 6_000_000" in result.stdout


def test_policy_validate_and_show_name_the_waivers(tmp_path: Path) -> None:
    path = tmp_path / "bank.toml"
    path.write_text(
        '[aml.overrides]\npep = "medium"\n[regulatory.waivers]\npep = "Board decision 2026-14"\n',
        encoding="utf-8",
    )
    validated = crmtier("policy", "validate", str(path))
    assert validated.returncode == 0, validated.stderr
    assert "+waived:pep)" in validated.stdout
    assert "waives the regulatory floor 'pep': Board decision 2026-14" in validated.stdout
    shown = json.loads(crmtier("policy", "show", str(path)).stdout)
    assert shown["version"].endswith("+waived:pep")
    assert shown["regulatory_waivers"] == {"pep": "Board decision 2026-14"}
