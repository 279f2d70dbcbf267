"""A write prerequisite the CRM lacks stops ``crmtier sync`` and ``crmtier serve`` at start,
not at the first write of that kind after tier fields were written
(``sync.write_readiness``).

Zoho: every task write (and closure) starts with a COQL look-up of its key (Zoho has no
upsert for Tasks), which needs ``ZohoCRM.coql.READ``; every membership write starts with
zcrmsdk's read of the related lists, which needs ``ZohoCRM.settings.related_lists.READ``.
The sandbox refuses a call whose scope the grant lacks as Zoho does (401
``OAUTH_SCOPE_MISMATCH``). Salesforce: tasks upsert Task, memberships CampaignMember, by the
External ID field ``Crmtier_Key__c``; without it Salesforce refuses the upsert whole
(``INVALID_FIELD``). FXiaoke: tasks create records of the follow-up object, memberships of
the campaign-member object, each looked up by key first; an object the tenant lacks stops
the run at the first look-up (15002, a configuration error: exit 1), and a custom field it
requires that crmtier does not fill, or a configured campaign id no live 市场活动 has,
dead-letters every create (32000: exit 3, a letter per customer). The table
runs each kind on and off, with its prerequisite and without: on without it refuses with
one line (exit 2) and no read or write; on with it, and off whatever the org, the sync
runs, and a kind that is off costs no call of its check's kind.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from product_crms import needs
from product_org import start_org

from connectors.sandbox.base import Sandbox
from connectors.sandbox.fxiaoke_schema import CAMPAIGN_MEMBER, FOLLOWUP, MARKETING_EVENT, FieldSpec
from connectors.zoho.scopes import REQUIRED_SCOPES
from crmtier.cli import cli

COQL = "ZohoCRM.coql.READ"
KEY = "Crmtier_Key__c"


@dataclass(frozen=True)
class Kind:
    """One write kind of one CRM: its [writeback] switch, the sandbox's kind of the call
    that checks it, how the one line at start names the kind, what the line says is
    missing and its fix, and the CRM's lack of it (sandbox options, or a change to the
    sandbox's schema before it starts); ``start_queries``: the queries the start checks
    make themselves (FXiaoke's of the configured campaigns, Zoho's of the Tasks fields), no
    customer read."""

    switch: str
    call: str
    named: str
    missing: str
    fix: str
    options: dict[str, Any]
    lack: Callable[[Any], None] = lambda sandbox: None
    start_queries: int = 0


def _zoho(switch: str, scope: str, call: str, named: str) -> Kind:
    scopes = [s for s in REQUIRED_SCOPES if s != scope]
    # tasks stay on in both cases: the gate reads the Tasks field list (the org's closed
    # statuses, crm.task_closed_statuses) before it asks for the kind's scope
    return Kind(
        switch,
        call,
        named,
        "OAUTH_SCOPE_MISMATCH",
        f"add the scope {scope}",
        {"scopes": scopes},
        start_queries=1,
    )


def _salesforce(switch: str, sobject: str, named: str) -> Kind:
    fix = f"create a unique External ID text field {KEY} on {sobject}"

    def lack(sandbox: Any) -> None:
        del sandbox.org.schema[sobject].fields[KEY]

    return Kind(switch, "describe", named, f"external id {sobject}.{KEY}", fix, {}, lack)


def _lack_object(obj: str) -> Callable[[Any], None]:
    def lack(sandbox: Any) -> None:
        del sandbox.objects[obj]

    return lack


def _invalidate_a_campaign(sandbox: Any) -> None:
    event_id = sorted(sandbox.mapping.writeback.campaigns.values())[0]
    sandbox.store.update(MARKETING_EVENT, event_id, {"life_status": "invalid"})


def _require_branch(obj: str) -> Callable[[Any], None]:
    def lack(sandbox: Any) -> None:
        sandbox.objects[obj].fields["field_branch__c"] = FieldSpec("text", "网点", required=True)

    return lack


TASKS, MEMBERSHIPS = "tasks are on", "campaign memberships are on"
KINDS = {
    ("zoho", "tasks"): _zoho("tasks", COQL, "coql", TASKS),
    ("zoho", "memberships"): _zoho(
        "campaign_memberships", "ZohoCRM.settings.related_lists.READ", "related_lists", MEMBERSHIPS
    ),
    ("salesforce", "tasks"): _salesforce("tasks", "Task", TASKS),
    ("salesforce", "memberships"): _salesforce(
        "campaign_memberships", "CampaignMember", MEMBERSHIPS
    ),
    ("fxiaoke", "tasks"): Kind(
        "tasks",
        "describe",
        TASKS,
        "follow-up tasks: FXiaoke describe: errorCode 15002",
        f"create object {FOLLOWUP}",
        {},
        _lack_object(FOLLOWUP),
        start_queries=1,  # memberships stay on: the gate reads their campaigns too
    ),
    ("fxiaoke", "memberships"): Kind(
        "campaign_memberships",
        "describe",
        MEMBERSHIPS,
        f"{CAMPAIGN_MEMBER} requires field_branch__c, which crmtier does not fill",
        "make these fields optional or give them a default value",
        {},
        _require_branch(CAMPAIGN_MEMBER),
        start_queries=1,
    ),
    # A configured campaign the tenant has invalidated (作废): the membership gate's query of
    # the campaigns, after its describe of the campaign-member object.
    ("fxiaoke", "campaigns"): Kind(
        "campaign_memberships",
        "describe",
        MEMBERSHIPS,
        "is invalidated (作废)",
        "restore it from the recycle bin, or stop adding to it: writeback.campaigns.",
        {},
        _invalidate_a_campaign,
        start_queries=1,
    ),
}
CASES = [
    pytest.param(
        crm,
        kind,
        on,
        ready,
        id=f"{crm}-{kind}-{'on' if on else 'off'}-{'ready' if ready else 'lacking'}",
        marks=needs[crm],
    )
    for crm, kind in KINDS
    for on in (True, False)
    for ready in (True, False)
]
Org = Callable[..., tuple[Sandbox, Path]]


@pytest.fixture
def org(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Org]:
    """``org(crm, lacking=Kind | None, off=switch)``: a started sandbox of 20 customers
    without ``lacking``'s prerequisite, and its crmtier.toml with ``off`` set false in
    [writeback]."""
    started: list[Sandbox] = []

    def make(crm: str, lacking: Kind | None = None, off: str = "") -> tuple[Sandbox, Path]:
        options = lacking.options if lacking else {}
        prepare = lacking.lack if lacking else None
        sandbox, text, _ = start_org(
            crm, tmp_path / crm, monkeypatch, started, prepare=prepare, **options
        )
        if off:
            text = text.replace(f"\n{off} = true\n", f"\n{off} = false\n")
            assert f"\n{off} = false\n" in text
        path = tmp_path / "crmtier.toml"
        path.write_text(text, encoding="utf-8")
        return sandbox, path

    yield make
    for sandbox in started:
        sandbox.stop()


@pytest.mark.parametrize(("crm", "kind", "on", "ready"), CASES)
def test_each_write_kind_on_and_off_with_its_prerequisite_and_without(
    org: Org, crm: str, kind: str, on: bool, ready: bool
) -> None:
    k = KINDS[(crm, kind)]
    sandbox, path = org(crm, lacking=None if ready else k, off="" if on else k.switch)
    synced = CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet"])
    calls = sandbox.server.calls  # type: ignore[attr-defined]
    if on and not ready:
        assert synced.exit_code == 2, synced.output
        [line] = synced.stderr.splitlines()
        assert line.startswith(f"crmtier sync: {k.named}, but ")
        assert k.missing in line and k.fix in line
        assert f"set {k.switch} = false in [writeback]" in line
        assert calls.count("read", "fields", "query", "query_more") == k.start_queries
        assert sandbox.write_calls() == 0
        return
    assert synced.exit_code == 0, synced.output
    assert sandbox.write_calls() > 0
    if not on and crm == "zoho":  # a kind that is off asks nothing of the CRM
        assert calls.count(k.call) == 0
    if crm != "zoho":  # one describe per enabled kind (the other stays on), at start
        assert calls.count("describe") == (2 if on else 1)


@pytest.mark.parametrize(
    ("crm", "kind"), [pytest.param(crm, kind, marks=needs[crm]) for crm, kind in KINDS]
)
def test_a_fields_only_run_asks_no_write_kind_prerequisite(org: Org, crm: str, kind: str) -> None:
    """``sync --only fields`` (the staged first sync of README's step 5) writes tier fields
    only, so a kind's missing prerequisite neither refuses it nor costs its check's call."""
    k = KINDS[(crm, kind)]
    sandbox, path = org(crm, lacking=k)
    synced = CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet", "--only", "fields"])
    assert synced.exit_code == 0, synced.output
    assert sandbox.write_calls() > 0
    assert sandbox.server.calls.count(k.call) == 0  # type: ignore[attr-defined]


@needs["zoho"]
def test_serve_refuses_to_start_too(org: Org, tmp_path: Path) -> None:
    """``crmtier serve`` builds the same engine (``open_parts``, which ``crmtier worker``
    shares) and exits 2 with the same one line, before it listens."""
    sandbox, path = org("zoho", lacking=KINDS[("zoho", "tasks")])
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
    start = KINDS[("zoho", "tasks")].start_queries  # the closed statuses' field list
    assert sandbox.server.calls.count("read", "fields") == start  # type: ignore[attr-defined]
    assert sandbox.write_calls() == 0
    assert served.stdout == ""  # never announced a listening address


@needs["fxiaoke"]
def test_an_invalidated_campaign_switched_off_as_its_fix_says_lets_the_sync_start(
    org: Org,
) -> None:
    """The invalidated campaign's fix offers ``writeback.campaigns.<key> = false``: with it
    the start gate asks nothing of that campaign and the sync runs (its members crmtier made
    stay, docs/policy.md)."""
    k = KINDS[("fxiaoke", "campaigns")]
    sandbox, path = org("fxiaoke", lacking=k)
    refused = CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet"])
    assert refused.exit_code == 2, refused.output
    [line] = refused.stderr.splitlines()
    key = line.split("writeback.campaigns.", 1)[1].split(" ", 1)[0]
    assert f"writeback.campaigns.{key} = false" in line
    text = path.read_text(encoding="utf-8")
    event_id = sandbox.mapping.writeback.campaigns[key]  # type: ignore[attr-defined]
    mapped = f'\n"{key}" = "{event_id}"\n'
    assert mapped in text
    path.write_text(text.replace(mapped, f'\n"{key}" = false\n'), "utf-8")
    synced = CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet"])
    assert synced.exit_code == 0, synced.output
    assert sandbox.write_calls() > 0
