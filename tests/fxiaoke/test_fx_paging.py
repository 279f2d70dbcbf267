"""Keyset paging: every record exactly once, across ties, the offset wall and live edits."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from connectors.contract import Cursor
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.fxiaoke.mapping import from_epoch_ms
from connectors.fxiaoke.query import MAX_OFFSET, PAGE_LIMIT, changed_since, rows_of
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.generator import customer_id

MakeSandbox = Callable[..., FxiaokeSandbox]
Connect = Callable[..., FxiaokeConnector]
ReadIds = Callable[..., list[str]]


class FakeQuery:
    """An in-memory FXiaoke query endpoint honouring the filters changed_since sends."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.calls: list[list[dict[str, Any]]] = []

    def __call__(self, filters: list[dict[str, Any]], orders: list[dict[str, Any]]) -> list[Any]:
        self.calls.append(filters)
        out = self.rows
        for f in filters:
            field, op, values = f["field_name"], f["operator"], f["field_values"]
            assert all(isinstance(v, str) for v in values), f  # List[String], as documented
            if field == "last_modified_time":
                values = [int(v) for v in values]
            tests = {
                "GTE": lambda a, b: a >= b[0],
                "GT": lambda a, b: a > b[0],
                "EQ": lambda a, b: a == b[0],
                "NIN": lambda a, b: a not in b,
            }
            out = [r for r in out if tests[op](r[field], values)]
        keys = [o["fieldName"] for o in orders]
        out = sorted(out, key=lambda r: tuple(r[k] for k in keys))
        return out[:PAGE_LIMIT]


def rows(stamps: list[int]) -> list[dict[str, Any]]:
    return [{"_id": f"id{i:06d}", "last_modified_time": ms} for i, ms in enumerate(stamps)]


def keys(pages: list[list[Any]]) -> list[tuple[int, str]]:
    return [(r["last_modified_time"], r["_id"]) for page in pages for r in page]


@pytest.mark.parametrize(
    "stamps",
    [
        [],
        list(range(1, 101)),  # exactly one full page
        list(range(1, 1001)),
        [5] * 250 + list(range(6, 300)),  # a tie group bigger than two pages
        [1] * 100 + [2] * 100 + [3] * 1,  # consecutive page-sized tie groups
        sorted(random.Random(3).choices(range(40), k=900)),  # many ties everywhere
    ],
    ids=["empty", "one-page", "thousand", "big-tie", "page-sized-ties", "random-ties"],
)
def test_each_record_exactly_once_in_key_order(stamps: list[int]) -> None:
    data = rows(stamps)
    pages = list(changed_since(FakeQuery(data), None))
    got = keys(pages)
    assert got == sorted((r["last_modified_time"], r["_id"]) for r in data)
    assert all(pages)


def test_start_is_inclusive_of_its_own_key() -> None:
    data = rows([1] * 150 + [2] * 10)
    start = (1, "id000120")
    got = keys(list(changed_since(FakeQuery(data), start)))
    expected = sorted((r["last_modified_time"], r["_id"]) for r in data)
    assert got == [k for k in expected if k >= start]


@pytest.mark.parametrize(
    ("stamps", "calls"),
    [
        (list(range(1, 2501)), 26),  # 25 full pages and the empty answer that ends them
        ([s // 3 for s in range(2550)], 26),  # ties of three straddle page boundaries
    ],
)
def test_each_call_brings_a_full_page_of_new_records(stamps: list[int], calls: int) -> None:
    query = FakeQuery(rows(stamps))
    pages = list(changed_since(query, None))
    assert [len(p) for p in pages[:-1]] == [PAGE_LIMIT] * (len(pages) - 1)
    assert len(query.calls) == calls


@pytest.mark.slow  # reads 25,000 records through the real paging (about 20 s)
def test_read_changed_crosses_the_offset_wall_each_id_exactly_once(
    read_ids: ReadIds, make_sandbox: MakeSandbox, connect: Connect
) -> None:
    n = 25_000
    # A short window on both sides keeps this fast; the real 20 s window is tested elsewhere.
    sandbox = make_sandbox(customers=n, rate_window=0.25)
    connector = connect(sandbox)  # its crmtier.toml carries the sandbox's window
    ids = read_ids(connector)
    assert len(ids) == n and len(set(ids)) == n
    assert set(ids) == {customer_id(i) for i in range(n)}
    # docs/targets.md P1: ⌈N/100⌉ (+ the end)
    assert sandbox.server.calls.count("query") == n // PAGE_LIMIT + 1
    assert n > MAX_OFFSET * 2
    assert sandbox.server.calls.max_in_window("query", 0.25) <= 100


def test_records_edited_mid_read_are_not_skipped(
    make_sandbox: MakeSandbox, connect: Connect
) -> None:
    sandbox = make_sandbox(customers=1000)
    connector = connect(sandbox)
    seen: list[str] = []
    for page_no, page in enumerate(connector.read_changed(None)):
        seen += [r.profile.id for r in page.records]
        if page_no == 2:
            # Edits behind the read position move records to the end of the order; with
            # offset paging every later record would shift and one would be skipped.
            for i in range(0, 200, 10):
                sandbox.edit_customer(customer_id(i), {"feedback.csat": 4.5})
    assert set(seen) == {customer_id(i) for i in range(1000)}
    edited = {customer_id(i) for i in range(0, 200, 10)}
    assert len(seen) == 1000 + len(edited)  # the edited ones come again, nothing is lost


def test_incremental_read_from_a_cursor(
    read_ids: ReadIds, make_sandbox: MakeSandbox, connect: Connect
) -> None:
    sandbox = make_sandbox(customers=300)
    connector = connect(sandbox)
    records = [r for page in connector.read_changed(None) for r in page.records]
    cursor = Cursor(records[149].modstamp, records[149].profile.id)
    again = read_ids(connector, cursor)
    assert again == [r.profile.id for r in records[149:]]
    # A change after the cursor is all a later run sees.
    last = records[-1].cursor
    sandbox.edit_customer(customer_id(7), {"assets.deposits": 7_000_000.0})
    assert read_ids(connector, last)[-1] == customer_id(7)
    assert from_epoch_ms(0) < last.modstamp < last.modstamp + timedelta(days=1)


@pytest.mark.parametrize(
    ("answer", "ids"),
    [
        ({"data": {"dataList": [{"_id": "a"}, {"_id": "b"}], "total": 2}}, ["a", "b"]),
        ({"data": {"_id": "a", "name": "x"}}, ["a"]),  # a bare record map
        ({"data": {"dataList": [], "total": 0}}, []),
        ({"data": None}, []),
        ({}, []),
    ],
)
def test_rows_of_tolerates_the_documented_shapes(answer: dict[str, Any], ids: list[str]) -> None:
    assert [row["_id"] for row in rows_of(answer)] == ids
