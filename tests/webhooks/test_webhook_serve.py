"""``crmtier serve`` as a real subprocess: SIGKILL right after acks loses no acked event
(docs/targets.md W5), SIGTERM shuts down cleanly leaving unprocessed events in the inbox, and bad
input is a one-line error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from connectors.contract import Page
from connectors.fxiaoke import webhook as fx
from connectors.registry import build_connector
from connectors.sandbox.base import Sandbox, open_sandbox
from crmtier.config import load_config
from sync.inbox import Inbox, webhook_inbox
from sync.store import StateStore

ACKED_TARGET = int(os.environ.get("CRMTIER_KILL_TEST_EVENTS", "1000"))


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    config: Path
    secret: str
    env: dict[str, str]

    def state(self) -> Inbox:
        url = load_config(self.config).state_url().get_secret_value()
        return Inbox(StateStore.open(url))


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = open_sandbox("fxiaoke", data_dir=tmp_path / "crm")
    box.seed(5)
    box.start()
    yield box
    box.stop()


def _serve(tmp_path: Path, sandbox: Sandbox, *extra: str, webhooks: str = "") -> Served:
    """Start ``crmtier serve``; ``webhooks`` is appended to the config's ``[webhooks]``
    section (the last one)."""
    text, env_values = sandbox.crmtier_config()
    config = tmp_path / "crmtier.toml"
    config.write_text(text + webhooks)
    env = {**os.environ, **env_values}
    stderr = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crmtier",
            "serve",
            "--config",
            str(config),
            "--listen",
            "127.0.0.1:0",
            *extra,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.wait(timeout=30)
        raise AssertionError((tmp_path / "serve.log").read_text()[-2000:])
    banner = json.loads(line)
    assert "/webhooks/fxiaoke" in banner["routes"]
    secret = next(v for k, v in env_values.items() if k.endswith("FXIAOKE_SECRET"))
    return Served(process, banner["listen"], config, secret, env)


def _ack_until_killed(served: Served, target: int) -> list[str]:
    """Push events from 8 senders until ``target`` are acked, then SIGKILL the server while
    the others are in flight; return the acked event keys."""
    acked: list[str] = []
    lock = threading.Lock()
    killed = threading.Event()

    def sender(worker: int) -> None:
        with httpx.Client(base_url=served.url, timeout=10) as client:
            n = 0
            while not killed.is_set():
                event_id = f"w{worker}-{n}-{uuid.uuid4().hex[:6]}"
                n += 1
                if _push(client, served.secret, event_id):
                    with lock:
                        acked.append(f"fxiaoke:{event_id}")
                        if len(acked) >= target and not killed.is_set():
                            served.process.send_signal(signal.SIGKILL)
                            killed.set()
                elif served.process.poll() is not None:
                    return

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(sender, range(8)))
    served.process.wait(timeout=30)
    assert served.process.returncode == -signal.SIGKILL
    assert len(acked) >= target
    return acked


def _push(client: httpx.Client, secret: str, event_id: str) -> bool:
    body = json.dumps({"eventId": event_id, "event": "update", "dataId": f"d-{event_id}"}).encode()
    return _post_fx(client, secret, body)


def _post_fx(client: httpx.Client, secret: str, body: bytes) -> bool:
    ts = str(int(time.time() * 1000))
    headers = {
        "content-type": "application/json",
        "x-fx-timestamp": ts,
        "x-fx-signature": fx.sign(secret.encode(), ts, body),
    }
    try:
        response = client.post("/webhooks/fxiaoke", content=body, headers=headers)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text == "success"


def _connector_pages(served: Served) -> list[Page]:
    """The customers as crmtier reads them (through the config ``serve`` uses)."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in served.env.items():
            if name.startswith("CRMTIER_"):
                env.setenv(name, value)
        config = load_config(served.config)
        connector = build_connector(config.crm, config.field_mapping(), config.writeback_config())
        try:
            return list(connector.read_changed(None))
        finally:
            connector.close()


def test_sigkill_right_after_acks_loses_no_acked_event(tmp_path: Path, sandbox: Sandbox) -> None:
    served = _serve(tmp_path, sandbox, "--no-sync")
    acked = _ack_until_killed(served, ACKED_TARGET)
    stored = served.state().event_keys()
    lost = [key for key in acked if key not in stored]
    assert lost == [], f"{len(lost)} of {len(acked)} acked events lost"


