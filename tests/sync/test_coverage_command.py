"""`crmtier coverage` end to end on each CRM's sandbox (issue 21 §2): one full read,
proposals within the roster's free capacity, an RM at capacity (a real owner whose book is
full) gets no new private client, ``--write`` puts one task per proposal in the managers'
queue and a rerun writes nothing; a bad roster is one line and exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from connectors.registry import default_mapping
from connectors.sandbox.base import Sandbox
from connectors.sandbox.generator import OWNER_NUMBERS, rm_capacity
from connectors.sandbox.salesforce_seed import user_id
from connectors.sandbox.zoho import zoho_user_id
from tests.sync.conftest import CRMTIER, Harness, available_crms, start_sandbox
from tiering_core.policy import load_policy

CUSTOMERS = 240
POLICY = load_policy()
WEIGHT = POLICY.coverage.weight


@pytest.fixture(params=available_crms())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    sandbox = start_sandbox(request.param, tmp_path / "sandbox", CUSTOMERS)
    request.addfinalizer(sandbox.stop)
    return Harness(sandbox, tmp_path / "sandbox")


def coverage(harness: Harness, roster: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    """``crmtier coverage --json`` with this roster file (None: no ``--roster``)."""
    path = harness.data_dir / "roster.toml"
    if roster is not None:
        path.write_text(roster, "utf-8")
    given = ["--roster", str(path)] if roster is not None else []
    return subprocess.run(
        [CRMTIER, "coverage", "--config", str(harness.config), "--json", *given, *args],
        env=harness.env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def owner_ids(sb: Sandbox) -> list[str]:
    """Every record owner the generator can give (``U00001``..``U00039``), as CRM user ids."""
    generated = [f"U{n:05d}" for n in OWNER_NUMBERS]
    if sb.crm == "salesforce":
        return [str(user_id(u)) for u in generated]
    if sb.crm == "zoho":
        return [zoho_user_id(u) for u in generated]
    return generated


def books(harness: Harness, roster: str | None) -> dict[str, dict[str, float]]:
    run = coverage(harness, roster)
    assert run.returncode == 0, run.stderr[-2000:]
    return {b["advisor_id"]: b for b in json.loads(run.stdout)["books"]}


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


def test_an_rm_at_capacity_gets_no_new_private_clients_and_proposals_reach_the_queue(
    harness: Harness,
) -> None:
    sb = harness.sandbox
    # Every owner on the roster with room to spare: their books as the CRM holds them.
    roomy = "".join(f'"{o}" = 100000\n' for o in owner_ids(sb))
    before = books(harness, "[coverage.advisors]\n" + roomy)
    full, book = max(before.items(), key=lambda kv: (kv[1]["load"], kv[0]))
    assert book["clients"] > 0
    # That RM now exactly at capacity, one new RM with room for three private clients.
    roster = f'[coverage.advisors]\n"{full}" = {book["load"]}\nNEW = 3\n'
    run = coverage(harness, roster, "--write")
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    after = {b["advisor_id"]: b for b in out["books"]}
    assert after[full] == {**book, "capacity": book["load"]}  # kept every client, got none
    assert out["proposals"] and {p["advisor_id"] for p in out["proposals"]} == {"NEW"}
    assert any(p["tier"] == "private" for p in out["proposals"])
    assert sum(WEIGHT(p["tier"]) for p in out["proposals"]) <= 3
    # --write: one task per proposal in the managers' queue, naming the proposed RM
    queue = default_mapping(sb.crm).writeback.queues[POLICY.coverage.queue]
    tasks = {t.customer_id: t for t in sb.tasks() if "Assign RM" in t.subject}
    assert set(tasks) == {p["customer_id"] for p in out["proposals"]}
    assert all(t.owner == queue and "NEW" in t.subject for t in tasks.values())
    assert out["written"]["made"] == len(tasks) and out["written"]["failed"] == []
    assert out["written"]["api_calls"] > 0
    # a rerun proposes the same and makes nothing: no write call, no second task
    again = json.loads(coverage(harness, roster, "--write").stdout)
    assert again["proposals"] == out["proposals"]
    assert {k: v for k, v in again["written"].items() if k != "run_id"} == {
        "made": 0,
        "already": len(tasks),
        "failed": [],
        "api_calls": 0,
    }
    assert len([t for t in sb.tasks() if "Assign RM" in t.subject]) == len(tasks)
    verified = harness.audit_verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_where_the_bank_opts_in_the_proposed_rm_becomes_the_owner(harness: Harness) -> None:
    sb = harness.sandbox
    with harness.config.open("a", encoding="utf-8") as f:
        f.write('\n[coverage]\nassign = "owner"\n')
    roomy = "".join(f'"{o}" = 100000\n' for o in owner_ids(sb))
    before = books(harness, "[coverage.advisors]\n" + roomy)
    ranked = sorted(before.items(), key=lambda kv: (-kv[1]["load"], kv[0]))
    (full, full_book), (rm, rm_book) = ranked[0], ranked[1]
    # two real users: one exactly at capacity, one with room for three private clients
    room = rm_book["load"] + 3
    roster = f'[coverage.advisors]\n"{full}" = {full_book["load"]}\n"{rm}" = {room}\n'
    tasks_before = len(sb.tasks())
    run = coverage(harness, roster, "--write")
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout)
    moved = {p["customer_id"] for p in out["proposals"]}
    assert moved and {p["advisor_id"] for p in out["proposals"]} == {rm}
    assert out["written"]["made"] == len(moved) and out["written"]["failed"] == []
    assert len(sb.tasks()) == tasks_before  # owners changed, no proposal task
    # the CRM now holds them in the RM's book, within capacity; the full RM kept its own
    after = books(harness, roster)
    assert after[rm]["clients"] == rm_book["clients"] + len(moved)
    assert after[rm]["load"] <= room
    assert (after[full]["clients"], after[full]["load"]) == (
        full_book["clients"],
        full_book["load"],
    )
    again = json.loads(coverage(harness, roster, "--write").stdout)
    assert not moved & {p["customer_id"] for p in again["proposals"]}  # nothing asked twice
    verified = harness.audit_verify()
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_an_owner_assignment_the_config_cannot_name_is_refused_at_load(harness: Harness) -> None:
    with harness.config.open("a", encoding="utf-8") as f:
        f.write('\n[coverage]\nassign = "owners"\n')
    run = coverage(harness, "[coverage.advisors]\nNEW = 3\n", "--write")
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "[coverage] assign" in run.stderr


#: The custom user field each sandbox keeps RMs' capacities in.
USER_FIELD = {"salesforce": "RM_Capacity__c", "zoho": "RM_Capacity"}


def test_capacities_are_read_from_the_crm_users_and_the_roster_file_wins(
    harness: Harness,
) -> None:
    sb = harness.sandbox
    with harness.config.open("a", encoding="utf-8") as f:
        f.write(f'\n[coverage]\ncapacity_field = "{USER_FIELD.get(sb.crm, "RM_Capacity__c")}"\n')
    run = coverage(harness, None)
    if sb.crm not in USER_FIELD:  # FXiaoke: capacities come from the roster file only
        assert run.returncode == 2 and "[coverage] capacity_field" in run.stderr
        assert run.stderr.count("\n") == 1
        return
    assert run.returncode == 0, run.stderr[-2000:]
    read = {b["advisor_id"]: b["capacity"] for b in json.loads(run.stdout)["books"]}
    # the RMs are the users whose field holds a capacity (Salesforce has a User only for an
    # owner the seed gave customers), each with their own capacity
    seeded = {o: rm_capacity(n) for o, n in zip(owner_ids(sb), OWNER_NUMBERS, strict=True)}
    assert len(read) > 30 and read == {o: seeded[o] for o in read}
    first = min(read)
    corrected = books(harness, f'[coverage.advisors]\n"{first}" = 2\nNEW = 5\n')
    assert corrected[first]["capacity"] == 2 and corrected["NEW"]["capacity"] == 5
    assert len(corrected) == len(read) + 1


def test_write_without_the_task_prerequisite_is_refused_before_any_write(tmp_path: Path) -> None:
    """``--write`` makes tasks, so it is gated as a sync is: a Zoho grant without
    ``ZohoCRM.coql.READ`` (every task's key look-up) is one line and exit 2 before the
    book is read, nothing written (ungated, the command read the book and would fail at
    its first proposal task)."""
    if "zoho" not in available_crms():
        pytest.skip("the Zoho sandbox or connector is not in the tree")
    sandbox = start_sandbox("zoho", tmp_path / "sandbox", 40, coql_scope=False)
    try:
        harness = Harness(sandbox, tmp_path / "sandbox")
        roster = "[coverage.advisors]\n" + "".join(f'"{o}" = 30\n' for o in owner_ids(sandbox))
        run = coverage(harness, roster, "--write")
        assert run.returncode == 2, (run.stdout[-1000:], run.stderr[-2000:])
        [line] = run.stderr.strip().splitlines()
        assert "tasks are on" in line and "ZohoCRM.coql.READ" in line
        assert sandbox.write_calls() == 0
    finally:
        sandbox.stop()
