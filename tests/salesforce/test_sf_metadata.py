"""The Metadata API path of ``doctor --fix``: the client's SOAP calls against the sandbox's
endpoint (per-component results, faults, an expired session), the field types derived from
the tiering model, and ``fix_schema`` creating, granting and confirming fields."""

from __future__ import annotations

import pytest
from sf_helpers import FAST_RETRY, save_account

from connectors.errors import ConfigError
from connectors.salesforce.client_metadata import MetadataApi
from connectors.salesforce.metadata import (
    KEY_LENGTH,
    fix_schema,
    key_component,
    writeback_component,
)
from connectors.sandbox.salesforce_metadata import INTEGRATION_PERMISSION_SET, soap_fault
from connectors.sandbox.salesforce_specs import FieldSpec
from tests.foundation.outputs_check import salesforce_described, schema_disagreements
from tiering_core.outputs import output_type


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=2)


def _drop(sandbox, obj: str, *names: str) -> None:
    """An org that lacks ``names`` on ``obj`` (what an install starts from)."""
    for name in names:
        del sandbox.org.schema[obj].fields[name]


def _describe(connector, obj: str) -> dict[str, dict]:
    return {f["name"]: f for f in connector.client.describe(obj)["fields"]}


@pytest.mark.parametrize(
    ("output", "wanted"),
    [
        ("value_tier", "Picklist"),
        ("aml_risk", "Picklist"),
        ("value_score", "Number"),
        ("edd_required", "Checkbox"),
        ("next_review", "Date"),
        ("reasons", "LongTextArea"),
        ("service_level", "Text"),
        ("policy_version", "Text"),
    ],
)
def test_write_back_fields_are_typed_from_the_tiering_model(output, wanted):
    component = writeback_component(output, "Account.X__c")
    assert component["type"] == wanted
    if wanted == "Picklist":
        values = [v["fullName"] for v in component["valueSet"]["valueSetDefinition"]["value"]]
        assert "unrated" in values and component["valueSet"]["restricted"] is True


def test_only_the_aml_risk_field_offers_prohibited():
    assert "prohibited" in str(writeback_component("aml_risk", "Account.X__c"))
    assert "prohibited" not in str(writeback_component("credit_risk", "Account.X__c"))


