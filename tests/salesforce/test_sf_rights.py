"""docs/targets.md S6 for Salesforce: ``doctor``'s integration-user rights lines come from what the
org tells the running user (``describe``, ``UserPermissionAccess``), and the sandbox grants
and enforces exactly those rights."""

from __future__ import annotations

import pytest
from sf_helpers import FAST_RETRY

from connectors.contract import SchemaCheck
from connectors.sandbox.salesforce_specs import FieldSpec, IntegrationRights

RIGHTS = "integration user rights"


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=2)


def _rights(connector) -> dict[str, SchemaCheck]:
    return {c.name: c for c in connector.check() if c.name.startswith(RIGHTS)}


def test_least_privilege_gives_four_ok_rights_lines(sandbox, connect):
    lines = _rights(connect(sandbox, **FAST_RETRY))
    assert sorted(lines) == [
        f"{RIGHTS}: API only",
        f"{RIGHTS}: delete Account",
        f"{RIGHTS}: field edit",
        f"{RIGHTS}: system permissions",
    ]
    for line in lines.values():
        assert line.ok and not line.fix, line
    assert lines[f"{RIGHTS}: system permissions"].detail == "none beyond API access"
    assert lines[f"{RIGHTS}: field edit"].detail.startswith("read-only on ")


def test_broad_rights_are_warnings_naming_what_to_remove(sandbox, connect):
    sandbox.org.rights = IntegrationRights.broad()
    connector = connect(sandbox, **FAST_RETRY)
    lines = _rights(connector)
    for line in lines.values():
        assert line.severity == "warning" and line.fix, line
    edit = lines[f"{RIGHTS}: field edit"]
    inputs = sorted(
        set(connector.mapping.fields.values()) - set(connector.writeback.fields.values())
    )
    assert not edit.ok
    assert edit.detail == f"edit on {len(inputs)} non-tier fields: {', '.join(inputs[:5])}…"
    assert "Edit" in edit.fix
    assert not lines[f"{RIGHTS}: delete Account"].ok
    system = lines[f"{RIGHTS}: system permissions"]
    assert not system.ok
    assert system.detail == "Modify All Data, View All Data, Customize Application"
    api_only = lines[f"{RIGHTS}: API only"]
    assert api_only.ok and "Minimum Access - API Only Integrations" in api_only.fix
    assert not any(c.severity == "error" and not c.ok for c in connector.check())


def test_one_broad_right_is_one_warning(sandbox, connect):
    sandbox.org.rights = IntegrationRights(modify_all_data=True)
    lines = _rights(connect(sandbox, **FAST_RETRY))
    failing = {name: c.detail for name, c in lines.items() if not c.ok}
    assert failing == {f"{RIGHTS}: system permissions": "Modify All Data"}


def test_input_fields_are_read_only_for_the_integration_user_only(sandbox, connect):
    """The connector's API write to an input field fails as in Salesforce; the sandbox's
    own control edit of the same field still works; tier fields stay writable."""
    connector = connect(sandbox, **FAST_RETRY)
    cid = sandbox.customer_id(0)
    deposits = connector.mapping.fields["assets.deposits"]
    tier = connector.writeback.fields["value_tier"]
    saved = connector.client.collection(
        "PATCH",
        "composite/sobjects",
        {
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "id": cid, deposits: 1.0},
                {"attributes": {"type": "Account"}, "id": cid, tier: "wealth"},
            ],
        },
    )
    assert [r["success"] for r in saved] == [False, True]
    assert saved[0]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert saved[0]["errors"][0]["fields"] == [deposits]
    sandbox.edit_customer(cid, {"assets.deposits": 123.0})
    assert sandbox.org.get("Account", cid)[deposits] == 123.0

    sandbox.org.rights = IntegrationRights(edit_input_fields=True)
    again = connector.client.collection(
        "PATCH",
        "composite/sobjects",
        {
            "allOrNone": False,
            "records": [{"attributes": {"type": "Account"}, "id": cid, deposits: 2.0}],
        },
    )
    assert again[0]["success"] is True


def test_deleting_a_customer_needs_the_delete_right(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    cid = sandbox.customer_id(1)
    refused = connector.client.collection("DELETE", "composite/sobjects", None, ids=cid)
    assert refused[0]["errors"][0]["statusCode"] == "INSUFFICIENT_ACCESS_OR_READONLY"
    assert sandbox.org.get("Account", cid) is not None
    sandbox.org.rights = IntegrationRights(delete_customers=True)
    assert connector.client.collection("DELETE", "composite/sobjects", None, ids=cid)[0]["success"]


def test_user_permission_access_answers_the_running_users_permissions(sandbox, connect):
    client = connect(sandbox, **FAST_RETRY).client
    query = "SELECT PermissionsModifyAllData, PermissionsApiUserOnly FROM UserPermissionAccess"
    rows = client.query_all(query)
    assert [(r["PermissionsModifyAllData"], r["PermissionsApiUserOnly"]) for r in rows] == [
        (False, True)
    ]
    sandbox.org.rights = IntegrationRights.broad()
    rows = client.query_all(query)
    assert [(r["PermissionsModifyAllData"], r["PermissionsApiUserOnly"]) for r in rows] == [
        (True, False)
    ]


def test_re_granting_keeps_fields_created_since(sandbox):
    """A field the Metadata API added survives a change of the integration user's rights."""
    sandbox.org.schema["Account"].add(FieldSpec("Added_Later__c", "string"))
    sandbox.org.rights = IntegrationRights.broad()
    assert "Added_Later__c" in sandbox.org.schema["Account"].fields
    assert sandbox.org.schema["Account"].fields["Deposits__c"].updateable
