"""Incremental reads: keyset windows over Modified_Time, (modstamp, id) order even where
Zoho's own order within a second differs, inclusive resume, dirty values as DQ issues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.contract import Cursor
from connectors.errors import ConfigError
from connectors.zoho.config import load_config


def read(connector, since=None):
    return [r for page in connector.read_changed(since) for r in page.records]


def test_same_second_records_come_in_id_order_across_page_boundaries(zoho, zconnect):
    """Zoho sorts by Modified_Time only; within a second the sandbox answers in arrival
    order, not id order, and a page boundary falls inside the second."""
    base = datetime(2026, 9, 1, 12, 0, 0, tzinfo=UTC)
    ids = zoho.customer_ids()
    tied = ids[40:100]
    for n, cid in enumerate(reversed(tied)):  # arrival order = descending id
        zoho.edit_customer(cid, {"feedback.nps": 10}, modstamp=base + timedelta(milliseconds=n))
    connector = zconnect(zoho, page_size=25)
    records = read(connector)
    assert [r.cursor for r in records] == sorted(r.cursor for r in records)
    assert len(records) == len(ids) == len({r.profile.id for r in records})
    assert [r.profile.id for r in records if r.modstamp == base] == sorted(tied)
    # a resume from inside the tie yields the rest of it, in id order
    middle = Cursor(base, sorted(tied)[30])
    assert [r.profile.id for r in read(connector, middle)][:30] == sorted(tied)[30:]


def test_keyset_windows_reach_past_the_deep_paging_cap(sandbox_factory, zconnect):
    """Offset paging stops at Zoho's first-N-records cap; windows by Modified_Time do not."""
    zoho = sandbox_factory("zoho", customers=700, discrete_page_limit=400)
    records = read(zconnect(zoho))
    assert sorted(r.profile.id for r in records) == sorted(zoho.customer_ids())


def test_since_reads_only_later_changes(zoho, zconnect):
    connector = zconnect(zoho)
    records = read(connector)
    bookmark = records[-1].cursor
    changed = zoho.customer_ids()[10]
    zoho.edit_customer(changed, {"credit.score": 800})
    later = read(connector, bookmark)
    assert [r.profile.id for r in later] == [records[-1].profile.id, changed]
    assert later[-1].profile.credit.score == 800


def test_nothing_changed_is_one_call(zoho, zconnect):
    connector = zconnect(zoho)
    bookmark = read(connector)[-1].cursor
    future = Cursor(bookmark.modstamp + timedelta(days=1), "")
    before = zoho.server.calls.count("read")
    assert read(connector, future) == []
    assert zoho.server.calls.count("read") == before + 1  # a 304


def test_owner_and_current_values(zoho, zconnect):
    connector = zconnect(zoho)
    records = {r.profile.id: r for r in read(connector)}
    owned = next(
        cid for cid in records if zoho.record(cid)["Owner"]["name"] != "Unassigned Customers"
    )
    unowned = next(
        cid for cid in records if zoho.record(cid)["Owner"]["name"] == "Unassigned Customers"
    )
    assert records[owned].profile.owner_id == zoho.record(owned)["Owner"]["id"]
    assert records[unowned].profile.owner_id is None
    assert records[owned].current["value_tier"] is None


def test_dirty_values_become_dq_issues_and_the_page_survives(zoho, zconnect):
    connector = zconnect(zoho)
    records = read(connector)
    dirty = [r for r in records if r.dq_issues]
    assert dirty and len(records) == 250
    assert all(i.code == "DQ_BAD_TYPE" for r in dirty for i in r.dq_issues)


def test_fetch_leaves_out_unknown_and_malformed_ids(zoho, zconnect):
    connector = zconnect(zoho)
    ids = zoho.customer_ids()[:3]
    got = connector.fetch([ids[2], "not-a-zoho-id", ids[0], "999999999999999999"])
    assert [r.profile.id for r in got] == [ids[2], ids[0]]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"client_secret": "plain-text-secret"}, "crm.client_secret"),
        ({"base_url": "http://127.0.0.1:1"}, "crm.base_url"),
        ({"page_size": 500}, "crm.page_size"),
        ({"write_batch": 101}, "crm.write_batch"),
        ({"workflow_triggers": ["everything"]}, "crm.workflow_triggers"),
        ({"surprise": 1}, "crm.surprise"),
    ],
)
def test_bad_config_is_one_clear_line(zoho, monkeypatch, override, message):
    import tomllib

    text, env = zoho.crmtier_config()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    crm = {**tomllib.loads(text)["crm"], **override}
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(crm)
    assert "\n" not in str(caught.value)
    assert "plain-text-secret" not in str(caught.value)
