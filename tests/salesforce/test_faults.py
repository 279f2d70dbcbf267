"""Each injected fault and its outcome (docs/targets.md R4, R5, R6): bounded retries, one re-auth,
per-record lock errors, a clean resumable stop on quota, no duplicates after a
dropped connection."""

from __future__ import annotations

import pytest
from sf_helpers import FAST_RETRY, read_all, task, tier_updates

from connectors.calltally import CallTally, counting
from connectors.contract import MembershipChange, WritePlan
from connectors.errors import QuotaExhaustedError, RateLimitedError, ReadOnlyError


@pytest.fixture
def sandbox(sandbox_factory):
    return sandbox_factory("salesforce", customers=300)


@pytest.mark.parametrize("limit", ["ConcurrentRequests", "ConcurrentPerOrgLongTxn"])
def test_concurrency_limit_backs_off_boundedly_then_surfaces(sandbox, connect, limit):
    """A concurrency limit that never clears costs exactly max_attempts calls, then
    RateLimitedError: never the quota stop of the daily allowance."""
    connector = connect(sandbox, **FAST_RETRY)
    sandbox.rate_limit(kind="query", times=None, limit=limit)
    with pytest.raises(RateLimitedError) as info:
        read_all(connector)
    assert not isinstance(info.value, QuotaExhaustedError)
    assert sandbox.server.calls.count("query") == FAST_RETRY["max_attempts"]


@pytest.mark.parametrize("limit", ["ConcurrentRequests", "ConcurrentPerOrgLongTxn"])
def test_transient_rate_limit_is_retried_to_success(sandbox, connect, limit):
    connector = connect(sandbox, **FAST_RETRY)
    sandbox.rate_limit(kind="query", times=2, limit=limit)
    assert len(read_all(connector)) == 300
    assert sandbox.server.calls.count("query") == 3


