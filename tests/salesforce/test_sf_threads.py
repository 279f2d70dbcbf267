"""The sync engine applies plans from several threads on one connector: the shared client
state (API-call counts, the session) must stay right under that."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from connectors.contract import FieldUpdate, WritePlan


def _plans_of_50(connector) -> list[WritePlan]:  # type: ignore[no-untyped-def]
    """A field update for every customer the sandbox holds, 50 to a plan."""
    ids = [record.profile.id for page in connector.read_changed(None) for record in page.records]
    return [
        WritePlan(tuple(FieldUpdate(cid, {"value_tier": "mass"}) for cid in ids[i : i + 50]))
        for i in range(0, len(ids), 50)
    ]


def test_concurrent_applies_count_every_call_and_log_in_once(sandbox_factory, connect) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory("salesforce", customers=400)
    connector = connect(sandbox)
    plans = _plans_of_50(connector)
    before = sandbox.server.calls.counts()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [r for batch in pool.map(connector.apply, plans) for r in batch]
    after = sandbox.server.calls.counts()
    assert all(r.ok for r in results) and len(results) == 400
    assert sum(connector.api_usage().calls.values()) == sum(after.values())  # none lost
    assert after.get("oauth_token", 0) == before.get("oauth_token", 0) == 1  # logged in once


def test_threads_refused_with_an_expired_session_share_one_new_login(sandbox_factory, connect):
    """Four writes carry the expired session and are refused one after another (staggered
    delays), each after another thread has already logged in again: a thread must not throw
    away the session a neighbour just made, so the four refusals cost one login, not four."""
    sandbox = sandbox_factory("salesforce", customers=200)
    connector = connect(sandbox)
    plans = _plans_of_50(connector)
    sandbox.expire_session()
    for step in range(1, 5):  # each in-flight write takes one: refusals 0.5 s apart, far
        # more than a login takes even on a loaded box
        sandbox.server.inject("collections_update", delay=0.5 * step)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [r for batch in pool.map(connector.apply, plans) for r in batch]
    counts = sandbox.server.calls.counts()
    assert all(r.ok for r in results) and len(results) == 200
    # four refused and retried when all four were in flight; at least two refused threads
    # are what makes a wrong renewal cost a second login (a late thread may get the new one)
    assert 6 <= counts["collections_update"] <= 8
    assert counts["oauth_token"] == 2  # the first login and one renewal
