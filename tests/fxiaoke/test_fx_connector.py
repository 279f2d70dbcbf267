"""The FXiaoke connector against its sandbox over real HTTPS: reads, field writes, tokens
and limits (tasks and memberships: test_fx_tasks.py; doctor: test_fx_checks.py)."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.contract import FieldUpdate, WritePlan
from connectors.errors import ConfigError, QuotaExhaustedError
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id
from connectors.sandbox.server import Response
from tests.fxiaoke.fx_helpers import PII_FIELDS, Connect, MakeSandbox, ReadIds, capture, updates

# --- reads ---------------------------------------------------------------------------


def test_reads_only_the_fields_it_needs(
    read_ids: ReadIds, sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    bodies = capture(sandbox, "query")
    connector = connect(sandbox)
    assert len(read_ids(connector)) == 40
    projection = set(bodies[0]["data"]["search_query_info"]["fieldProjection"])
    assert not projection & PII_FIELDS
    assert {"_id", "last_modified_time", "owner", "field_deposits__c"} <= projection
    assert all(b["data"]["search_query_info"]["offset"] == 0 for b in bodies)


def test_malformed_records_become_dq_issues_not_failed_pages(
    make_sandbox: MakeSandbox, connect: Connect
) -> None:
    sandbox = make_sandbox(customers=10)
    sandbox.edit_customer(customer_id(3), {"activity.transactions_90d": "N/A"})
    # a number field holds a number or nothing; text sits in the imported text field
    sandbox.edit_customer(customer_id(4), {"activity.transactions_90d": "1,200"})
    sandbox.edit_customer(customer_id(5), {"activity.transactions_90d": 57})
    connector = connect(sandbox)
    records = {r.profile.id: r for page in connector.read_changed(None) for r in page.records}
    assert len(records) == 10
    issue = records[customer_id(3)].dq_issues[0]
    assert (issue.code, issue.field) == ("DQ_BAD_TYPE", "activity.transactions_90d")
    assert "field_transactions_90d__c" in issue.problem
    activity = records[customer_id(3)].profile.activity
    assert activity is not None and activity.transactions_90d is None
    assert records[customer_id(4)].dq_issues[0].field == "activity.transactions_90d"
    assert not records[customer_id(5)].dq_issues
    assert records[customer_id(5)].profile.activity.transactions_90d == 57  # read from "57"


def test_fetch_keeps_order_and_leaves_out_missing_ids(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    connector = connect(sandbox)
    got = connector.fetch([customer_id(9), "no-such-id", customer_id(2), customer_id(9)])
    assert [r.profile.id for r in got] == [customer_id(9), customer_id(2)]
    assert sandbox.server.calls.count("query") == 1


def test_invalidated_customers_are_left_alone(
    sandbox: FxiaokeSandbox, connect: Connect, read_ids: ReadIds
) -> None:
    connector = connect(sandbox)
    sandbox.invalidate_customer(customer_id(6))  # 作废: into the recycle bin
    assert customer_id(6) not in read_ids(connector)
    assert len(read_ids(connector)) == 39
    assert connector.fetch([customer_id(6), customer_id(7)])[0].profile.id == customer_id(7)
    plan = WritePlan(field_updates=(FieldUpdate(customer_id(6), {"value_tier": "mass"}),))
    (result,) = connector.apply(plan)
    assert (result.ok, result.error_code) == (False, "32000")


def test_current_values_come_back_canonical(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    connector = connect(sandbox)
    plan = WritePlan(
        field_updates=(
            FieldUpdate(
                customer_id(1),
                {
                    "value_tier": "private",
                    "value_score": 91.5,
                    "next_review": date(2026, 6, 30),
                    "edd_required": True,
                    "reasons": ["VAL_AUM_PRIVATE", "AML_PEP"],
                },
            ),
        )
    )
    assert connector.apply(plan)[0].ok
    (record,) = connector.fetch([customer_id(1)])
    assert record.current == {
        "value_tier": "private",
        "value_score": 91.5,
        "next_review": date(2026, 6, 30),
        "edd_required": True,
        "reasons": "VAL_AUM_PRIVATE\nAML_PEP",
    }
    assert sandbox.written(customer_id(1))["next_review"] == date(2026, 6, 30)


# --- writes --------------------------------------------------------------------------


def test_n_changed_customers_cost_exactly_n_update_calls(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    bodies = capture(sandbox, "update")
    connector = connect(sandbox)
    results = connector.apply(updates(25, value_tier="wealth"))
    assert [r.key for r in results] == [customer_id(i) for i in range(25)]
    assert all(r.ok for r in results)
    assert sandbox.server.calls.count("update") == 25 == sandbox.write_calls()
    for body in bodies:
        assert body["triggerWorkFlow"] is False  # our writes must not come back as work
        assert set(body["data"]["object_data"]) == {
            "_id",
            "dataObjectApiName",
            "field_value_tier__c",
        }
    assert sandbox.written(customer_id(24)) == {"value_tier": "wealth"}


def test_nothing_changed_means_no_calls(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    connector = connect(sandbox)
    assert connector.apply(WritePlan()) == []
    empty = WritePlan(field_updates=(FieldUpdate(customer_id(0), {}),))
    assert [r.ok for r in connector.apply(empty)] == [True]
    assert sandbox.write_calls() == 0
    assert sandbox.server.calls.count("oauth2_token", "query") == 0


def test_parallel_writes_stay_under_the_limit_per_window(
    make_sandbox: MakeSandbox, connect: Connect
) -> None:
    # The production limiter with a smaller budget on both sides: 20 calls a second binds
    # however slow the box (unlimited, this in-process pair manages ~160 calls/s, and far
    # fewer while another thread holds the GIL; 100 a second might never be reached).
    window, budget = 1.0, 20
    sandbox = make_sandbox(customers=60, rate_calls=budget, rate_window=window)
    connector = connect(sandbox, write_concurrency=8)
    assert connector.config.window_seconds == window  # from the sandbox's crmtier.toml
    results = connector.apply(updates(60))
    assert all(r.ok for r in results)
    assert sandbox.server.calls.count("update") == 60  # no call rejected and retried
    assert sandbox.server.calls.max_in_window("update", window) <= budget
    assert connector.client.limiter.waits > 0


def test_per_record_validation_errors_fail_only_their_record(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    sandbox.reject_record(customer_id(2))
    connector = connect(sandbox)
    plan = WritePlan(
        field_updates=(
            *updates(5).field_updates,
            FieldUpdate(customer_id(6), {"value_tier": "platinum"}),  # not a picklist option
        )
    )
    results = connector.apply(plan)
    assert [r.ok for r in results] == [True, True, False, True, True, False]
    bad = results[2]
    assert (bad.key, bad.error_code, bad.retryable) == (customer_id(2), "32000", False)
    assert "field_value_tier__c" in (results[5].message or "")
    assert sandbox.server.calls.count("update") == 6  # a rejected record is not hammered
    assert sandbox.written(customer_id(3)) == {"value_tier": "wealth"}


def test_transient_failures_are_retried(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    sleeps: list[float] = []
    sandbox.server.inject("update", response=Response.json({"error": "boom"}, 502), times=2)
    sandbox.server.inject("update", drop=True, times=1)
    connector = connect(sandbox, sleep=sleeps.append, write_concurrency=1)
    results = connector.apply(updates(3))
    assert all(r.ok for r in results)
    assert sandbox.server.calls.count("update") == 6
    assert len(sleeps) == 3


# --- tokens ----------------------------------------------------------------------------


@pytest.mark.parametrize("convention", ["oauth2", "corp_access_token"])
def test_token_expiry_mid_read_refreshes_once(
    make_sandbox: MakeSandbox, connect: Connect, convention: str
) -> None:
    sandbox = make_sandbox(customers=450)
    user = sandbox.acting_open_user_id if convention == "corp_access_token" else "1000"
    connector = connect(sandbox, convention=convention, open_user_id=user)
    seen: list[str] = []
    for i, page in enumerate(connector.read_changed(None)):
        seen += [r.profile.id for r in page.records]
        if i == 1:
            sandbox.expire_tokens()
    assert sorted(seen) == [customer_id(i) for i in range(450)]
    kind = "oauth2_token" if convention == "oauth2" else "token"
    assert sandbox.server.calls.count(kind) == 2


def test_token_expiry_during_parallel_writes_refreshes_once(
    make_sandbox: MakeSandbox, connect: Connect
) -> None:
    sandbox = make_sandbox(customers=60)
    connector = connect(sandbox, write_concurrency=8)
    assert all(r.ok for r in connector.apply(updates(5)))
    sandbox.expire_tokens()
    assert all(r.ok for r in connector.apply(updates(60, value_tier="mass")))
    assert sandbox.server.calls.count("oauth2_token") == 2


def test_token_is_refreshed_before_it_expires(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    now = [0.0]
    connector = connect(sandbox, clock=lambda: now[0])
    connector.fetch([customer_id(0)])
    now[0] += 6_000  # within FXiaoke's "same token" period: no token call
    connector.fetch([customer_id(0)])
    assert sandbox.server.calls.count("oauth2_token") == 1
    now[0] += 700  # past 6,600 s: refreshed up front, so the API never answers 20016
    sandbox.tokens.advance(6_700)
    connector.fetch([customer_id(0)])
    assert sandbox.server.calls.count("oauth2_token") == 2
    assert sandbox.server.calls.count("query") == 3


def test_wrong_credentials_are_a_config_error_without_retries(
    sandbox: FxiaokeSandbox, connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = connect(sandbox)
    monkeypatch.setenv("WRONG_FX_SECRET", "not-the-secret")
    bad = connect(sandbox, app_secret="env:WRONG_FX_SECRET")
    with pytest.raises(ConfigError, match="20006"):
        bad.fetch([customer_id(0)])
    assert sandbox.server.calls.count("oauth2_token") == 1
    assert connector.fetch([customer_id(0)])  # the good connector is unaffected


def test_literal_secrets_are_refused(sandbox: FxiaokeSandbox, connect: Connect) -> None:
    with pytest.raises(ConfigError, match=r"crm\.app_secret: .*literal secrets"):
        connect(sandbox, app_secret="s3cr3t-literal")


# --- limits ----------------------------------------------------------------------------


@pytest.mark.parametrize(("code", "wait"), [(14001, 20.0), (30004, 20.0)])
def test_rate_limit_codes_back_off_then_succeed(
    sandbox: FxiaokeSandbox, connect: Connect, code: int, wait: float
) -> None:
    sleeps: list[float] = []
    connector = connect(sandbox, sleep=sleeps.append)
    sandbox.rate_limit_next("query", code=code, times=2)
    assert len(connector.fetch([customer_id(1)])) == 1
    assert sleeps == [wait, wait]
    assert sandbox.server.calls.count("query") == 3


def test_daily_quota_exhaustion_pauses_with_no_further_calls(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    sleeps: list[float] = []
    connector = connect(sandbox, sleep=sleeps.append)
    sandbox.rate_limit_next("update", code=30002, times=None)
    with pytest.raises(QuotaExhaustedError, match="30002"):
        connector.apply(updates(10))
    assert sleeps == []
    assert sandbox.server.calls.count("update") <= connector.config.write_concurrency


def test_budget_guard_stops_at_the_configured_share(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    connector = connect(sandbox, daily_quota=10, api_share=0.5, write_concurrency=1)
    with pytest.raises(QuotaExhaustedError, match="5 calls"):
        connector.apply(updates(10))
    assert sandbox.server.calls.count("oauth2_token", "update") == 5
    usage = connector.api_usage()
    assert (usage.allowance_used, usage.allowance_limit) == (5, 5)
