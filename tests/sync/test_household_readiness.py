"""``sync.households.readiness`` and ``require``: with households on, what they need in the
CRM is asked of the connector (one ``household_check``) before anything relies on it, and a
missing prerequisite, or a connector that reads no households, stops the command with one
line; with households off nothing is asked. The CRMs' own checks run against their
sandboxes in tests/product/test_product_households_ready.py."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection

import pytest

from connectors.contract import HOUSEHOLDS_CHECK, SchemaCheck
from connectors.errors import ConfigError
from sync import households
from sync.households import NO_LINKS
from tests.sync.memory_crm import InMemoryConnector
from tiering_core.policy import policy_over_default
from tiering_core.rules.household import Link

ON = policy_over_default({"households": {"enabled": True}})
OFF = policy_over_default({"households": {"enabled": False}})
DISABLE = "set [households] enabled = false in the policy"


class NoHouseholds(InMemoryConnector):
    """A connector that reads no households (as the test-only memory plugin)."""

    def __init__(self) -> None:
        self.calls = Counter()


class Households(NoHouseholds):
    """A connector that reads households; its CRM answers ``line`` to the check."""

    def __init__(self, line: SchemaCheck) -> None:
        super().__init__()
        self.line = line

    def household_links(
        self, customers: Collection[str], households: Collection[str]
    ) -> list[Link]:
        self.calls["household"] += 1
        return []

    def household_check(self) -> SchemaCheck:
        self.calls["household_check"] += 1
        return self.line


MISSING = SchemaCheck(HOUSEHOLDS_CHECK, False, "Contacts has no field Role", "add Role")
READY = SchemaCheck(HOUSEHOLDS_CHECK, True, "Contacts.Role")


def test_with_households_off_nothing_is_asked() -> None:
    crm = Households(MISSING)
    assert households.readiness(crm, OFF) is None
    households.require(crm, OFF)
    assert households.load(crm, [], NO_LINKS, OFF) is None
    assert crm.calls == Counter()


def test_a_ready_crm_passes_with_one_check() -> None:
    crm = Households(READY)
    assert households.readiness(crm, ON) == READY
    households.require(crm, ON)
    assert crm.calls == Counter({"household_check": 2})


def test_a_missing_prerequisite_is_one_line_naming_it_and_its_fix() -> None:
    with pytest.raises(ConfigError) as raised:
        households.require(Households(MISSING), ON)
    assert str(raised.value) == (
        f"households are on in the policy, but Contacts has no field Role: add Role (or {DISABLE})"
    )


def test_a_connector_that_reads_no_households_is_refused_not_skipped() -> None:
    crm = NoHouseholds()
    line = households.readiness(crm, ON)
    assert line == SchemaCheck(
        HOUSEHOLDS_CHECK, False, "this CRM's connector reads no households", DISABLE
    )
    with pytest.raises(ConfigError) as raised:
        households.require(crm, ON)
    assert str(raised.value) == (
        f"households are on in the policy, but this CRM's connector reads no households: {DISABLE}"
    )
    with pytest.raises(ConfigError, match="reads no households"):
        households.load(crm, [], NO_LINKS, ON)  # an engine built without the gate
