"""crmtier upserts Tasks by its key field, so the field must be Unique as well as External ID:
"If you're upserting a record for an object that has the External ID attribute selected but
not the Unique attribute selected (a non-unique index), your client application must have the
permission 'View All Data'" (REST API Developer Guide, "Upsert Records Using sObject Rows by
External ID"), which the integration user must not hold. ``doctor`` and the start-up gate read
describe's ``unique``; the sandbox's describe reports the attribute as the field has it."""

from __future__ import annotations

import pytest
from sf_helpers import FAST_RETRY

from connectors.salesforce.client_metadata import MetadataApi
from connectors.salesforce.metadata import fix_schema, key_component
from connectors.sandbox.salesforce_schema import EXTERNAL_KEY_FIELD, key_field

TASK_KEY = f"external id Task.{EXTERNAL_KEY_FIELD}"


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=2)


def _not_unique(sandbox, obj: str) -> None:
    """An org whose admin made the key External ID and left Unique off."""
    sandbox.org.schema[obj].add(key_field(unique=False))


def _key(connector, obj: str) -> dict:
    return next(
        f for f in connector.client.describe(obj)["fields"] if f["name"] == EXTERNAL_KEY_FIELD
    )


def test_the_sandbox_describes_the_key_as_unique_only_when_it_is(sandbox, connect):
    connector = connect(sandbox)
    assert (_key(connector, "Task")["externalId"], _key(connector, "Task")["unique"]) == (
        True,
        True,
    )
    _not_unique(sandbox, "Task")
    assert (_key(connector, "Task")["externalId"], _key(connector, "Task")["unique"]) == (
        True,
        False,
    )


def test_a_task_key_that_is_not_unique_fails_doctor_in_one_line(sandbox, connect):
    _not_unique(sandbox, "Task")
    checks = {c.name: c for c in connect(sandbox, **FAST_RETRY).check()}
    failing = [c for c in checks.values() if not c.ok and c.severity == "error"]
    assert [c.name for c in failing] == [TASK_KEY]
    assert "View All Data" in failing[0].detail
    assert failing[0].fix == f"tick Unique (case-sensitive) on Task.{EXTERNAL_KEY_FIELD} in Setup"


def test_the_start_up_gate_refuses_task_writes_on_a_key_that_is_not_unique(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    assert all(c.ok for c in connector.write_checks({"task"}))
    _not_unique(sandbox, "Task")
    assert [c.name for c in connector.write_checks({"task"}) if not c.ok] == [TASK_KEY]


def test_a_campaign_member_key_need_not_be_unique(sandbox, connect):
    """Members are inserted (a second insert answers DUPLICATE_VALUE on the campaign and
    contact pair) and removed by id, never upserted: no View All Data is at stake."""
    _not_unique(sandbox, "CampaignMember")
    connector = connect(sandbox, **FAST_RETRY)
    assert all(c.ok for c in connector.write_checks({"membership"}))


def test_fix_leaves_an_existing_key_that_is_not_unique_to_the_admin(sandbox, connect):
    _not_unique(sandbox, "Task")
    connector = connect(sandbox, **FAST_RETRY)
    fix = fix_schema(
        connector.client, connector.settings, connector.mapping.object, connector.writeback
    )
    assert fix.by_hand == [
        f"Task.{EXTERNAL_KEY_FIELD} is an External ID but not Unique: tick Unique in Setup "
        "(crmtier does not change an existing field's definition)"
    ]
    assert f"Task.{EXTERNAL_KEY_FIELD}" in fix.handled


def test_a_created_key_keeps_the_unique_attribute_its_component_declares(sandbox, connect):
    del sandbox.org.schema["Task"].fields[EXTERNAL_KEY_FIELD]
    del sandbox.org.schema["CampaignMember"].fields[EXTERNAL_KEY_FIELD]
    metadata = MetadataApi(connect(sandbox, **FAST_RETRY).client)
    created = metadata.create(
        "CustomField",
        [
            key_component(f"Activity.{EXTERNAL_KEY_FIELD}"),
            {**key_component(f"CampaignMember.{EXTERNAL_KEY_FIELD}"), "unique": False},
        ],
    )
    assert [r["success"] for r in created] == [True, True]
    hidden = sandbox.metadata.hidden  # created, not yet granted to the integration user
    assert hidden[f"Activity.{EXTERNAL_KEY_FIELD}"].unique is True
    assert hidden[f"CampaignMember.{EXTERNAL_KEY_FIELD}"].unique is False
