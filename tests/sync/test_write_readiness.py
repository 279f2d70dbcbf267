"""``sync.write_readiness``: which write kinds a configuration enables, and that only their
prerequisites are asked of the connector (a kind that is off, a fields-only run and a
connector without prerequisites ask nothing); a failed line is one ``ConfigError`` naming
the kind, what is missing, its fix and the switch. The Zoho and Salesforce checks run
against their sandboxes in tests/product/test_product_write_gate.py."""

from __future__ import annotations

from collections.abc import Collection

import pytest

from connectors.contract import SchemaCheck, WriteKind
from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from sync import write_readiness
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
