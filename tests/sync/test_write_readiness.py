"""``sync.write_readiness``: which write kinds a configuration enables, and that only their
prerequisites are asked of the connector (a kind that is off, a fields-only run and a
connector without prerequisites ask nothing, unless the store holds sales tasks or
memberships crmtier made, which a sanctions hit withdraws whatever the switches); a failed
line is one ``ConfigError`` naming the kind, what is missing, its fix and the switch. The
Zoho and Salesforce checks run against their sandboxes in
tests/product/test_product_write_gate.py (and, with a kind off while the store holds what
it made, tests/product/test_product_tasks_off_gate.py)."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from connectors.contract import SchemaCheck, WriteKind
from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from sync import write_readiness
from sync.state import Withdrawable
from tests.sync.memory_crm import InMemoryConnector

MISSING = SchemaCheck("tasks: key look-up", False, "COQL refused", "grant ZohoCRM.coql.READ")


class Prerequisites(InMemoryConnector):
    """A connector whose every write kind answers ``line``, recording what was asked."""

    def __init__(self, line: SchemaCheck) -> None:
        self.line = line
        self.asked: list[WriteKind] = []

    def write_checks(self, kinds: Collection[WriteKind]) -> list[SchemaCheck]:
        self.asked += kinds
        return [self.line]


def _writeback(tasks: bool, memberships: bool, campaigns: bool = True) -> WritebackConfig:
    return WritebackConfig(
        tasks=tasks,
        campaign_memberships=memberships,
        campaigns={"wealth_upgrade": "1001"} if campaigns else {},
    )


@pytest.mark.parametrize(
    ("writeback", "only_fields", "asked"),
    [
        (_writeback(True, True), False, ["task", "membership"]),
        (_writeback(True, False), False, ["task"]),
        (_writeback(False, True), False, ["membership"]),
        (_writeback(False, False), False, []),
        (_writeback(True, True, campaigns=False), False, ["task"]),
        (_writeback(True, True), True, []),
    ],
    ids=["both", "tasks", "memberships", "neither", "no-campaigns", "only-fields"],
)
def test_only_the_enabled_kinds_are_asked(
    writeback: WritebackConfig, only_fields: bool, asked: list[str]
) -> None:
    crm = Prerequisites(SchemaCheck("ok", True))
    write_readiness.require(crm, writeback, only_fields=only_fields)
    assert crm.asked == asked
    # every kind the configuration enables is one the gate asks about, once: none listed
    # only to be dropped (a task closure is gated with its tasks)
    assert write_readiness.enabled_kinds(writeback, only_fields=only_fields) == asked


def test_a_failed_line_is_one_error_naming_kind_fix_and_switch() -> None:
    crm = Prerequisites(MISSING)
    with pytest.raises(ConfigError) as raised:
        write_readiness.require(crm, _writeback(True, False))
    assert str(raised.value) == (
        "tasks are on, but tasks: key look-up: COQL refused: grant ZohoCRM.coql.READ "
        "(or set tasks = false in [writeback])"
    )


def test_a_warning_does_not_stop_the_start() -> None:
    line = SchemaCheck("campaigns: related list", False, "slow", "later", severity="warning")
    write_readiness.require(Prerequisites(line), _writeback(False, True))


def test_a_connector_without_prerequisites_is_asked_nothing() -> None:
    assert write_readiness.readiness(InMemoryConnector(), ["task"]) == []


class Held:
    """The store's ``Withdrawable`` as the gate reads it (its memberships always, its sales
    tasks when asked), recording whether the sales tasks were asked."""

    def __init__(self, sales_tasks: int = 0, memberships: dict[str, int] | None = None) -> None:
        self.held = Withdrawable(sales_tasks, memberships or {})
        self.asked: list[bool] = []

    def __call__(self, tasks: bool) -> Withdrawable:
        self.asked.append(tasks)
        return Withdrawable(self.held.sales_tasks if tasks else 0, self.held.memberships)


def test_tasks_off_with_sales_tasks_still_open_check_what_closing_them_needs() -> None:
    """A sanctions hit closes the sales tasks crmtier made whatever ``tasks`` says now, and
    closing needs the rights making did: the gate asks for them and names the open tasks;
    the switch, already off, is no fix."""
    crm, held = Prerequisites(MISSING), Held(sales_tasks=3)
    with pytest.raises(ConfigError) as raised:
        write_readiness.require(crm, _writeback(False, False), held=held)
    assert str(raised.value) == (
        "tasks are off but 3 sales tasks crmtier made are still open: closing them on a "
        "sanctions hit needs tasks: key look-up: COQL refused: grant ZohoCRM.coql.READ"
    )
    assert held.asked == [True] and crm.asked == ["task_close"]


@pytest.mark.parametrize("only_fields", [False, True], ids=["tasks-off", "only-fields"])
def test_no_sales_task_held_asks_no_task_prerequisite(only_fields: bool) -> None:
    crm, held = Prerequisites(MISSING), Held(sales_tasks=0)
    write_readiness.require(crm, _writeback(False, False), only_fields=only_fields, held=held)
    assert crm.asked == [] and held.asked == [True]


def test_a_fields_only_run_checks_closing_while_sales_tasks_are_open() -> None:
    crm = Prerequisites(MISSING)
    with pytest.raises(ConfigError, match=r"^this run writes fields only but 2 sales tasks"):
        write_readiness.require(crm, _writeback(True, True), only_fields=True, held=Held(2))


def test_tasks_on_read_no_sales_task_of_the_store() -> None:
    """With tasks on the store's sales tasks are not counted (one query spared); its
    memberships are, at every start (``test_a_campaign_the_config_no_longer_names...``)."""
    crm, held = Prerequisites(SchemaCheck("ok", True)), Held(sales_tasks=5)
    write_readiness.require(crm, _writeback(True, True), held=held)
    assert held.asked == [False] and crm.asked == ["task", "membership"]


def test_memberships_off_with_memberships_held_need_each_campaign_s_id() -> None:
    """Removing a sanctioned customer's memberships needs the campaign's CRM id: one the
    config no longer names refuses the start; a mapped one asks the membership checks."""
    crm = Prerequisites(SchemaCheck("ok", True))
    held = Held(memberships={"wealth_upgrade": 2, "vip_events": 1})
    with pytest.raises(ConfigError) as raised:
        write_readiness.require(crm, _writeback(True, False), held=held)
    assert str(raised.value) == (
        "[writeback.campaigns] names no campaign vip_events but crmtier holds 1 member there "
        "(made, or in doubt): a sanctions hit could not remove them: keep its CRM id so "
        'crmtier can, adding no one: vip_events = { id = "<CRM id>", add = false }'
    )
    write_readiness.require(
        crm, _writeback(True, False), held=Held(memberships={"wealth_upgrade": 2})
    )
    assert crm.asked[-1] == "membership"


@pytest.mark.parametrize("tasks", [True, False], ids=["tasks-on", "tasks-off"])
def test_a_campaign_the_config_no_longer_names_refuses_the_start_with_memberships_on(
    tasks: bool,
) -> None:
    """With memberships on, a campaign the store holds members in (made, or in doubt) but
    that ``[writeback.campaigns]`` no longer names (the policy dropped it) is refused at
    the start in one line, as with memberships off, not met by the planner mid-run after
    the run wrote fields; its CRM id given back with ``add = false``, the start passes."""
    crm = Prerequisites(SchemaCheck("ok", True))
    held = Held(memberships={"wealth_upgrade": 2, "spring_promo": 3})
    with pytest.raises(ConfigError) as raised:
        write_readiness.require(crm, _writeback(tasks, True), held=held)
    assert str(raised.value) == (
        "[writeback.campaigns] names no campaign spring_promo but crmtier holds 3 members "
        "there (made, or in doubt): a sanctions hit could not remove them: keep its CRM id "
        'so crmtier can, adding no one: spring_promo = { id = "<CRM id>", add = false }'
    )
    lines = write_readiness.withdrawal_checks(crm, _writeback(tasks, True), ["membership"], held)
    assert [(line.name, line.ok) for line in lines] == [(write_readiness.UNNAMED_HELD, False)]
    given_back = WritebackConfig.model_validate(
        {
            "tasks": tasks,
            "campaigns": {"wealth_upgrade": "1001", "spring_promo": {"id": "1002", "add": False}},
        }
    )
    write_readiness.require(crm, given_back, held=held)


def _vip_off(memberships: bool) -> WritebackConfig:
    """``[writeback.campaigns] vip_events = false``, beside a mapped ``wealth_upgrade``."""
    return WritebackConfig.model_validate(
        {
            "campaign_memberships": memberships,
            "campaigns": {"wealth_upgrade": "1001", "vip_events": False},
        }
    )


@pytest.mark.parametrize("memberships", [True, False], ids=["memberships-on", "memberships-off"])
def test_a_campaign_switched_off_that_holds_members_crmtier_made_refuses_the_start(
    memberships: bool,
) -> None:
    """``vip_events = false`` leaves crmtier no CRM id to remove a sanctioned customer
    from it: while the store holds members crmtier made there (or may have: in doubt), the
    start is refused with one line naming the campaign, the count and the fix that keeps
    the id; with memberships on too, where nothing else is off. Holding none, it starts."""
    crm = Prerequisites(SchemaCheck("ok", True))
    held = Held(memberships={"wealth_upgrade": 2, "vip_events": 3})
    with pytest.raises(ConfigError) as raised:
        write_readiness.require(crm, _vip_off(memberships), held=held)
    assert str(raised.value) == (
        "[writeback.campaigns] vip_events = false but crmtier holds 3 members there (made, "
        "or in doubt): a sanctions hit could not remove them: keep its CRM id so crmtier "
        'can, adding no one: vip_events = { id = "<CRM id>", add = false }'
    )
    assert held.asked == [False]
    one = Held(memberships={"vip_events": 1})
    with pytest.raises(ConfigError, match=r"holds 1 member there "):
        write_readiness.require(crm, _vip_off(memberships), held=one)
    write_readiness.require(
        crm, _vip_off(memberships), held=Held(memberships={"wealth_upgrade": 2})
    )
    lines = write_readiness.withdrawal_checks(crm, _vip_off(True), ["membership"], held)
    assert [(line.name, line.ok) for line in lines] == [(write_readiness.SWITCHED_OFF_HELD, False)]


def test_doctor_s_withdrawal_lines_are_one_a_kind_held_and_say_what_the_gate_says() -> None:
    """``withdrawal_checks``: one line a kind that is off and held (``crmtier doctor``
    prints them), ok when its prerequisites are met; a failed one's detail and fix are the
    gate's refusal, word for word."""
    held = Held(sales_tasks=2, memberships={"wealth_upgrade": 4})
    off = _writeback(False, False)
    lines = write_readiness.withdrawal_checks(Prerequisites(SchemaCheck("ok", True)), off, [], held)
    assert [(line.name, line.ok) for line in lines] == [
        (write_readiness.CLOSE_TASKS, True),
        (write_readiness.REMOVE_MEMBERSHIPS, True),
    ]
    failing = write_readiness.withdrawal_checks(Prerequisites(MISSING), off, [], held)
    assert [line.ok for line in failing] == [False, False]
    with pytest.raises(ConfigError) as raised:
        write_readiness.require(Prerequisites(MISSING), off, held=held)
    assert str(raised.value) == f"{failing[0].detail}: {failing[0].fix}"
    assert write_readiness.withdrawal_checks(Prerequisites(MISSING), off, [], Held()) == []
