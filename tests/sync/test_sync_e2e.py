"""`crmtier sync` end to end, as a subprocess, against each CRM's sandbox over HTTPS.

First run writes every tier; a second run with no CRM change makes no write call; after 10
customers change in the CRM, only their writes happen. The audit trail verifies.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

import pytest
import sqlalchemy as sa

from sync import schema
from sync.store import StateStore
from tests.sync.conftest import CRMTIER, Harness, available_crms, start_sandbox, store_files
from tiering_core.models import ValueTier

CUSTOMERS = 240
# One assessment day for every run of a test, even one that spans midnight UTC: a run on
# a new day re-assesses every customer (so "nothing changed: no write" would not hold).
AS_OF = datetime.now(UTC).date().isoformat()
VALUE_TIERS = set(get_args(ValueTier))  # both ladders: corporates have their own


@pytest.fixture(params=available_crms())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    sandbox = start_sandbox(request.param, tmp_path / "sandbox", CUSTOMERS)
    request.addfinalizer(sandbox.stop)
    return Harness(sandbox, tmp_path / "sandbox")


def test_first_run_writes_every_tier_then_nothing_then_only_the_changed(harness: Harness) -> None:
    sb = harness.sandbox
    first = harness.run("--as-of", AS_OF)
    assert first.returncode == 0, (first.report, first.stderr[-2000:])
    assert first.report is not None
    counts = first.report["counts"]
    assert first.report["status"] == "succeeded"
    assert counts["read"] == CUSTOMERS
    assert counts["written"] + counts["unchanged"] == CUSTOMERS
    ids = harness.customer_ids()
    assert len(ids) == CUSTOMERS
    for cid in ids:
        assert sb.written(cid).get("value_tier") in VALUE_TIERS, cid
    task_keys = [t.external_id for t in sb.tasks()]
    assert len(task_keys) == len(set(task_keys)) > 0  # no duplicate tasks

    calls = sb.write_calls()
    second = harness.run("--as-of", AS_OF)
    assert second.returncode == 0, (second.report, second.stderr[-2000:])
    assert second.report is not None
    assert sb.write_calls() == calls  # nothing changed: not one write call
    assert second.report["counts"]["written"] == 0
    assert (
        second.report["counts"]["unchanged"] + sum(second.report["counts"]["skipped"].values())
        == second.report["counts"]["read"]
    )

    before = {cid: sb.written(cid) for cid in ids}
    edited = [cid for cid in ids if before[cid].get("value_tier") in ("mass", "affluent")][:10]
    assert len(edited) == 10
    for cid in edited:
        sb.edit_customer(cid, {"assets.deposits": 90_000_000, "aum_avg_3m": 90_000_000})
    third = harness.run("--as-of", AS_OF)
    assert third.returncode == 0, (third.report, third.stderr[-2000:])
    assert third.report is not None
    assert third.report["counts"]["written"] == 10, third.report
    assert third.report["counts"]["writes"]["field_update"] == 10
    after = {cid: sb.written(cid) for cid in ids}
    changed = {cid for cid in ids if after[cid] != before[cid]}
    assert changed == set(edited)
    assert all(after[cid]["value_tier"] == "private" for cid in edited)
    # Never more calls than items (batched CRMs: far fewer); per-CRM minimality is the bench of
    # docs/targets.md P1.
    writes_by_call = sb.write_calls() - calls
    assert 1 <= writes_by_call <= sum(third.report["counts"]["writes"].values())

    verify = harness.audit_verify()
    assert verify.returncode == 0, verify.stderr
    assert "intact" in verify.stdout


def test_dry_run_shows_the_plan_and_writes_nothing(harness: Harness) -> None:
    dry = harness.run("--dry-run", "--show-restricted", "--as-of", AS_OF)  # EDD tasks too
    assert dry.returncode == 0, dry.stderr
    assert dry.report is not None
    assert harness.sandbox.write_calls() == 0
    preview = dry.report["preview"]
    field_customers = {p["customer_id"] for p in preview if p["kind"] == "field_update"}
    kinds = Counter(p["kind"] for p in preview)
    assert field_customers
    assert dry.report["counts"]["written"] == CUSTOMERS - dry.report["counts"]["unchanged"]
    real = harness.run("--as-of", AS_OF)
    assert real.report is not None
    writes = real.report["counts"]["writes"]
    # exactly what the preview showed was written
    assert writes["field_update"] == len(field_customers)
    assert writes.get("task", 0) == kinds["task"]
    assert writes.get("membership", 0) == kinds["membership"]
    assert real.report["counts"]["written"] == dry.report["counts"]["written"]


def test_bad_config_is_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "crmtier.toml"
    bad.write_text('[crm]\nkind = "salesforce"\nclient_secret = "s3cr3t-literal"\n', "utf-8")
    proc = subprocess.run([CRMTIER, "sync", "--config", str(bad)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "[crm] client_secret" in proc.stderr
    assert "s3cr3t-literal" not in proc.stderr


def test_logs_and_store_hold_no_secret_and_no_personal_data(harness: Harness) -> None:
    """S1/S2: a DEBUG-level run names customers only by pseudonym and prints no secret;
    the state store holds no canary PII."""
    from connectors.sandbox.generator import generate

    run = harness.run("--log-level", "DEBUG")
    assert run.returncode == 0, run.stderr[-2000:]
    secrets = [v for k, v in harness.env.items() if k.startswith("CRMTIER_") and len(v) >= 8]
    assert secrets
    canaries = [v for c in generate(CUSTOMERS) for v in c.pii.values() if len(v) >= 6]
    output = run.stderr + json.dumps(run.report)
    db = Path(harness.state_url().removeprefix("sqlite:///"))
    store_bytes = b"".join(p.read_bytes() for p in store_files(db))
    for value in secrets:
        assert value not in output
    for value in canaries:
        assert value not in output
        assert value.encode() not in store_bytes
    assert "run finished" in run.stderr  # the log was written: the scans below are not vacuous
    ids = harness.customer_ids()
    assert len(ids) == CUSTOMERS
    assert [cid for cid in ids if cid in run.stderr] == []


def test_scheduled_mode_runs_repeatedly_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The CLI's schedule, not a CRM feature: checked on the first available sandbox."""
    crm = available_crms()[0]
    sandbox = start_sandbox(crm, tmp_path / crm, 30)
    try:
        harness = Harness(sandbox, tmp_path / crm)
        proc = harness.popen("--every", "1s", "--quiet")
        try:
            store = StateStore.open(harness.state_url())
            try:
                finished = 0
                while finished < 2:
                    if proc.poll() is not None:
                        _, stderr = proc.communicate()
                        pytest.fail(
                            f"crmtier sync --every exited {proc.returncode} after {finished} "
                            f"runs: {stderr[-2000:]}"
                        )
                    with store.begin() as conn:
                        finished = conn.execute(
                            sa.select(sa.func.count()).where(schema.runs.c.status == "succeeded")
                        ).scalar_one()
                    time.sleep(0.2)
            finally:
                store.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
    finally:
        sandbox.stop()
    assert proc.returncode == 0
