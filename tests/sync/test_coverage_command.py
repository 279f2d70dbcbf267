"""`crmtier coverage` end to end on each CRM's sandbox (issue 21 §2): one full read,
proposals within the roster's free capacity, and an RM at capacity gets no new private
client; a bad roster is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.sync.conftest import CRMTIER, Harness, available_crms, start_sandbox
from tiering_core.policy import load_policy

CUSTOMERS = 240
WEIGHT = load_policy().coverage.weight


@pytest.fixture(params=available_crms())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    sandbox = start_sandbox(request.param, tmp_path / "sandbox", CUSTOMERS)
    request.addfinalizer(sandbox.stop)
    return Harness(sandbox, tmp_path / "sandbox")


def coverage(harness: Harness, roster: str) -> subprocess.CompletedProcess[str]:
    path = harness.data_dir / "roster.toml"
    path.write_text(roster, "utf-8")
    return subprocess.run(
        [CRMTIER, "coverage", "--config", str(harness.config), "--roster", str(path), "--json"],
        env=harness.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_proposals_stay_within_free_capacity(harness: Harness) -> None:
    # NEW has room for 3 private-equivalents; FULL is at capacity with no clients of its own
    # (capacity must be positive: 0.25 holds no private and no wealth client).
    run = coverage(harness, "[coverage.advisors]\nNEW = 3\nFULL = 0.25\n")
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    needing = sum(out["needing"].values())
    assert needing > 3 and out["api_calls"] > 0
    assert {p["advisor_id"] for p in out["proposals"]} == {"NEW"}
    assert sum(WEIGHT(p["tier"]) for p in out["proposals"]) <= 3
    assert len(out["proposals"]) + len(out["waiting"]) == needing  # no owner is on the roster
    full = next(b for b in out["books"] if b["advisor_id"] == "FULL")
    assert full["clients"] == 0 and full["load"] == 0


def test_a_bad_roster_is_one_line_and_exit_2(harness: Harness) -> None:
    run = coverage(harness, "[coverage]\nrm_tiers = []\n")
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "[coverage.advisors]: required" in run.stderr
