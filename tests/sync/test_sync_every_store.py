"""``crmtier sync --every`` waits out a state store that fails at a later tick, within a
bound (crmtier/commands/sync_schedule.py, docs/operations.md "Scheduling and monitoring").

Before, a ``StoreError`` at any tick after the first left the loop and ended the
scheduler (exit 2), while a CRM refusal printed its line and the next tick tried again.
Now a store failure prints one line and the next tick tries again too; the schedule ends
only after ``STORE_FAILURES_MAX`` such ticks in a row, with that failure's status. The
loop itself with a scripted tick, and a real ``crmtier sync --every 1s`` process whose
store another process encrypts under a key it does not have.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError

from crmtier.cli import cli
from crmtier.commands.sync_schedule import EXIT_CONFIG, STORE_FAILURES_MAX, schedule
from sync import schema
from sync.crypto import StoreCipher
from sync.store import StateStore, StoreError
from tests.sync.conftest import CRM_TABLE, Harness, start_sandbox

UNREACHABLE = OperationalError("SELECT 1", {"customer_id": "C-SECRET-1"}, Exception("gone"))


def _scripted(*outcomes: int | BaseException) -> tuple[list[int], Callable[[], int]]:
    """A tick playing ``outcomes`` in turn (one a call), and the list of calls made."""
    calls: list[int] = []

    def tick() -> int:
        calls.append(len(calls))
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    return calls, tick


def test_a_store_failure_after_the_first_tick_is_retried_and_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong_key = StoreError("state store is encrypted (key id 1a2b3c4d); set [state] ...")
    script = [0, wrong_key, UNREACHABLE, 0, *[wrong_key] * (STORE_FAILURES_MAX - 1)]
    calls, tick = _scripted(*script, UNREACHABLE, 0)
    assert schedule(tick, 0) == 1
    # two failures, a tick that ran (the count starts again), then the bound in a row
    assert len(calls) == len(script) + 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 + STORE_FAILURES_MAX
    assert lines[0].startswith("crmtier sync: state store failed (1 of 5 ticks in a row;")
    assert "retrying at the next tick): state store is encrypted" in lines[0]
    assert "(2 of 5 ticks in a row; retrying" in lines[1]
    assert "OperationalError: Exception: gone" in lines[1]
    assert "(1 of 5 ticks in a row; retrying" in lines[2]  # counted anew after the run
    assert "(5 of 5 ticks in a row; giving up)" in lines[-1]
    assert "C-SECRET-1" not in "\n".join(lines)  # no SQL parameter in a line


def test_the_bound_ends_with_the_failures_status_and_a_first_tick_failure_raises() -> None:
    _, tick = _scripted(0, *[StoreError("unusable")] * 3)
    assert schedule(tick, 0, store_failures_max=3) == EXIT_CONFIG
    _, tick = _scripted(StoreError("never worked"))
    with pytest.raises(StoreError):  # a set-up that never worked: the command's exit 2
        schedule(tick, 0)


def test_a_later_tick_whose_sql_sqlite_refuses_ends_the_schedule_in_its_traceback(
    tmp_path: Path,
) -> None:
    """SQLite refusing a statement (``SQLITE_ERROR``: no such table) is crmtier's SQL and
    the store's schema disagreeing, not a store away: retried as one, it was counted
    five ticks and its traceback lost (crmtier/store_failures.py ``_sql_refused``)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'any.db'}")
    try:
        with engine.connect() as conn, pytest.raises(OperationalError) as refused:
            conn.execute(sa.text("SELECT * FROM outbox"))
    finally:
        engine.dispose()
    _, tick = _scripted(0, refused.value, 0)
    with pytest.raises(OperationalError, match="no such table"):
        schedule(tick, 0)


KEY = os.urandom(32)


def test_a_real_schedule_outlives_a_failing_store_within_the_bound(tmp_path: Path) -> None:
    sandbox = start_sandbox("salesforce", tmp_path / "salesforce", 20)
    try:
        harness = Harness(sandbox, tmp_path / "salesforce")
        url = harness.state_url()
        proc = harness.popen("--every", "1s", "--quiet")
        try:
            while _runs(url) < 1:  # the first tick ran on the plain store
                assert proc.poll() is None, proc.communicate()[1][-2000:]
                time.sleep(0.2)
            # another process encrypts the store under a key this schedule lacks: every
            # later tick's open is refused with a StoreError
            StateStore.open(url, cipher=StoreCipher(KEY)).close()
            _, stderr = proc.communicate()  # it ends by itself after the bound
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.communicate(timeout=60)
    finally:
        sandbox.stop()
    assert proc.returncode == EXIT_CONFIG, stderr[-2000:]
    failed = [line for line in stderr.splitlines() if "state store failed" in line]
    assert len(failed) == STORE_FAILURES_MAX, stderr[-2000:]
    assert "(1 of 5 ticks in a row; retrying at the next tick)" in failed[0]
    assert "(5 of 5 ticks in a row; giving up)" in failed[-1]
    assert all("): state store is encrypted (key id" in line for line in failed)
    assert all(f"(state store {url})" in line for line in failed)  # it names the store


def _runs(url: str) -> int:
    """Runs recorded so far, read from the plain store (0 while it is being created)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(schema.runs)).scalar())
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


@pytest.mark.parametrize("every", [(), ("--every", "1s")], ids=["one run", "first tick"])
def test_a_store_it_cannot_reach_at_the_start_is_one_line_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, every: tuple[str, ...]
) -> None:
    """A run (or a schedule's first tick) whose state store cannot be reached ends with
    exit 1 and one line, as a later tick's failure is reported; it used to end in
    SQLAlchemy's traceback."""
    config = tmp_path / "crmtier.toml"
    config.write_text(
        f'{CRM_TABLE}\n[state]\nurl = "postgresql+psycopg://postgres@127.0.0.1:1/none"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("SF_ID", "id")
    monkeypatch.setenv("SF_SECRET", "secret")
    result = CliRunner().invoke(
        cli, ["sync", "--config", str(config), "--quiet", *every], catch_exceptions=False
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(
        "crmtier sync: state store failed: cannot reach "
        "postgresql+psycopg://postgres@127.0.0.1:1/none: OperationalError: "
    )
    assert lines[0].endswith(
        "check that the database is up and reachable from this host, and [state] url"
    )
