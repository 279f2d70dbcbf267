"""A Salesforce org without the External ID field a write kind upserts by stops ``crmtier
sync`` at start (``sync.write_readiness``), not at that kind's first upsert, which
Salesforce refuses whole (``INVALID_FIELD``) after the run wrote tier fields.

Tasks (and their closures) upsert and find Task by ``Crmtier_Key__c``, memberships
CampaignMember by the same field. The table runs each kind on and off, with the field and
without: on without it refuses with one line (exit 2) and no read or write; on with it, and
off whatever the org, the sync runs, and a kind that is off costs no ``describe``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors.sandbox.salesforce import SalesforceSandbox
from crmtier.cli import cli

KEY = "Crmtier_Key__c"
#: write kind -> its [writeback] switch, the object whose External ID field it needs, and
#: how the one line at start names the kind
KINDS = {
    "tasks": ("tasks", "Task", "tasks are on"),
    "memberships": ("campaign_memberships", "CampaignMember", "campaign memberships are on"),
}
Org = Callable[..., tuple[SalesforceSandbox, Path]]
CASES = [
    pytest.param(
        kind, on, present, id=f"{kind}-{'on' if on else 'off'}-{'' if present else 'no-'}field"
    )
    for kind in KINDS
    for on in (True, False)
    for present in (True, False)
]


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    """``org(lacking=object, off=switch)``: a started Salesforce sandbox of 20 customers
    whose ``lacking`` object has no ``Crmtier_Key__c``, and its crmtier.toml with ``off``
    set false in [writeback]."""
    started: list[SalesforceSandbox] = []

    def make(lacking: str = "", off: str = "") -> tuple[SalesforceSandbox, Path]:
        sandbox = SalesforceSandbox(data_dir=tmp_path / "sf")
        if lacking:
            del sandbox.org.schema[lacking].fields[KEY]
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


@pytest.mark.parametrize(("kind", "on", "present"), CASES)
def test_each_write_kind_on_and_off_with_its_key_field_and_without(
    org: Org, kind: str, on: bool, present: bool
) -> None:
    switch, sobject, named = KINDS[kind]
    sandbox, path = org(lacking="" if present else sobject, off="" if on else switch)
    synced = CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet"])
    calls = sandbox.server.calls
    if on and not present:
        assert synced.exit_code == 2, synced.output
        [line] = synced.stderr.splitlines()
        assert line == (
            f"crmtier sync: {named}, but external id {sobject}.{KEY}: missing or not marked "
            f"External ID: create a unique External ID text field {KEY} on {sobject} "
            f"(or set {switch} = false in [writeback])"
        )
        assert calls.count("query", "query_more") == 0 and sandbox.write_calls() == 0
        return
    assert synced.exit_code == 0, synced.output
    assert sandbox.write_calls() > 0
    # one describe per enabled kind at start (the other kind stays on), none in the run
    assert calls.count("describe") == (2 if on else 1)
