"""A page of Salesforce records read at once (``SalesforceConnector._records``): a record
that cannot be read costs its own DQ issue and the rest of the page goes on, every
record's Person Contact is cached before the page reaches its reader, and ``fetch`` asks
for each id once.

The client is a stub that answers the queries: what is pinned is the reading of the
answers, not the HTTP (the sandbox tests cover that)."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.mapping import FieldMapping, WritebackConfig
from connectors.salesforce import connector as sf_connector
from connectors.salesforce.config import SalesforceSettings
from connectors.salesforce.connector import SalesforceConnector


def _raw(n: int, **fields: Any) -> dict[str, Any]:
    person = n % 2 == 0
    return {
        "Id": f"001{n:03d}",
        "SystemModstamp": f"2026-03-01T09:00:{n:02d}.000+0000",
        "IsPersonAccount": person,
        "PersonContactId": f"003{n:03d}" if person else None,
        "Score__c": None,
        **fields,
    }


@pytest.fixture
def connector(monkeypatch: pytest.MonkeyPatch) -> SalesforceConnector:
    monkeypatch.setenv("SF_PAGE_ID", "id")
    monkeypatch.setenv("SF_PAGE_SECRET", "secret")
    settings = SalesforceSettings(
        base_url="https://example.my.salesforce.com",
        client_id="env:SF_PAGE_ID",
        client_secret="env:SF_PAGE_SECRET",
    )
    mapping = FieldMapping(
        object="Account", fields={"activity.transactions_90d": "Transactions_90d__c"}
    )
    writeback = WritebackConfig.model_validate({"fields": {"value_score": "Score__c"}})
    return SalesforceConnector(settings, mapping, writeback)


def _answer(connector: SalesforceConnector, *pages: list[dict[str, Any]]) -> None:
    answers = iter(
        {"records": page, "done": i == len(pages) - 1, "nextRecordsUrl": f"/next/{i}"}
        for i, page in enumerate(pages)
    )
    connector.client.query = lambda query: next(answers)  # type: ignore[method-assign]
    connector.client.query_more = lambda url: next(answers)  # type: ignore[method-assign]


def test_a_bad_record_mid_page_is_its_own_issue_and_the_page_goes_on(
    connector: SalesforceConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A value the mapping refuses names its field and CRM field; a record not even the
    mapping's fallback can read keeps its id with one issue; the records around them read
    as usual, in order."""
    unreadable = "001002"
    mapped = sf_connector.profile_from_crm

    def refuse_one(crm_id: str, *args: Any, **kwargs: Any) -> Any:
        if crm_id == unreadable:  # what pydantic refuses even with every mapped field dropped
            from pydantic import TypeAdapter

            TypeAdapter(int).validate_python("not a number")
        return mapped(crm_id, *args, **kwargs)

    monkeypatch.setattr(sf_connector, "profile_from_crm", refuse_one)
    _answer(
        connector,
        [
            _raw(0, Transactions_90d__c=12, Score__c=71.456),
            _raw(1, Transactions_90d__c="N/A"),
            _raw(2, Transactions_90d__c=3),
            _raw(3, Transactions_90d__c=4),
        ],
    )
    (page,) = connector.read_changed(None)
    records = page.records
    assert [r.profile.id for r in records] == ["001000", "001001", "001002", "001003"]
    assert records[0].profile.activity.transactions_90d == 12
    assert records[0].current == {"value_score": 71.46} and records[0].dq_issues == ()
    (bad,) = records[1].dq_issues
    assert (bad.code, bad.field) == ("DQ_BAD_TYPE", "activity.transactions_90d")
    assert bad.problem.startswith("Transactions_90d__c: ") and "\n" not in bad.problem
    assert records[1].profile.activity is None
    (refused,) = records[2].dq_issues
    assert (refused.field, refused.problem) == ("*", "unreadable record: 1 errors")
    assert records[3].profile.activity.transactions_90d == 4 and records[3].dq_issues == ()


def test_a_page_s_person_contacts_are_cached_before_its_reader_gets_it(
    connector: SalesforceConnector,
) -> None:
    """A membership write planned from a page finds every Person Contact of it (a business
    account's as None) without a look-up, the second page's only once it is read."""
    first, second = [_raw(n) for n in range(4)], [_raw(n) for n in range(4, 6)]
    _answer(connector, first, second)
    pages = connector.read_changed(None)
    next(pages)
    ids = [r["Id"] for r in first + second]
    assert connector.read_context(ids) == {
        "person_contacts": {"001000": "003000", "001001": None, "001002": "003002", "001003": None}
    }
    next(pages)
    assert connector.read_context(ids)["person_contacts"] == {
        r["Id"]: r["PersonContactId"] for r in first + second
    }


def test_fetch_asks_for_each_id_once_and_keeps_the_crm_s_order(
    connector: SalesforceConnector,
) -> None:
    asked: list[str] = []
    by_id = {r["Id"]: r for r in map(_raw, range(3))}

    def query_all(query: str) -> list[dict[str, Any]]:
        asked.append(query)
        return [r for i, r in by_id.items() if f"'{i}'" in query]

    connector.client.query_all = query_all  # type: ignore[method-assign]
    fetched = connector.fetch(["001002", "001000", "001002", "001404"])
    (query,) = asked
    assert query.count("'001002'") == 1 and "'001404'" in query
    assert [r.profile.id for r in fetched] == ["001000", "001002"]
