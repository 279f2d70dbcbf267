"""A write prerequisite the Zoho grant lacks stops ``crmtier sync`` and ``crmtier serve`` at
start, not at the first write of that kind (``sync.write_readiness``).

Every task write (and closure) starts with a COQL look-up of its key (Zoho has no upsert for
Tasks), which needs ``ZohoCRM.coql.READ``; every membership write starts with zcrmsdk's read
of the module's related lists, which needs ``ZohoCRM.settings.related_lists.READ``. The
sandbox refuses a call whose scope the grant lacks as Zoho does (401
``OAUTH_SCOPE_MISMATCH``). The table runs each write kind on and off, with its scope granted
and not: on without the scope refuses with one line (exit 2) and no read or write; on with
it, and off whatever the grant, the sync runs, and a kind that is off costs no call of its
prerequisite's kind.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.sandbox.zoho import ZohoSandbox
from connectors.zoho.scopes import REQUIRED_SCOPES
from crmtier.cli import cli

COQL = "ZohoCRM.coql.READ"
RELATED_LISTS = "ZohoCRM.settings.related_lists.READ"

#: write kind -> its [writeback] switch, the scope it needs, the sandbox's kind of the call
#: that checks it, and how the one line at start names the kind
KINDS = {
    "tasks": ("tasks", COQL, "coql", "tasks are on"),
    "memberships": (
        "campaign_memberships",
        RELATED_LISTS,
        "related_lists",
        "campaign memberships are on",
    ),
}
Org = Callable[..., tuple[ZohoSandbox, Path]]
CASES = [
    pytest.param(
        kind, on, granted, id=f"{kind}-{'on' if on else 'off'}-{'' if granted else 'no-'}scope"
    )
    for kind in KINDS
    for on in (True, False)
    for granted in (True, False)
]


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    """``org(without=scope, off=switch)``: a started Zoho sandbox of 20 customers whose grant
    lacks ``without``, and its crmtier.toml with ``off`` set false in [writeback]."""
    started: list[ZohoSandbox] = []

    def make(without: str = "", off: str = "") -> tuple[ZohoSandbox, Path]:
        scopes = [s for s in REQUIRED_SCOPES if s != without]
        sandbox = ZohoSandbox(data_dir=tmp_path / "zoho", scopes=scopes)
        sandbox.seed(20)
        sandbox.start()
        started.append(sandbox)
        text, env = sandbox.crmtier_config()
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        if off:
            text = text.replace(f"\n{off} = true\n", f"\n{off} = false\n")
            assert f"\n{off} = false\n" in text
        path = tmp_path / "crmtier.toml"
        path.write_text(text, encoding="utf-8")
        return sandbox, path

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.mark.parametrize(("kind", "on", "granted"), CASES)
def test_each_write_kind_on_and_off_with_its_scope_and_without(
    org: Org, kind: str, on: bool, granted: bool
) -> None:
    switch, scope, call, named = KINDS[kind]
    sandbox, path = org(without="" if granted else scope, off="" if on else switch)
    synced = CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet"])
    calls = sandbox.server.calls
    if on and not granted:
        assert synced.exit_code == 2, synced.output
        [line] = synced.stderr.splitlines()
        assert line.startswith(f"crmtier sync: {named}, but ")
        assert "OAUTH_SCOPE_MISMATCH" in line and f"add the scope {scope}" in line
        assert f"set {switch} = false in [writeback]" in line
        assert calls.count(call) == 1  # the gate's one call
        assert calls.count("read", "fields") == 0 and sandbox.write_calls() == 0
        return
    assert synced.exit_code == 0, synced.output
    assert sandbox.write_calls() > 0
    if not on:  # a kind that is off asks nothing of the CRM
        assert calls.count(call) == 0


def test_serve_refuses_to_start_too(org: Org, tmp_path: Path) -> None:
    """``crmtier serve`` builds the same engine (``open_parts``, which ``crmtier worker``
    shares) and exits 2 with the same one line, before it listens."""
    sandbox, path = org(without=COQL)
    served = subprocess.run(
        [sys.executable, "-m", "crmtier", "serve", "--config", str(path), "--no-sync"],
        capture_output=True,
        text=True,
        timeout=120,  # a hang guard: on the old code serve started and listened
        cwd=tmp_path,
    )
    assert served.returncode == 2, served.stderr
    [line] = served.stderr.strip().splitlines()
    assert "tasks are on, but tasks: key look-up" in line and f"add the scope {COQL}" in line
    assert sandbox.server.calls.count("read", "fields") == 0 and sandbox.write_calls() == 0
    assert served.stdout == ""  # never announced a listening address
