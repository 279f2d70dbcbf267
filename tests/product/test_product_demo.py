"""``crmtier demo`` end to end, as a user runs it: a subprocess per CRM, small seed."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from product_chromium import assert_report_drawn, needs_chromium
from product_crms import CRM_PARAMS

from connectors.sandbox.generator import generate


def run_demo(*args: str, cwd: Path, tmpdir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "crmtier", "demo", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


Demo = tuple[subprocess.CompletedProcess[str], Path]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Demo]:
    """Runs the demo once per CRM for the whole module (it is the slow part)."""
    cache: dict[str, Demo] = {}

    def get(crm: str) -> Demo:
        if crm not in cache:
            base = tmp_path_factory.mktemp(f"demo-{crm}")
            out_dir = base / "out"
            # relative, as the README shows it: every file must land inside it
            done = run_demo(
                "--crm", crm, "--customers", "30", "--output-dir", "out", cwd=base, tmpdir=base
            )
            cache[crm] = (done, out_dir)
        return cache[crm]

    return get


@pytest.mark.parametrize("crm", CRM_PARAMS)
def test_demo_runs_the_whole_product_and_writes_the_report(
    crm: str, demo: Callable[[str], Demo]
) -> None:
    done, out_dir = demo(crm)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for heading in (
        "Value tiers in the CRM",
        "Runs and API calls",
        "full sync",
        "webhooks",
        "incremental sync",
        "follow-up tasks in the CRM",
        "campaign memberships in the CRM",
        "Data-quality issues",
    ):
        assert heading in out, heading
    # planned = written, by rule and campaign: nothing the policy produced is left unwritten
    assert "First sync by task rule and campaign" in out
    assert "Every task and membership the first sync planned was written." in out
    assert "value mass → private (×3)" in out  # the demo's own upgrade check enforces it too
    assert "AML low → prohibited" in out or "AML medium → prohibited" in out
    assert "task: Enhanced due diligence review" in out
    assert "90-day grace period" in out
    report = out_dir / "report.html"
    assert f"Report: {report}" in out.replace("\n", "")
    html = report.read_text(encoding="utf-8")
    assert 'data-chart="dist-value_tier"' in html and 'data-chart="migration"' in html
    assert 'data-table="feedback"' in html
    assert (out_dir / "crmtier.toml").exists()  # kept because --output-dir was given
    assert sorted(p.name for p in out_dir.iterdir()) == [
        "crmtier.toml",
        "report.html",
        "sandbox",
    ]
    # canary PII the sandbox seeded never leaves the CRM: not in the output, the report or
    # the state store (docs/data-handling.md)
    store = b"".join(p.read_bytes() for p in (out_dir / "sandbox").glob("crmtier.db*"))
    assert store
    for customer in generate(30):
        for value in customer.pii.values():
            assert value not in out + done.stderr + html
            assert value.encode() not in store
    # the sandbox credentials (kept on disk by the sandboxes that persist them) are never shown
    for saved in (out_dir / "sandbox").glob("credentials.json"):
        for value in json.loads(saved.read_text("utf-8")).values():
            assert str(value) not in out + done.stderr + html


def test_demo_shows_a_household_lifted_into_private_banking(
    demo: Callable[[str], Demo],
) -> None:
    """Issue 21 §1: on the sandbox with households (Salesforce), the summary names one
    household by its primary member's pseudonym, and the HOUSEHOLD_AUM reason."""
    done, _ = demo("salesforce")
    assert done.returncode == 0, done.stderr[-2000:]
    out = " ".join(done.stdout.split())  # rich wraps long lines
    line = re.search(
        r"Household of (cust_[0-9a-f]{20}): (\d+) of (\d+) members lifted into private "
        r"banking, reason HOUSEHOLD_AUM \(household AUM at or above the 6,000,000 floor\)",
        out,
    )
    assert line is not None, out[-1500:]
    assert 1 <= int(line.group(2)) < int(line.group(3))  # the depositor needs no lift
    assert "households are opt-in: the sync writes this once the policy switches them on" in out


def test_demo_cleans_up_without_output_dir(tmp_path: Path) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    done = run_demo("--customers", "30", cwd=tmp_path, tmpdir=tmpdir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert list(tmpdir.iterdir()) == []  # sandbox data, config and state store removed
    assert (tmp_path / "crmtier-demo" / "report.html").stat().st_size > 10_000
    assert "removed" in done.stdout


def test_bad_input_is_one_line_and_nonzero(tmp_path: Path) -> None:
    done = run_demo("--crm", "dynamics", cwd=tmp_path, tmpdir=tmp_path)
    assert done.returncode != 0
    assert "dynamics" in done.stderr and done.stdout == ""


@pytest.mark.browser
@needs_chromium
def test_demo_report_draws_in_chromium(demo: Callable[[str], Demo]) -> None:
    done, out_dir = demo("salesforce")
    assert done.returncode == 0, done.stderr[-2000:]
    # every known level is drawn, also at zero: 9 value tiers (the retail and corporate
    # ladders), 3 needs, 4 credit and ops
    # levels, 5 AML levels; value x AML is drawn only in the restricted section
    assert_report_drawn(
        out_dir / "report.html",
        {
            "dist-value_tier": 9,
            "dist-needs_tier": 3,
            "dist-aml_risk": 5,
            "value-risk-0": 36,
            "value-risk-1": 36,
            "restricted-1": 45,
        },
    )


def test_a_failure_is_one_line_exit_1_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any failure inside the demo (here: the sandbox cannot start) ends with one line on
    stderr, exit status 1, and the temporary directory removed."""
    import tempfile

    from click.testing import CliRunner

    from crmtier.cli import cli
    from crmtier.demo import orchestrate

    def no_sandbox(*args: object, **kwargs: object) -> None:
        raise OSError("cannot bind 127.0.0.1: address in use")

    monkeypatch.setattr(orchestrate, "open_sandbox", no_sandbox)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["demo", "--customers", "20"])
    assert result.exit_code == 1
    assert result.stderr == "crmtier demo: failed: cannot bind 127.0.0.1: address in use\n"
    assert list(tmp_path.iterdir()) == []
