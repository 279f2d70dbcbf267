"""What ``crmtier serve`` opens, over a Salesforce sandbox of five customers: the start of
every test that forces a webhook batch to meet the sync on one customer
(tests/sync/test_sync_claims.py, tests/webhooks/test_webhook_stale_view.py), so each
says only the interleaving it forces.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from connectors.sandbox.base import Sandbox, open_sandbox
from crmtier.commands.serve import Parts, open_parts
from crmtier.config import load_config
from sync.worker import BatchReport
from tests.sync.conftest import _set_keys

#: a customer whose credit risk moves with its days past due alone (the default policy:
#: none is low, over 90 high)
GOOD = {
    "credit.score": 800,
    "credit.debt_to_income": 0.1,
    "credit.loan_class": "normal",
    "credit.days_past_due_max_12m": 0,
}
ARREARS = {**GOOD, "credit.days_past_due_max_12m": 120}
PAID_AND_RICH = {**GOOD, "assets.deposits": 9_000_000}


@contextmanager
def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_url: str | None = None
) -> Iterator[tuple[Sandbox, Parts]]:
    """The sandbox, started, and the parts ``serve`` opens from its ``crmtier.toml`` (with
    ``state_url`` as the store when given); closed and stopped on the way out."""
    with ExitStack() as stack:
        sandbox = open_sandbox("salesforce", data_dir=tmp_path / "crm")
        sandbox.seed(5)
        sandbox.start()
        stack.callback(sandbox.stop)
        text, env = sandbox.crmtier_config()
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if state_url is not None:
            text = _set_keys(text, "state", {"url": state_url})
        path = tmp_path / "crmtier.toml"
        path.write_text(text)
        parts = open_parts(load_config(path))
        stack.callback(parts.close)
        yield sandbox, parts


def first_customer(parts: Parts) -> str:
    """The id of the first customer the CRM lists."""
    return next(r.profile.id for page in parts.connector.read_changed(None) for r in page.records)


def on_a_thread(run: Callable[[], BatchReport]) -> BatchReport:
    """``run`` on a thread of its own (as a worker's is: its claims are its thread's),
    joined."""
    out: list[BatchReport] = []
    t = threading.Thread(target=lambda: out.append(run()))
    t.start()
    t.join()
    return out[0]
