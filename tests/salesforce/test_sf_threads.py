"""The sync engine applies plans from several threads on one connector: the shared client
state (API-call counts, the session) must stay right under that."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from connectors.contract import FieldUpdate, WritePlan


def test_concurrent_applies_count_every_call_and_log_in_once(sandbox_factory, connect) -> None:  # type: ignore[no-untyped-def]
    sandbox = sandbox_factory("salesforce", customers=400)
    connector = connect(sandbox)
    ids = [record.profile.id for page in connector.read_changed(None) for record in page.records]
    plans = [
        WritePlan(
            field_updates=tuple(FieldUpdate(cid, {"value_tier": "mass"}) for cid in ids[i : i + 50])
        )
        for i in range(0, 400, 50)
    ]
    before = sandbox.server.calls.counts()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [r for batch in pool.map(connector.apply, plans) for r in batch]
    after = sandbox.server.calls.counts()
    assert all(r.ok for r in results) and len(results) == 400
    assert sum(connector.api_usage().calls.values()) == sum(after.values())  # none lost
    assert after.get("oauth_token", 0) == before.get("oauth_token", 0) == 1  # logged in once