def test_a_created_field_is_invisible_until_the_permission_set_grants_it(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    client = connector.client
    metadata = MetadataApi(client)
    _drop(sandbox, "Account", "Value_Score__c")
    results = metadata.create(
        "CustomField", [writeback_component("value_score", "Account.Value_Score__c")]
    )
    assert results[0]["success"] is True
    assert "Value_Score__c" not in _describe(connector, "Account")
    [pset] = metadata.read("PermissionSet", [INTEGRATION_PERMISSION_SET, "Nobody"])
    assert pset["fullName"] == INTEGRATION_PERMISSION_SET
    grant = {"field": "Account.Value_Score__c", "readable": True, "editable": True}
    [upserted] = metadata.upsert(
        "PermissionSet",
        [{"fullName": pset["fullName"], "label": pset["label"], "fieldPermissions": [grant]}],
    )
    assert upserted["success"] is True and upserted["created"] is False
    field = _describe(connector, "Account")["Value_Score__c"]
    assert (field["type"], field["updateable"]) == ("double", True)
    assert client.calls["metadata"] == sandbox.server.calls.count("metadata") == 3


def test_each_component_answers_for_itself(sandbox, connect):
    metadata = MetadataApi(connect(sandbox, **FAST_RETRY).client)
    results = metadata.create(
        "CustomField",
        [
            writeback_component("value_tier", "Account.Value_Tier__c"),  # exists
            {"fullName": "Account.Short__c", "label": "Short", "type": "Text"},  # no length
            key_component("Nowhere.Crmtier_Key__c"),
            writeback_component("next_review", "Account.Review_2__c"),
        ],
    )
    assert [r["success"] for r in results] == [False, False, False, True]
    codes = [r["errors"][0]["statusCode"] for r in results[:3]]
    assert codes == [
        "DUPLICATE_DEVELOPER_NAME",
        "FIELD_INTEGRITY_EXCEPTION",
        "INVALID_CROSS_REFERENCE_KEY",
    ]


def test_a_fault_is_a_config_error_and_an_expired_session_is_renewed(sandbox, connect):
    client = connect(sandbox, **FAST_RETRY).client
    metadata = MetadataApi(client)
    with pytest.raises(ConfigError, match="INVALID_TYPE"):
        metadata.create("CustomObject", [{"fullName": "Tier__c", "label": "Tier"}])
    sandbox.expire_session()
    results = metadata.create("CustomField", [key_component("Account.Key_2__c")])
    assert results[0]["success"] is True
    assert client.calls["oauth_token"] == 2  # the SessionHeader fault made it log in again
    sandbox.server.inject("metadata", response=soap_fault("UNKNOWN_EXCEPTION", "boom"), times=1)
    assert metadata.create("CustomField", [key_component("Account.Key_3__c")])[0][
        "success"
    ]  # a server-side fault is transient: retried


def test_fix_schema_creates_grants_and_confirms(sandbox, connect):
    connector = connect(sandbox, permission_set=INTEGRATION_PERMISSION_SET, **FAST_RETRY)
    _drop(sandbox, "Account", "Value_Tier__c", "Tier_Reasons__c")
    _drop(sandbox, "Task", "Crmtier_Key__c")
    fix = fix_schema(
        connector.client, connector.settings, connector.mapping.object, connector.writeback
    )
    assert fix.by_hand == []
    assert sorted(fix.fixed) == [
        "created Account.Tier_Reasons__c (LongTextArea), editable through permission set "
        f"{INTEGRATION_PERMISSION_SET}",
        "created Account.Value_Tier__c (Picklist), editable through permission set "
        f"{INTEGRATION_PERMISSION_SET}",
        "created Task.Crmtier_Key__c (Text), editable through permission set "
        f"{INTEGRATION_PERMISSION_SET}",
    ]
    key = _describe(connector, "Task")["Crmtier_Key__c"]
    assert key["externalId"] is True and key["updateable"] is True
    assert not [c for c in connector.check() if not c.ok and c.severity == "error"]


def test_fields_fix_creates_agree_with_the_outputs_declaration(sandbox, connect):
    """From an org with none of crmtier's write-back fields, ``--fix`` creates each one as
    the declaration types it (tiering_core/outputs.py): describe afterwards agrees."""
    connector = connect(sandbox, permission_set=INTEGRATION_PERMISSION_SET, **FAST_RETRY)
    fields = connector.writeback.fields
    _drop(sandbox, "Account", *fields.values())
    fix = fix_schema(
        connector.client, connector.settings, connector.mapping.object, connector.writeback
    )
    assert fix.by_hand == [] and len(fix.fixed) == len(fields)
    described = salesforce_described(connector.client.describe("Account"))
    assert schema_disagreements("salesforce", fields, described) == []


def test_the_grant_keeps_what_the_permission_set_already_grants(sandbox, connect):
    """The set goes back whole, our grants merged in: an update that replaces the
    component (the sandbox's cautious reading) must not revoke the bank's other grants."""
    connector = connect(sandbox, permission_set=INTEGRATION_PERMISSION_SET, **FAST_RETRY)
    before = dict(sandbox.metadata.permission_sets[INTEGRATION_PERMISSION_SET].fields)
    before["Account.Owner_Note__c"] = (True, False)
    sandbox.metadata.permission_sets[INTEGRATION_PERMISSION_SET].fields = dict(before)
    sandbox.org.schema["Account"].add(FieldSpec("Owner_Note__c", "string"))
    _drop(sandbox, "Account", "Value_Tier__c")
    fix = fix_schema(
        connector.client, connector.settings, connector.mapping.object, connector.writeback
    )
    assert fix.by_hand == []
    after = sandbox.metadata.permission_sets[INTEGRATION_PERMISSION_SET].fields
    assert after == {**before, "Account.Value_Tier__c": (True, True)}


def test_without_a_permission_set_the_grant_is_by_hand(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    _drop(sandbox, "Account", "EDD_Required__c")
    fix = fix_schema(
        connector.client, connector.settings, connector.mapping.object, connector.writeback
    )
    assert fix.fixed == []
    [line] = fix.by_hand
    assert line.startswith("Account.EDD_Required__c was created, but the integration user")
    assert "[crm] permission_set" in line
    assert "EDD_Required__c" in fix.handled


def test_a_field_fix_creates_holds_the_length_it_declares(sandbox, connect):
    """``--fix`` creates the reasons and the key at their declared lengths; the sandbox's
    field then refuses longer text (STRING_TOO_LONG), as the org's does, where it took any
    length and describe said 0."""
    connector = connect(sandbox, permission_set=INTEGRATION_PERMISSION_SET, **FAST_RETRY)
    reasons = connector.writeback.fields["reasons"]
    _drop(sandbox, "Account", reasons)
    _drop(sandbox, "Task", "Crmtier_Key__c")
    fix_schema(connector.client, connector.settings, connector.mapping.object, connector.writeback)
    limit = output_type("reasons").max_length
    assert limit is not None
    assert _describe(connector, "Account")[reasons]["length"] == limit
    assert _describe(connector, "Task")["Crmtier_Key__c"]["length"] == KEY_LENGTH
    saved = save_account(connector, sandbox.customer_id(0), **{reasons: "r" * (limit + 1)})
    assert saved["errors"][0]["statusCode"] == "STRING_TOO_LONG"
