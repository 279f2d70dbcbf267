"""The sandbox's SOQL subset: parsing, evaluation, and the index bounds it derives."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from connectors.sandbox.salesforce_soql import SoqlError, parse, parse_soql_datetime

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01T00:00:00Z", T0),
        ("2026-01-01T00:00:00.000+0000", T0),
        ("2026-01-01T08:00:00+08:00", T0),
        ("2026-01-01T08:00:00.000+0800", T0),
    ],
)
def test_datetime_literals(text, expected):
    assert parse_soql_datetime(text) == expected


def test_incremental_query_shape():
    q = parse(
        "SELECT Id, SystemModstamp, Deposits__c FROM Account "
        "WHERE SystemModstamp > 2026-01-01T00:00:00Z OR "
        "(SystemModstamp = 2026-01-01T00:00:00Z AND Id >= '001000000000002AAA') "
        "ORDER BY SystemModstamp, Id LIMIT 10"
    )
    assert q.fields == ("Id", "SystemModstamp", "Deposits__c")
    assert q.sobject == "Account"
    assert q.order_by == (("SystemModstamp", False), ("Id", False))
    assert q.limit == 10
    assert q.modstamp_floor() == T0
    assert q.matches({"Id": "001000000000002AAA", "SystemModstamp": T0})
    assert not q.matches({"Id": "001000000000001AAA", "SystemModstamp": T0})
    assert q.matches({"Id": "001000000000001AAA", "SystemModstamp": T1})


@pytest.mark.parametrize(
    ("where", "record", "expected"),
    [
        ("Name = 'O\\'Brien'", {"Name": "O'Brien"}, True),
        ("Score__c >= 700", {"Score__c": 700}, True),
        ("Score__c < 700", {"Score__c": None}, False),
        ("Tier__c != null", {"Tier__c": None}, False),
        ("Tier__c = null", {}, True),
        ("Flag__c = true", {"Flag__c": True}, True),
        ("Id IN ('a', 'b')", {"Id": "b"}, True),
        ("Id NOT IN ('a', 'b')", {"Id": "b"}, False),
        ("NOT (Score__c > 1)", {"Score__c": 0}, True),
        ("ActivityDate <= 2026-01-05", {"ActivityDate": "2026-01-04"}, True),
        ("A__c = 1 AND (B__c = 2 OR C__c = 3)", {"A__c": 1, "C__c": 3}, True),
    ],
)
def test_where_evaluation(where, record, expected):
    assert parse(f"SELECT Id FROM Account WHERE {where}").matches(record) is expected


def test_id_lookup_and_floor_rules():
    q = parse(
        "SELECT Id FROM Account WHERE Id IN ('x', 'y') AND SystemModstamp >= 2026-01-02T00:00:00Z"
    )
    assert q.id_set() == ["x", "y"]
    assert q.modstamp_floor() == T1
    assert (
        parse(
            "SELECT Id FROM Account WHERE Name = 'a' OR SystemModstamp > 2026-01-01T00:00:00Z"
        ).modstamp_floor()
        is None
    )
    assert parse("SELECT Id FROM Task WHERE ActivityDate = 2026-01-01").where.value == date(
        2026, 1, 1
    )


@pytest.mark.parametrize(
    "soql",
    [
        "SELECT FROM Account",
        "SELECT Id Account",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account WHERE Name LIKE 'a%'",
        "SELECT Id FROM Account LIMIT -1",
        "SELECT Id FROM Account GROUP BY Id",
        "SELECT Id FROM Account WHERE Name = 'unterminated",
    ],
)
def test_unsupported_or_malformed_queries_fail_loudly(soql):
    with pytest.raises(SoqlError):
        parse(soql)
