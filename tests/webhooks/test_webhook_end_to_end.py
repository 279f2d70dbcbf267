"""The real-time path end to end: a sandbox CRM sends its real notifications to the receiver
(uvicorn on loopback), the worker re-fetches through the real connector and writes the new
tier back through the sync engine. Assertions poll the sandbox with generous timeouts.

Each CRM whose sandbox and connector are in the tree is exercised; the others are skipped
with the reason."""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import LiveServer

from connectors.sandbox.base import Sandbox, open_sandbox
from crmtier.commands.serve import Parts, open_parts
from crmtier.config import load_config
from webhooks.runtime import Realtime

PRIVATE = {
    "assets.deposits": 9_000_000,
    "assets.investments": 0,
    "assets.insurance": 0,
    "aum_avg_3m": None,
}
MASS = {
    "assets.deposits": 1_000,
    "assets.investments": 0,
    "assets.insurance": 0,
    "aum_avg_3m": None,
}


def _available(crm: str) -> bool:
    return all(
        importlib.util.find_spec(module) is not None
        for module in (f"connectors.sandbox.{crm}", f"connectors.{crm}.connector")
    )


CRMS = [
    pytest.param(
        crm,
        marks=pytest.mark.skipif(
            not _available(crm), reason=f"{crm} sandbox/connector not in the tree yet"
        ),
    )
    for crm in ("salesforce", "zoho", "fxiaoke")
]


def wait_until(
    predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Stack:
    sandbox: Sandbox
    parts: Parts
    realtime: Realtime
    live: LiveServer

    def tier(self, customer_id: str) -> Any:
        return self.sandbox.written(customer_id).get("value_tier")


def _route(crm: str) -> str:
    return {"salesforce": "salesforce", "zoho": "zoho", "fxiaoke": "fxiaoke"}[crm]


@pytest.fixture
def stack_factory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[..., Stack]]:
    opened: list[tuple[Sandbox, Parts, Realtime, LiveServer]] = []

    def build(crm: str, *, customers: int = 30, sync_every: str | None = None) -> Stack:
        sandbox = open_sandbox(crm, data_dir=tmp_path / crm)
        sandbox.seed(customers)
        sandbox.start()
        text, env = sandbox.crmtier_config()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if sync_every:
            text = text.replace("[state]", f'[sync]\nevery = "{sync_every}"\n\n[state]', 1)
        path = tmp_path / f"{crm}.toml"
        path.write_text(text)
        parts = open_parts(load_config(path))
        parts.engine.run()  # the first scheduled run: every customer gets its tier
        realtime = Realtime(parts.settings, parts.store, parts.connector, parts.engine)
        live = LiveServer(realtime.app).__enter__()
        realtime.start_worker()
        info = sandbox.info()
        sandbox.set_notification_target(
            f"{live.url}/webhooks/{_route(crm)}", ca_bundle=info.ca_bundle
        )
        opened.append((sandbox, parts, realtime, live))
        return Stack(sandbox, parts, realtime, live)

    yield build
    for sandbox, parts, realtime, live in reversed(opened):
        live.__exit__(None, None, None)
        realtime.stop_worker()
        parts.close()
        sandbox.stop()


@pytest.mark.parametrize("crm", CRMS)
def test_a_change_in_the_crm_reaches_it_as_a_new_tier_through_the_receiver(
    crm: str, stack_factory: Callable[..., Stack]
) -> None:
    stack = stack_factory(crm, customers=20)
    customers = [c for c in stack.parts.connector.fetch(list(_all_ids(stack)))]
    target = next(r.profile.id for r in customers if stack.tier(r.profile.id) != "private")
    stack.sandbox.edit_customer(target, PRIVATE)
    wait_until(lambda: stack.tier(target) == "private", what=f"{crm} customer to become private")
    inbox = stack.realtime.inbox
    wait_until(lambda: inbox.stats(_now()).depth == 0, what="inbox to drain")
    assert stack.realtime.metrics.value("crmtier_webhook_events_total", outcome="written") >= 1


def _all_ids(stack: Stack) -> list[str]:
    ids: list[str] = []
    for page in stack.parts.connector.read_changed(None):
        ids += [r.profile.id for r in page.records]
    return ids


def _now() -> datetime:
    return datetime.now(UTC)
