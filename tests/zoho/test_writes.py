"""Write-back to Zoho: batching (docs/targets.md P1), workflow triggers, per-record failures (R4),
picklist validation before any write, idempotent campaign memberships (tasks:
test_task_writes.py)."""

from __future__ import annotations

import math
from datetime import date

import pytest

from connectors.contract import FieldUpdate, MembershipChange, WritePlan
from connectors.errors import ConfigError
from tests.zoho.test_task_writes import _task


def _ids(sandbox, n):
    return sandbox.customer_ids()[:n]


def _updates(ids, tier="wealth"):
    return tuple(
        FieldUpdate(
            cid,
            {
                "value_tier": tier,
                "value_score": 61.5,
                "next_review": date(2027, 1, 31),
                "edd_required": False,
                "reasons": ["VAL_AUM_WEALTH: AUM above 500k"],
            },
        )
        for cid in ids
    )


@pytest.mark.parametrize("n", [1, 100, 101, 250])
def test_n_changed_customers_take_ceil_n_over_100_update_calls(zoho, zconnect, n):
    connector = zconnect(zoho)
    ids = _ids(zoho, n)
    results = connector.apply(WritePlan(field_updates=_updates(ids)))
    assert [r.ok for r in results] == [True] * n
    assert zoho.server.calls.count("update") == math.ceil(n / 100)
    assert zoho.write_calls() == math.ceil(n / 100)
    batches = [min(100, n - start) for start in range(0, n, 100)]
    assert zoho.credits.by_kind["update"] == sum(math.ceil(b / 10) for b in batches)
    assert all(zoho.written(cid)["value_tier"] == "wealth" for cid in ids)
    assert zoho.written(ids[0])["next_review"] == date(2027, 1, 31)


def test_nothing_changed_makes_no_write_call(zoho, zconnect):
    connector = zconnect(zoho)
    assert connector.apply(WritePlan()) == []
    empty = WritePlan(field_updates=(FieldUpdate(_ids(zoho, 1)[0], {}),))
    assert [r.ok for r in connector.apply(empty)] == [True]
    assert zoho.write_calls() == 0


def test_writes_suppress_workflows_unless_configured(zoho, zconnect):
    zconnect(zoho).apply(WritePlan(field_updates=_updates(_ids(zoho, 3))))
    zconnect(zoho, workflow_triggers=["workflow"]).apply(
        WritePlan(field_updates=_updates(_ids(zoho, 3), "mass"))
    )
    assert zoho.write_triggers() == [[], ["workflow"]]


def test_invalid_data_fails_only_that_record_and_others_are_written_once(zoho, zconnect):
    connector = zconnect(zoho)
    ids = _ids(zoho, 5)
    zoho.reject_records([ids[2]])
    results = connector.apply(WritePlan(field_updates=_updates(ids)))
    assert [r.ok for r in results] == [True, True, False, True, True]
    bad = results[2]
    assert (bad.key, bad.error_code, bad.retryable) == (ids[2], "INVALID_DATA", False)
    # the admin's line: code, field, object and next step; never Zoho's own message
    assert bad.message is not None and bad.message.startswith("Zoho refused field Value_Tier")
    assert "on Contacts: INVALID_DATA (" in bad.message and "run crmtier doctor" in bad.message
    assert zoho.server.calls.count("update") == 1
    assert "value_tier" not in zoho.written(ids[2])
    assert all(zoho.written(cid)["value_tier"] == "wealth" for cid in ids if cid != ids[2])


def test_unknown_picklist_value_is_a_config_error_before_any_write(zoho, zconnect):
    connector = zconnect(zoho)
    zoho.set_picklist("value_tier", ["private", "wealth", "affluent", "mass"])  # no "unrated"
    plan = WritePlan(field_updates=_updates(_ids(zoho, 3)) + _updates(_ids(zoho, 1), "unrated"))
    with pytest.raises(ConfigError, match=r"value_tier.*Value_Tier.*'unrated'.*picklist"):
        connector.apply(plan)
    assert zoho.write_calls() == 0


def test_campaign_memberships_are_idempotent_and_removable(zoho, zconnect):
    connector = zconnect(zoho)
    a, b = _ids(zoho, 2)
    join = WritePlan(
        memberships=(
            MembershipChange(a, "vip_events", True, "m-a-vip"),
            MembershipChange(a, "survey_mass", True, "m-a-survey"),
            MembershipChange(b, "vip_events", True, "m-b-vip"),
        )
    )
    assert all(r.ok for r in connector.apply(join))
    assert all(r.ok for r in connector.apply(join))
    assert zoho.memberships() == {(a, "vip_events"), (a, "survey_mass"), (b, "vip_events")}
    assert zoho.server.calls.count("related_update") == 4  # one call per customer per run
    leave = WritePlan(memberships=(MembershipChange(a, "vip_events", False, "m-a-vip-out"),))
    assert [r.ok for r in connector.apply(leave)] == [True]
    assert zoho.memberships() == {(a, "survey_mass"), (b, "vip_events")}


def test_unknown_campaign_key_is_a_config_error_before_any_write(zoho, zconnect):
    connector = zconnect(zoho)
    plan = WritePlan(
        field_updates=_updates(_ids(zoho, 1)),
        memberships=(MembershipChange(_ids(zoho, 1)[0], "no_such_campaign", True, "x"),),
    )
    with pytest.raises(ConfigError, match="no_such_campaign"):
        connector.apply(plan)
    assert zoho.write_calls() == 0


def test_results_follow_plan_order(zoho, zconnect):
    connector = zconnect(zoho)
    ids = _ids(zoho, 2)
    plan = WritePlan(
        field_updates=_updates(ids),
        tasks=(_task(ids[0], "t-0"),),
        memberships=(MembershipChange(ids[1], "vip_events", True, "m-1"),),
    )
    results = connector.apply(plan)
    assert [(r.kind, r.key) for r in results] == [
        ("field_update", ids[0]),
        ("field_update", ids[1]),
        ("task", "t-0"),
        ("membership", "m-1"),
    ]
