"""The in-memory CRM's sandbox: the sandbox surface (connectors/sandbox/base.py) over a
``Book``, so the contract suite and the webhook tests use it as they use the real CRMs'.

Customers are the shared synthetic book (connectors/sandbox/generator.py) stored under the
plugin's default mapping; edits are canonical paths. With a notification target set, every
edit is posted there at once, signed as ``webhook.py`` verifies.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import requests

from connectors.mapping import DefaultMapping
from connectors.sandbox.base import SandboxInfo, SandboxTask
from connectors.sandbox.generator import generate, to_crm_fields
from tests.contract.memory_plugin import webhook
from tests.contract.memory_plugin.book import BOOKS, OWNER, Book


class MemorySandbox:
    crm = webhook.KIND

    def __init__(self, *, data_dir: Path, mapping: DefaultMapping, **_options: Any) -> None:
        self.data_dir = Path(data_dir)
        self.mapping = mapping
        fields = {*mapping.mapping.fields.values(), *mapping.writeback.fields.values()}
        self.book = Book(f"book-{secrets.token_hex(4)}", secrets.token_hex(16), frozenset(fields))
        self.secret = secrets.token_hex(16)
        self.target: str | None = None
        self.sent = 0

    def start(self) -> MemorySandbox:
        BOOKS[self.book.name] = self.book
        return self

    def stop(self) -> None:
        BOOKS.pop(self.book.name, None)

    def info(self) -> SandboxInfo:
        return SandboxInfo(self.crm, f"memory://{self.book.name}", "", {"token": "[env]"}, "")

    def crmtier_config(self, env_prefix: str = "CRMTIER") -> tuple[str, dict[str, str]]:
        env = {f"{env_prefix}_MEMORY_TOKEN": self.book.token}
        env[f"{env_prefix}_MEMORY_SECRET"] = self.secret
        token, secret = list(env)
        q = json.dumps
        wb = self.mapping.writeback
        lines = [
            "[crm]",
            f'kind = "{self.crm}"',
            f"book = {q(self.book.name)}",
            f'token = "env:{token}"',
            "[mapping]",
            f"object = {q(self.mapping.mapping.object)}",
            *_table("mapping.fields", self.mapping.mapping.fields),
            "[writeback]",
            f"restricted = {q(list(wb.restricted))}",
            *_table("writeback.fields", wb.fields),
            *_table("writeback.campaigns", wb.campaigns),
            *_table("writeback.queues", wb.queues),
            "[state]",
            f"url = {q('sqlite:///' + str(self.data_dir / 'crmtier.db'))}",
            "[webhooks]",
            f'memory_secret = "env:{secret}"',
        ]
        return "\n".join(lines) + "\n", env

    def seed(self, customers: int, seed: int = 7) -> None:
        for customer in generate(customers, seed):
            values = to_crm_fields(customer, self.mapping.mapping.fields)
            values[OWNER] = customer.profile.get("owner_id")
            self.book.put(customer.id, values, customer.modstamp)

    def edit_customer(
        self, customer_id: str, changes: Mapping[str, Any], *, modstamp: datetime | None = None
    ) -> None:
        fields = self.mapping.mapping.fields
        self.book.put(customer_id, {fields[path]: v for path, v in changes.items()}, modstamp)
        if self.target is not None:
            self._notify(customer_id)

    def written(self, customer_id: str) -> dict[str, Any]:
        row = self.book.rows[customer_id]
        return {out: row[f] for out, f in self.mapping.writeback.fields.items() if f in row}

    def tasks(self) -> list[SandboxTask]:
        return [
            SandboxTask(key, t.customer_id, t.subject, t.due, t.owner, t.open)
            for key, t in self.book.tasks.items()
        ]

    def reschedule_task(self, key: str, subject: str, due: date) -> None:
        with self.book.lock:
            task = self.book.tasks[key]
            task.subject, task.due = subject, due.isoformat()

    def memberships(self) -> set[tuple[str, str]]:
        keys = {cid: key for key, cid in self.mapping.writeback.campaigns.items()}
        return {(customer, keys[campaign]) for customer, campaign in self.book.members}

    def add_member_by_hand(self, customer_id: str, campaign: str) -> None:
        with self.book.lock:
            self.book.members.add((customer_id, self.mapping.writeback.campaigns[campaign]))

    def write_calls(self) -> int:
        return self.book.calls["write"]

    def set_notification_target(self, url: str, **_options: Any) -> None:
        self.target = url

    def _notify(self, customer_id: str) -> None:
        self.sent += 1
        stamp = self.book.stamps[customer_id].isoformat()
        body = json.dumps({"id": f"n{self.sent}", "record": customer_id, "modstamp": stamp})
        timestamp = str(int(time.time()))
        signature = webhook.sign(self.secret.encode(), timestamp, body.encode())
        headers = {
            "content-type": "application/json",
            webhook.TIMESTAMP: timestamp,
            webhook.SIGNATURE: signature,
        }
        assert self.target is not None
        requests.post(self.target, data=body.encode(), headers=headers, timeout=10)


def _table(name: str, values: Mapping[str, str]) -> list[str]:
    return [f"[{name}]", *(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in values.items())]