def test_daily_limit_stops_after_one_call_and_stays_stopped(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    read_all(connector)
    sandbox.exhaust_daily_limit()
    sandbox.server.calls.reset()
    with pytest.raises(QuotaExhaustedError):
        connector.apply(WritePlan(field_updates=tier_updates([sandbox.customer_id(0)])))
    with pytest.raises(QuotaExhaustedError):
        connector.apply(WritePlan(field_updates=tier_updates([sandbox.customer_id(1)])))
    assert sandbox.server.calls.count("collections_update") == 1


def test_quota_stop_mid_read_resumes_with_at_most_one_page_reread(sandbox_factory, connect):
    sandbox = sandbox_factory("salesforce", customers=4500)
    connector = connect(sandbox, **FAST_RETRY)
    sandbox.rate_limit(kind="query_more", times=None)
    pages = []
    with pytest.raises(QuotaExhaustedError):
        for page in connector.read_changed(None):
            pages.append(page)
    assert len(pages) == 1 and len(pages[0].records) == 2000
    assert sandbox.server.calls.count("query_more") == 1  # no storm: one refused call
    sandbox.server.faults.clear()
    resumed = read_all(connect(sandbox), pages[-1].cursor)
    assert resumed[0].profile.id == pages[-1].records[-1].profile.id  # inclusive resume
    assert len(resumed) == 4500 - 2000 + 1


def test_api_share_guard_refuses_before_going_past_the_share(sandbox_factory, connect):
    sandbox = sandbox_factory("salesforce", customers=3000, daily_api_limit=20)
    connector = connect(sandbox, api_share=0.5, page_size=200)
    with pytest.raises(QuotaExhaustedError):
        read_all(connector)
    assert sandbox.server.calls.count("query", "query_more") == 10  # 50% of 20, not one more
    usage = connector.api_usage()
    assert usage.allowance_limit == 20 and usage.calls["query_more"] == 9


def test_expired_session_costs_one_reauth_then_the_call_succeeds(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    read_all(connector)
    sandbox.expire_session()
    results = connector.apply(WritePlan(field_updates=tier_updates([sandbox.customer_id(0)])))
    assert [r.ok for r in results] == [True]
    assert sandbox.server.calls.count("oauth_token") == 2
    assert sandbox.server.calls.count("collections_update") == 2


def test_lock_errors_on_3_of_200_are_per_record_and_retryable(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    ids = [sandbox.customer_id(i) for i in range(200)]
    locked = {ids[3], ids[77], ids[150]}
    sandbox.lock_rows(sorted(locked))
    results = connector.apply(WritePlan(field_updates=tier_updates(ids)))
    assert sandbox.server.calls.count("collections_update") == 1  # 197 written once
    failed = [r for r in results if not r.ok]
    assert {r.key for r in failed} == locked
    assert all(r.retryable and r.error_code == "UNABLE_TO_LOCK_ROW" for r in failed)
    assert all(sandbox.written(i).get("value_tier") == "wealth" for i in ids if i not in locked)
    assert all("value_tier" not in sandbox.written(i) for i in locked)
    # the sync layer's retry of just those three then succeeds
    retry = connector.apply(WritePlan(field_updates=tier_updates(sorted(locked))))
    assert all(r.ok for r in retry)


@pytest.mark.parametrize(
    ("customers", "settings", "kinds"),
    [
        (3, {}, ("collections_update",)),
        (250, {"bulk_threshold": 100, "bulk_poll_seconds": 0}, ("bulk_ingest_create",)),
    ],
    ids=["collection", "bulk-job"],
)
def test_writes_refused_in_read_only_mode_raise_read_only_without_a_retry(
    sandbox, connect, customers, settings, kinds
):
    """Planned maintenance refuses every record saved, for hours, and ends by itself: a
    write call none of whose records was saved, refused so, raises ``ReadOnlyError`` (the
    run pauses and keeps its writes), never retried (each retry is a call spent) and never
    per-record failures to retry and dead-letter; its words are crmtier's. The same writes
    pass once the org is writable again."""
    connector = connect(sandbox, **FAST_RETRY, **settings)
    ids = [sandbox.customer_id(i) for i in range(customers)]
    sandbox.read_only_mode()
    with pytest.raises(ReadOnlyError) as info:
        connector.apply(WritePlan(field_updates=tier_updates(ids)))
    assert "read-only" in str(info.value) and "maintenance." not in str(info.value)
    assert sandbox.server.calls.count(*kinds) == 1
    assert all("value_tier" not in sandbox.written(i) for i in ids)
    sandbox.read_only_mode(False)
    assert all(r.ok for r in connector.apply(WritePlan(field_updates=tier_updates(ids))))
    assert all(sandbox.written(i).get("value_tier") == "wealth" for i in ids)


def test_dropped_connection_is_retried_without_duplicates(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    tasks = tuple(task(sandbox.customer_id(i), f"edd:{i}") for i in range(5))
    sandbox.drop_connections(kind="collections_upsert")
    assert all(r.ok for r in connector.apply(WritePlan(tasks=tasks)))
    assert sandbox.server.calls.count("collections_upsert") == 2
    assert sorted(t.external_id for t in sandbox.tasks()) == [f"edd:{i}" for i in range(5)]


def test_dropped_connection_during_read_loses_nothing(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY, page_size=200)
    sandbox.drop_connections(kind="query_more")
    records = read_all(connector)
    assert len(records) == len({r.profile.id for r in records}) == 300


def test_server_errors_are_retried_then_succeed(sandbox, connect):
    connector = connect(sandbox, **FAST_RETRY)
    sandbox.server_error(kind="collections_update", status=503, times=2)
    results = connector.apply(WritePlan(field_updates=tier_updates([sandbox.customer_id(0)])))
    assert [r.ok for r in results] == [True]
    assert sandbox.server.calls.count("collections_update") == 3


@pytest.mark.parametrize("kind", ["collections_create", "collections_upsert", "collections_update"])
def test_a_lost_answer_to_a_write_that_happened_is_retried_without_duplicates(
    sandbox, connect, kind
):
    """The worst drop: the CRM saved, the answer never came. The retry must converge."""
    connector = connect(sandbox, **FAST_RETRY)
    read_all(connector)
    ids = [sandbox.customer_id(i) for i in range(3)]
    sandbox.lose_responses(kind)
    plan = WritePlan(
        field_updates=tier_updates(ids),
        tasks=tuple(task(i, f"rm:{i}") for i in ids),
        memberships=tuple(MembershipChange(i, "vip_events", True, f"vip:{i}") for i in ids),
    )
    assert all(r.ok for r in connector.apply(plan))
    assert sandbox.server.calls.count(kind) == 2
    assert sorted(t.external_id for t in sandbox.tasks()) == [f"rm:{i}" for i in ids]
    assert sandbox.memberships() == {(i, "vip_events") for i in ids}
    assert all(sandbox.written(i)["value_tier"] == "wealth" for i in ids)


def test_a_write_whose_answer_was_lost_counts_against_the_share_and_the_run(
    sandbox_factory, connect
):
    """A call is counted as it is sent: one whose answer never came may have landed. Its
    retry is then refused by the share guard (the lost call spent the share's last call),
    and the run's tally of the plan holds that call, so the sync layer keeps the plan in
    doubt rather than exact unsent (before, the lost call counted nothing: the retry went
    past the share, and a plan stopped so counted no call)."""
    sandbox = sandbox_factory("salesforce", customers=1800, daily_api_limit=20)
    connector = connect(sandbox, **FAST_RETRY, api_share=0.5, page_size=200)
    assert len(read_all(connector)) == 1800
    assert connector.api_usage().calls["query_more"] == 8  # 9 of the share's 10 spent
    sandbox.lose_responses("collections_update")
    tally = CallTally()
    with counting(tally), pytest.raises(QuotaExhaustedError):
        connector.apply(WritePlan(field_updates=tier_updates([sandbox.customer_id(0)])))
    assert tally.counts() == {"collections_update": 1}
    assert sandbox.server.calls.count("collections_update") == 1  # not one past the share
    assert sandbox.written(sandbox.customer_id(0)).get("value_tier") == "wealth"  # it landed