def test_events_claimed_by_a_killed_serve_are_processed_after_restart_without_traffic(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """Item: acked events claimed by the worker of a SIGKILLed ``serve`` are processed by
    the restarted one once their claim lease lapses, with no new request to wake it, and
    each exactly once (claimed once by the dead worker, once more by the new one)."""
    sandbox.server.inject("*", delay=1.0, times=None)  # the worker is mid-batch at the kill
    lease = "claim_lease_seconds = 2\n"
    served = _serve(tmp_path, sandbox, "--no-sync", webhooks=lease)
    acked = _ack_until_killed(served, ACKED_TARGET)
    inbox = served.state()
    orphaned = inbox.event_keys(statuses=("claimed",))
    assert orphaned, "the kill must leave a batch claimed for this test to mean anything"
    sandbox.server.reset()
    restarted = _serve(tmp_path, sandbox, "--no-sync", webhooks=lease)
    try:
        deadline = time.monotonic() + 120  # a safety stop; the lease is 2 s
        while inbox.event_keys(statuses=("pending", "claimed")) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert inbox.event_keys(statuses=("pending", "claimed")) == set()
        assert set(acked) <= inbox.event_keys(statuses=("done",))
        attempts = _attempts(inbox, orphaned)
        assert set(attempts.values()) == {2}, attempts
    finally:
        restarted.process.send_signal(signal.SIGTERM)
        restarted.process.wait(timeout=60)


def _attempts(inbox: Inbox, keys: set[str]) -> dict[str, int]:
    with inbox.store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(webhook_inbox.c.event_key, webhook_inbox.c.attempts).where(
                webhook_inbox.c.event_key.in_(sorted(keys))
            )
        ).all()
    return {str(key): int(n) for key, n in rows}


def test_sigterm_stops_cleanly_and_keeps_the_backlog(tmp_path: Path, sandbox: Sandbox) -> None:
    # The CRM answers every call slowly, so events are still waiting when SIGTERM comes.
    sandbox.server.inject("*", delay=0.5, times=None)
    served = _serve(tmp_path, sandbox, "--no-sync")
    with httpx.Client(base_url=served.url, timeout=10) as client:
        acked = [f"fxiaoke:t{i}" for i in range(50) if _push(client, served.secret, f"t{i}")]
    assert len(acked) == 50
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=120) == 0
    log = (tmp_path / "serve.log").read_text()
    assert '"stopped"' in log
    inbox = served.state()
    assert set(acked) <= inbox.event_keys()
    assert inbox.event_keys(statuses=("claimed",)) == set()  # nothing left half-taken
    assert served.secret not in log


def test_logs_name_no_secret_and_no_personal_data(tmp_path: Path, sandbox: Sandbox) -> None:
    """S1/S2 canary: a full cycle at DEBUG (scheduled sync over customers carrying canary PII,
    then pushes re-tiered by the worker) leaves no secret and no canary value in the log."""
    served = _serve(tmp_path, sandbox, "--log-level", "DEBUG")
    inbox = served.state()
    ids = [r.profile.id for page in _connector_pages(served) for r in page.records]
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for n, customer_id in enumerate(ids):
            body = json.dumps({"eventId": f"c{n}", "event": "update", "dataId": customer_id})
            assert _post_fx(client, served.secret, body.encode())
    deadline = time.monotonic() + 120
    while inbox.stats(datetime.now(UTC)).depth and time.monotonic() < deadline:
        time.sleep(0.1)
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=120) == 0
    log = (tmp_path / "serve.log").read_text()
    assert '"scheduled sync finished"' in log
    secrets = [v for k, v in served.env.items() if k.startswith("CRMTIER_") and len(v) >= 8]
    assert secrets and not [s for s in secrets if s in log]
    assert "canary" not in log.lower()


def test_bad_config_is_a_one_line_error(tmp_path: Path) -> None:
    config = tmp_path / "crmtier.toml"
    config.write_text(
        '[crm]\nkind = "fxiaoke"\n\n[webhooks]\nfxiaoke_secret = "a-literal-secret-value"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "crmtier", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "literal secrets are not allowed" in result.stderr
    assert "a-literal-secret-value" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1
