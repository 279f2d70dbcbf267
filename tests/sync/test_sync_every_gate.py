"""``crmtier sync --every`` checks the enabled write kinds' CRM prerequisites at every tick
(``sync.write_readiness``): a right an admin revokes after the schedule started refuses
that tick with the one line, and the schedule keeps its ticks, running again once the
right is back, as it does when no worker is alive. Before, the refusal left the loop and
ended the scheduler (exit 2), and a CRM unreachable at a tick's check ended it with exit 1.

Real parts: the Salesforce sandbox over HTTPS, a ``crmtier sync --every 1s`` process, its
SQLite store. The revocation is the External ID field on Task removed from the live org
(tasks upsert by it; without it Salesforce refuses the upsert whole)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.sandbox.salesforce import SalesforceSandbox
from sync import schema
from sync.store import StateStore
from tests.sync.conftest import Harness, start_sandbox

KEY = "Crmtier_Key__c"


def _succeeded(harness: Harness) -> int:
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            query = sa.select(sa.func.count()).where(schema.runs.c.status == "succeeded")
            return int(conn.execute(query).scalar_one())
    finally:
        store.close()


def _until(proc: subprocess.Popen[str], done: Callable[[], bool], what: str) -> None:
    """Poll until ``done``; the scheduler leaving before that is the failure."""
    while not done():
        if proc.poll() is not None:
            _, stderr = proc.communicate()
            pytest.fail(f"crmtier sync --every exited {proc.returncode} {what}: {stderr[-2000:]}")
        time.sleep(0.2)


def test_a_tick_refused_at_its_start_check_keeps_the_schedule(tmp_path: Path) -> None:
    sandbox = start_sandbox("salesforce", tmp_path / "salesforce", 30)
    assert isinstance(sandbox, SalesforceSandbox)
    try:
        harness = Harness(sandbox, tmp_path / "salesforce")
        proc = harness.popen("--every", "1s", "--quiet")
        try:
            _until(proc, lambda: _succeeded(harness) >= 1, "before its first run")
            task = sandbox.org.schema["Task"]
            field = task.fields.pop(KEY)  # an admin deletes the field the tasks upsert by
            # later ticks' start checks (one describe of Task each, refused) meet the missing
            # field; a tick already past its check when the field went may still finish, so
            # the runs are counted once refusals are under way, then again after more
            checked = sandbox.server.calls.count("describe")
            _until(
                proc,
                lambda: sandbox.server.calls.count("describe") >= checked + 3,
                "on a tick refused at its start check",
            )
            ran, checked = _succeeded(harness), sandbox.server.calls.count("describe")
            _until(
                proc,
                lambda: sandbox.server.calls.count("describe") >= checked + 3,
                "on later ticks refused at their start check",
            )
            assert _succeeded(harness) == ran  # refused ticks wrote nothing, left no run
            task.fields[KEY] = field  # the field is back: the schedule runs again
            _until(proc, lambda: _succeeded(harness) > ran, "after the field came back")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                _, stderr = proc.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, stderr = proc.communicate()
    finally:
        sandbox.stop()
    assert proc.returncode == 0, stderr[-2000:]
    refusals = [line for line in stderr.splitlines() if "tasks are on, but" in line]
    assert refusals and all(f"external id Task.{KEY}" in line for line in refusals)
