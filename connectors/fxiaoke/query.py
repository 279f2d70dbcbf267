"""Reading FXiaoke objects: ``search_query_info`` bodies and keyset paging over them.

FXiaoke pages by ``offset`` (≤ 100 per page) and refuses offsets past 10,000 (error 10013);
its deep-paging FAQ says to page by ``_id`` instead. crmtier never uses offsets for the
change stream, not even below the wall: an offset counts positions in a list that moves
while it is read (a record edited mid-read jumps to the end, every later record shifts one
place down, and the record at the page boundary is silently skipped for good, because its
modstamp is then behind the bookmark). Keyset paging on (``last_modified_time``, ``_id``)
has no positions to shift:

* each page asks for ``last_modified_time GTE <last modstamp>`` and ``_id NIN <the ids
  already read at that modstamp>`` (usually one), ordered by (``last_modified_time``,
  ``_id``), at offset 0: every call brings a full page of new records, so N records cost
  ⌈N/100⌉ calls, as with offsets, and none is repeated;
* a tie group — more records sharing one millisecond than that exclusion list should
  carry — is drained with ``last_modified_time EQ m`` and ``_id GT <id>``, the FAQ's
  ``_id`` paging, then reading continues with ``GT m``.

Filter operators are the ones FXiaoke's query pages list (``OPERATORS``); ``flt`` refuses
any other name, so a SQL-style ``NE`` or ``GE`` fails here, not as a tenant's 15002.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

#: FXiaoke's page size ceiling for /data/query (current docs; old docs said 200 or 1000).
PAGE_LIMIT = 100
#: Ids per look-up by an ``IN`` filter: half a page, so a few duplicates still fit in one answer.
KEYS_PER_LOOKUP = PAGE_LIMIT // 2
#: The offset wall: documented for the API, never approached by crmtier's keyset paging.
MAX_OFFSET = 10_000

MODSTAMP = "last_modified_time"
ID = "_id"
CREATED = "create_time"  # system field: epoch ms of creation

Row = Mapping[str, Any]
Key = tuple[int, str]
RunQuery = Callable[[list[dict[str, Any]], list[dict[str, Any]]], list[Row]]


#: The ``operator`` values of ``search_query_info.filters``, exactly as the "operator
#: Parameter Description" table of every object's query page lists them ("Query Customer
#: Object List by Criteria", fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/collection/
#: object/AccountObj/query-acc/; the same table on developer.fxiaoke.com/openapi_v2, e.g.
#: …/en/object/StagePropeller/stageRuntime/query.html): not-equal is ``N`` (it also matches
#: empty values), greater-or-equal ``GTE``, less-or-equal ``LTE``. ``NE`` is the APL
#: function reference's spelling (``Operator.NE`` of ``Fx.object.find``, code run inside
#: FXiaoke), not the Open API's (docs/fxiaoke-api-audit.md, "Query filter operators").
OPERATORS = frozenset(
    {
        "EQ", "N", "GT", "GTE", "LT", "LTE", "LIKE", "NLIKE", "IS", "ISN", "IN", "NIN",
        "BETWEEN", "NBETWEEN", "STARTWITH", "ENDWITH", "HASANYOF", "NHASANYOF",
    }
)  # fmt: skip


def flt(field: str, operator: str, *values: Any) -> dict[str, Any]:
    """One filter; ValueError for an operator FXiaoke does not document.

    ``field_values`` is ``List[String]`` in the request table of the preset objects' query
    pages ("Query Customer Object List by Criteria", fxiaoke.com/mob/guide/openapi/dist/en/
    pages/open-api/collection/object/AccountObj/query-acc/; the custom-object page says only
    ``List``, which strings satisfy too), and the deep-paging FAQ's ``_id GT`` example sends
    a string: a modstamp bound goes as its epoch milliseconds in decimal
    (``"1717300000000"``), never as a JSON number (docs/fxiaoke-api-audit.md, "Query
    filter operators")."""
    if operator not in OPERATORS:
        raise ValueError(f"FXiaoke has no query operator {operator!r} (see query.OPERATORS)")
    texts = [_text(field, v) for v in values]
    return {"field_name": field, "field_values": texts, "operator": operator}


def _text(field: str, value: Any) -> str:
    """A filter value as FXiaoke's ``List[String]`` carries it; a bool or a float is our bug
    (no filter crmtier builds compares one), refused rather than sent as ``"True"``. The
    refusal names the field and the value's type, never the value."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    kind = type(value).__name__
    raise ValueError(f"FXiaoke filter value for {field} must be text or an integer, not {kind}")


def asc(field: str) -> dict[str, Any]:
    return {"fieldName": field, "isAsc": True}


def search_query_info(
    filters: Sequence[Mapping[str, Any]],
    orders: Sequence[Mapping[str, Any]],
    projection: Sequence[str],
    *,
    limit: int = PAGE_LIMIT,
    offset: int = 0,
) -> dict[str, Any]:
    return {
        "limit": limit,
        "offset": offset,
        "filters": [dict(f) for f in filters],
        "orders": [dict(o) for o in orders],
        "fieldProjection": list(projection),
    }


def by_ids(obj: str, ids: Sequence[str], fields: Sequence[str]) -> Iterator[dict[str, Any]]:
    """The ``data/query`` bodies that read the records ``ids`` of ``obj``, ``fields``
    projected: one per ``PAGE_LIMIT`` distinct ids (``_id IN``), so every answer fits in
    its one page, however many ids there are."""
    unique = sorted(set(ids))
    for start in range(0, len(unique), PAGE_LIMIT):
        yield {
            "dataObjectApiName": obj,
            "find_explicit_total_num": False,
            "search_query_info": search_query_info(
                [flt(ID, "IN", *unique[start : start + PAGE_LIMIT])], [], fields
            ),
        }


def rows_of(answer: Mapping[str, Any]) -> list[Row]:
    """The records of a query answer: ``data.dataList`` (three independent clients parse
    it so); a bare record map in ``data``, as some per-object doc pages draw it, is one row."""
    data = answer.get("data")
    if not isinstance(data, Mapping):
        return []
    rows = data.get("dataList")
    if isinstance(rows, list):
        return [row for row in rows if isinstance(row, Mapping)]
    return [data] if ID in data else []


def key_of(row: Row) -> Key:
    return int(row[MODSTAMP]), str(row[ID])


#: Ids at one modstamp excluded with NIN before a tie group is drained by ``_id`` instead.
MAX_EXCLUDED = 20


def changed_since(run: RunQuery, start: Key | None) -> Iterator[list[Row]]:
    """Pages of rows with key >= ``start`` (all rows when None), in key order, each once.

    ``run(filters, orders)`` performs one query at offset 0 with ``PAGE_LIMIT`` and returns
    its ``dataList``.
    """
    by_key = [asc(MODSTAMP), asc(ID)]
    last: Key | None = None  # the last key yielded; ``start`` is inclusive, ``last`` is not
    seen: list[str] = []  # ids yielded at last[0]

    def fresh(row: Row) -> bool:
        key = key_of(row)
        if last is not None:
            return key > last
        return start is None or key >= start

    def advance(page: Sequence[Row]) -> None:
        nonlocal last, seen
        for row in page:
            key = key_of(row)
            seen = [*seen, key[1]] if last is not None and key[0] == last[0] else [key[1]]
            last = key

    while True:
        floor = last or start
        stuck = floor is not None and len(seen) > MAX_EXCLUDED
        if not stuck:
            filters = [flt(MODSTAMP, "GTE", floor[0])] if floor else []
            if seen:
                filters.append(flt(ID, "NIN", *seen))
            rows = run(filters, by_key)
            page = [row for row in rows if fresh(row)]
            # A full page of nothing new: records before ``start`` within its millisecond.
            stuck = not page and len(rows) >= PAGE_LIMIT
        if stuck and floor is not None:
            for tie_page in _tie_group(run, floor[0], floor[1], inclusive=last is None):
                yield tie_page
                advance(tie_page)
            rows = run([flt(MODSTAMP, "GT", floor[0])], by_key)
            page = list(rows)
        if page:
            yield page
            advance(page)
        if len(rows) < PAGE_LIMIT:
            return


def _tie_group(run: RunQuery, stamp: int, after_id: str, *, inclusive: bool) -> Iterator[list[Row]]:
    operator = "GTE" if inclusive else "GT"
    while True:
        rows = run([flt(MODSTAMP, "EQ", stamp), flt(ID, operator, after_id)], [asc(ID)])
        if rows:
            yield list(rows)
            after_id, operator = str(rows[-1][ID]), "GT"
        if len(rows) < PAGE_LIMIT:
            return
