"""The OAuth grant: the scopes the admin is told to grant are the scopes crmtier's calls
need. The sandbox refuses a call whose scope its grant lacks, as Zoho does (401
``OAUTH_SCOPE_MISMATCH``, connectors/sandbox/zoho_scopes.py), and grants by default the
list in connectors/zoho/scopes.py; here it is granted what docs/admin-setup.md lists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.contract import MembershipChange, WritePlan
from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from connectors.zoho.scopes import REQUIRED_SCOPES
from sync.write_readiness import require

ROOT = Path(__file__).resolve().parents[2]
_SCOPE = re.compile(r"ZohoCRM\.[A-Za-z_.]+[A-Za-z]")


def _admin_guide_scopes() -> set[str]:
    text = (ROOT / "docs" / "admin-setup.md").read_text("utf-8")
    section = text[text.index("## Zoho CRM") :]
    return set(_SCOPE.findall(section[: section.index("\n## ", 1)]))


def _readme_scopes() -> set[str]:
    return set(_SCOPE.findall((ROOT / "README.md").read_text("utf-8")))


@pytest.mark.parametrize("listed", [_admin_guide_scopes, _readme_scopes])
def test_the_setup_guides_name_every_scope_crmtier_needs_in_full(listed):
    assert set(REQUIRED_SCOPES) <= listed()


#: A narrower module scope the admin guide offers in place of ``ZohoCRM.modules.ALL``.
_NARROWER = re.compile(r"ZohoCRM\.modules\.[a-z]+\.(READ|CREATE|UPDATE|DELETE|WRITE|ALL)")


@pytest.mark.parametrize("listed", [_admin_guide_scopes, _readme_scopes])
def test_the_setup_guides_ask_for_no_scope_crmtier_does_not_use(listed):
    """A scope no call needs is a wider grant than the integration needs (least
    privilege): ``ZohoCRM.org.READ`` was asked for, yet neither crmtier nor zcrmsdk's own
    look-ups call the org APIs."""
    extra = {s for s in listed() - set(REQUIRED_SCOPES) if not _NARROWER.fullmatch(s)}
    assert extra == set()


def test_the_scopes_the_admin_guide_lists_serve_every_call_of_a_sync_and_of_doctor(
    sandbox_factory, zconnect
):
    """Campaign memberships included: zcrmsdk reads the Contacts related lists before it
    relates or delinks ("Related Lists Meta Data": ZohoCRM.settings.related_lists.READ)."""
    zoho = sandbox_factory("zoho", customers=3, scopes=_admin_guide_scopes())
    connector = zconnect(zoho)
    a, b, _ = zoho.customer_ids()
    join = (
        MembershipChange(a, "vip_events", True, "j"),
        MembershipChange(b, "vip_events", True, "k"),
    )
    assert all(r.ok for r in connector.apply(WritePlan(memberships=join)))
    leave = (MembershipChange(a, "vip_events", False, "l"),)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=leave)))
    assert zoho.memberships() == {(b, "vip_events")}
    assert sum(len(p.records) for p in connector.read_changed(None)) == 3
    assert not [c for c in connector.check() if "scope" in c.detail]
    assert connector.household_check().ok


def _relate(connector, zoho):
    plan = WritePlan(
        memberships=(MembershipChange(zoho.customer_ids()[0], "vip_events", True, "m"),)
    )
    connector.apply(plan)


CALLS = [
    ("ZohoCRM.settings.related_lists.READ", _relate),
    ("ZohoCRM.settings.fields.READ", lambda c, _: c.schema(c.module)),
    ("ZohoCRM.users.READ", lambda c, _: c.client.current_user()),
    ("ZohoCRM.notifications.READ", lambda c, _: c.client.channels()),
    ("ZohoCRM.coql.READ", lambda c, _: c.household_links.probe()),
    ("ZohoCRM.modules.ALL", lambda c, z: c.fetch(z.customer_ids()[:1])),
]


@pytest.mark.parametrize(("scope", "call"), CALLS, ids=[s for s, _ in CALLS])
def test_a_call_without_its_scope_is_refused_as_a_config_error_naming_the_scope(
    sandbox_factory, zconnect, scope, call
):
    """Not a transient failure retried on every run: the admin must change the grant."""
    zoho = sandbox_factory("zoho", customers=1, scopes=set(REQUIRED_SCOPES) - {scope})
    with pytest.raises(ConfigError, match="lacks a scope"):
        call(zconnect(zoho), zoho)
    assert zoho.write_calls() == 0


#: The admin guide's narrower grant in place of ``ZohoCRM.modules.ALL``, without Tasks.
_NO_TASKS = {
    *(set(REQUIRED_SCOPES) - {"ZohoCRM.modules.ALL"}),
    "ZohoCRM.modules.contacts.ALL",
    "ZohoCRM.modules.campaigns.READ",
}


@pytest.mark.parametrize(
    "tasks_scope", [None, "ZohoCRM.modules.tasks.CREATE", "ZohoCRM.modules.tasks.READ"]
)
def test_a_coql_look_up_of_tasks_needs_a_tasks_read_scope_beside_the_coql_one(
    sandbox_factory, zconnect, tasks_scope
):
    """ "scope=ZohoCRM.coql.READ (and) scope=ZohoCRM.modules.all (or)
    scope=ZohoCRM.modules.{module_name}.{operation_type}", ALL or READ ("Get Records
    through a COQL Query"): the sandbox refuses a query of Tasks without it, and doctor's
    line names the scope rather than passing and letting the first task plan fail."""
    scopes = _NO_TASKS | ({tasks_scope} if tasks_scope else set())
    zoho = sandbox_factory("zoho", customers=1, scopes=scopes)
    connector = zconnect(zoho)
    (line,) = [c for c in connector.check() if c.name == "tasks: key look-up"]
    granted = tasks_scope == "ZohoCRM.modules.tasks.READ"
    assert line.ok is granted
    assert granted or "ZohoCRM.modules.tasks.READ" in line.fix
    if not granted:  # the start-up gate of sync, serve and worker: the same line
        with pytest.raises(ConfigError, match="tasks are on, but tasks: key look-up"):
            require(connector, WritebackConfig(tasks=True))
    assert connector.household_check().ok  # Contacts: its own scope serves its COQL


def test_a_households_query_needs_a_scope_of_the_customer_module(sandbox_factory, zconnect):
    scopes = _NO_TASKS - {"ZohoCRM.modules.contacts.ALL"} | {"ZohoCRM.modules.tasks.ALL"}
    line = zconnect(sandbox_factory("zoho", customers=1, scopes=scopes)).household_check()
    assert not line.ok and "ZohoCRM.modules.contacts.READ" in line.fix


@pytest.mark.parametrize("granted", [True, False])
def test_doctor_says_whether_the_grant_can_read_the_related_lists_memberships_need(
    sandbox_factory, zconnect, granted
):
    scopes = set(REQUIRED_SCOPES) - (set() if granted else {"ZohoCRM.settings.related_lists.READ"})
    zoho = sandbox_factory("zoho", customers=1, scopes=scopes)
    (line,) = [c for c in zconnect(zoho).check() if c.name == "campaigns: related list"]
    assert line.ok is granted
    assert granted or "ZohoCRM.settings.related_lists.READ" in line.fix
