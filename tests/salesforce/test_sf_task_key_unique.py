"""crmtier upserts Tasks by its key field, so the field must be Unique as well as External ID:
"If you're upserting a record for an object that has the External ID attribute selected but
not the Unique attribute selected (a non-unique index), your client application must have the
permission 'View All Data'" (REST API Developer Guide, "Upsert Records Using sObject Rows by
External ID"), which the integration user must not hold. ``doctor`` and the start-up gate read
describe's ``unique``; the sandbox's describe reports the attribute as the field has it."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sf_helpers import FAST_RETRY, task

from connectors.contract import TaskClose, WritePlan
from connectors.salesforce.batches import BATCH
from connectors.salesforce.client import select
from connectors.salesforce.client_metadata import MetadataApi
from connectors.salesforce.metadata import fix_schema, key_component
from connectors.sandbox.salesforce_schema import EXTERNAL_KEY_FIELD, key_field
from tiering_core.rules.strategy import dedupe_key

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
    assert failing[0].fix == (
        f"tick Unique (case-sensitive) on Task.{EXTERNAL_KEY_FIELD} in Setup, after removing "
        "duplicate values from Tasks (Recycle Bin too: Salesforce refuses Unique while two "
        "share one)"
    )


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
        "after removing duplicate values from Tasks (Recycle Bin too: Salesforce refuses "
        "Unique while two share one) (crmtier does not change an existing field's definition)"
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


def test_a_closure_closes_every_open_task_under_a_key_that_is_not_unique(sandbox, connect):
    """The gate refuses to start on a key that is not Unique, but Unique can be unticked
    after a start (or Tasks cloned while it was off), and then two Tasks carry one key. A
    closure takes a restricted customer's sales task away from the RM: it closes each
    open Task under the key, not whichever one the look-up listed last."""
    _not_unique(sandbox, "Task")
    connector = connect(sandbox)
    customer = sandbox.customer_id(0)
    connector.apply(WritePlan(tasks=(task(customer, "rm_call:cloned"),)))
    clone = {"attributes": {"type": "Task"}, EXTERNAL_KEY_FIELD: "rm_call:cloned"}
    (saved,) = sandbox.org.create([{**clone, "Subject": "Call", "WhatId": customer}], True)
    assert saved.success, "the sandbox takes a second Task under a key that is not Unique"
    assert [t.open for t in sandbox.tasks()] == [True, True]

    (closed,) = connector.apply(
        WritePlan(task_closes=(TaskClose(customer, "rm_call:cloned", "rm_call"),))
    )

    assert closed.ok
    assert [t.open for t in sandbox.tasks()] == [False, False]


def test_a_task_look_up_of_200_keys_fits_a_rest_request_uri():
    """200 keys a look-up (``BATCH``): the query goes in the URI of a GET, and Salesforce
    takes at most 16,384 bytes of URI and headers together (Help 000386264), far below
    SOQL's own 100,000 characters. Room is left for the path and the headers."""
    keys = [dedupe_key(str(i)) for i in range(BATCH)]
    query = select(
        ["Id", EXTERNAL_KEY_FIELD, "IsClosed"], "Task", f"WHERE {EXTERNAL_KEY_FIELD} IN {{}}", keys
    )
    assert len(urlencode({"q": query})) < 10_000
