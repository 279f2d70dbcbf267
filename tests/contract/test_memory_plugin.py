"""Issue 19's "done when": a fourth CRM is one folder plus one entry-point line. The test-only
in-memory CRM (tests/contract/memory_plugin, registered by conftest.py through its
distribution's entry point) passes the contract suite (test_connector_contract.py) and,
here, is configured, verified and served by the product's own receiver and worker with no
change outside its folder."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from connectors import registry
from crmtier.commands.serve import channel_keeper, open_parts
from crmtier.config import load_config
from crmtier.demo.loopback import LoopbackServer
from sync.engine import RunOptions
from sync.inbox import Inbox
from sync.store import StateStore
from tests.contract.memory_plugin import webhook
from tests.contract.memory_plugin.plugin import PLUGIN
from tests.webhooks.wh_live import Clock
from webhooks.app import configured_routes, create_app
from webhooks.runtime import Realtime
from webhooks.settings import load_webhooks

SECRET = "m" * 32
CUSTOMER = "C000000007"


def test_it_is_found_through_its_entry_point_only(monkeypatch: pytest.MonkeyPatch) -> None:
    assert registry.plugin("memory") is PLUGIN
    monkeypatch.undo()  # its distribution off sys.path again
    registry.reload()
    assert "memory" not in registry.kinds()
    assert {"salesforce", "zoho", "fxiaoke"} <= set(registry.kinds())


def _signed(body: bytes, now: float, secret: str = SECRET) -> dict[str, str]:
    stamp = str(int(now))
    return {
        "content-type": "application/json",
        webhook.TIMESTAMP: stamp,
        webhook.SIGNATURE: webhook.sign(secret.encode(), stamp, body),
    }


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("T_MEMORY_SECRET", SECRET)
    settings = load_webhooks({"memory_secret": "env:T_MEMORY_SECRET"})
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    inbox, clock = Inbox(store), Clock()
    with TestClient(create_app(settings, inbox, crm="memory", clock=clock)) as client:
        yield client, inbox, clock
    store.close()


def test_its_keys_are_part_of_the_webhooks_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_SHORT", "short")
    assert configured_routes(load_webhooks({})) == []
    with pytest.raises(ValueError, match="memory_secret"):
        load_webhooks({"memory_secret": "env:T_SHORT"})


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        (lambda body, h: (body, h), 200),
        (lambda body, h: (body + b" ", h), 401),  # the bytes signed are the bytes received
        (lambda body, h: (body, {**h, webhook.SIGNATURE: "0" * 64}), 401),
        (lambda body, h: (body, {k: v for k, v in h.items() if k != webhook.SIGNATURE}), 401),
        (lambda body, h: (body, {**h, "content-type": "text/plain"}), 415),
    ],
)
def test_the_receiver_verifies_it_on_the_raw_bytes(receiver, tamper, status: int) -> None:
    client, inbox, clock = receiver
    body = json.dumps({"id": "n1", "record": CUSTOMER}).encode()
    sent, headers = tamper(body, _signed(body, clock.now))
    answer = client.post("/webhooks/memory", content=sent, headers=headers)
    assert answer.status_code == status
    assert inbox.event_keys() == ({"memory:n1"} if status == 200 else set())


def test_a_stale_notification_is_refused_and_a_redelivery_stored_once(receiver) -> None:
    client, inbox, clock = receiver
    body = json.dumps({"id": "n2", "record": CUSTOMER}).encode()
    stale = _signed(body, clock.now - 301)
    assert client.post("/webhooks/memory", content=body, headers=stale).status_code == 401
    for _ in range(2):
        answer = client.post("/webhooks/memory", content=body, headers=_signed(body, clock.now))
        assert answer.status_code == 200
    assert inbox.event_keys() == {"memory:n2"}


def test_serve_re_tiers_a_customer_it_notifies(
    sandbox_factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The product's path end to end: crmtier.toml from the sandbox, ``serve``'s parts, a
    full sync, then an edit in the CRM notified over HTTP and re-tiered by the worker."""
    sandbox = sandbox_factory("memory", customers=40)
    text, env = sandbox.crmtier_config()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    (tmp_path / "crmtier.toml").write_text(text, encoding="utf-8")
    parts = open_parts(load_config(tmp_path / "crmtier.toml"))
    try:
        assert parts.engine.run(RunOptions(full=True)).status == "succeeded"
        assert channel_keeper(parts) is None  # it registers no channel of its own
        target = next(
            c for c in sorted(sandbox.book.rows) if sandbox.written(c)["value_tier"] == "mass"
        )
        realtime = Realtime(parts.settings, parts.store, parts.connector, parts.engine)
        server = LoopbackServer(realtime.app).start()
        realtime.start_worker()
        try:
            sandbox.set_notification_target(f"{server.url}/webhooks/memory")
            sandbox.edit_customer(target, {"assets.deposits": 9_000_000, "aum_avg_3m": None})
            deadline = time.monotonic() + 30
            while sandbox.written(target)["value_tier"] != "private":
                assert time.monotonic() < deadline, "the worker did not re-tier the customer"
                time.sleep(0.05)
        finally:
            realtime.stop_worker()
            server.stop()
        assert realtime.inbox.event_keys() == {"memory:n1"}
    finally:
        parts.close()
