"""``search_query_info`` evaluated over the sandbox's SQLite store.

Documented behaviour emulated (FXiaoke Open API v2,
developer.fxiaoke.com/openapi_v2/FAQ/deep-paging.html): ``limit`` ≤ 100, ``offset`` ≤
10,000 (beyond it errorCode 10013 "offset out of range 10000") and a multiple of ``limit``,
filters ``{field_name, field_values, operator}`` AND-ed (``field_values`` a list of strings
and ``operator`` one of the query pages' table, spelled as there: ``_strings``,
``_predicate``), ``orders`` ``{fieldName, isAsc}``,
``fieldProjection`` (an empty list returns ``_id`` alone), totals on request
(``find_explicit_total_num``, ``returnTotalNum``, ``need_return_count_num`` are all
accepted).

Queries in the store's own (``last_modified_time``, ``_id``) order with a modstamp lower
bound are answered by walking the index in chunks and stopping early, so paging through a
million customers stays cheap; anything else (``_id`` order, other fields) scans and sorts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sandbox.store import RecordStore

MAX_LIMIT = 100
MAX_OFFSET = 10_000
MODSTAMP = "last_modified_time"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 500


def to_ms(ts: datetime) -> int:
    return int((ts - _EPOCH) // timedelta(milliseconds=1))


def from_ms(ms: int | float) -> datetime:
    return _EPOCH + timedelta(milliseconds=int(ms))


class QueryError(ValueError):
    """A rejected query: ``code`` is the FXiaoke errorCode to answer with."""

    def __init__(self, code: int, message: str, description: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.description = description or message


def as_row(rid: str, modstamp: datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record as FXiaoke returns it: ``_id`` and ``last_modified_time`` added."""
    return {**data, "_id": rid, MODSTAMP: to_ms(modstamp)}


@dataclass(frozen=True)
class Query:
    filters: tuple[Callable[[Mapping[str, Any]], bool], ...]
    orders: tuple[tuple[str, bool], ...]
    limit: int
    offset: int
    projection: tuple[str, ...] | None  # None: no fieldProjection sent
    since_ms: int | None  # a modstamp lower bound the index can use
    ids: tuple[str, ...] | None  # an ``_id IN`` the store can look up directly

    @property
    def in_store_order(self) -> bool:
        return self.orders in ((), ((MODSTAMP, True),), ((MODSTAMP, True), ("_id", True)))


def parse(info: Any) -> Query:
    if not isinstance(info, Mapping):
        raise QueryError(10001, "缺少参数search_query_info")
    limit = _int(info.get("limit", 20), "limit")
    offset = _int(info.get("offset", 0), "offset")
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError(15002, f"limit must be 1..{MAX_LIMIT}", "limit 不能超过100")
    if offset < 0:
        raise QueryError(15002, "offset must be >= 0")
    if offset % limit:
        # "offset (starts from 0, must be a multiple of limit)": every object's query page,
        # e.g. "Query Customer Object List by Criteria" (fxiaoke.com/mob/guide/openapi/dist/
        # en/pages/open-api/collection/object/AccountObj/query-acc/). The refusal's code is
        # not documented; 15002 (参数不合法) is our best reading.
        raise QueryError(15002, "offset must be a multiple of limit")
    if offset > MAX_OFFSET:
        raise QueryError(10013, "offset out of range 10000", "offset 不能超过10000")
    filters, since_ms, ids = [], None, None
    for spec in info.get("filters") or []:
        field, op = str(spec.get("field_name", "")), spec.get("operator")
        values = _strings(field, spec.get("field_values"))
        filters.append(_predicate(field, op, values))
        if field == MODSTAMP and op in ("GTE", "GT", "EQ") and values:
            since_ms = _epoch_ms(values[0])
        if field == "_id" and op in ("IN", "EQ"):
            ids = tuple(str(v) for v in values)
    orders = tuple(
        (str(o.get("fieldName")), bool(o.get("isAsc", True))) for o in info.get("orders") or []
    )
    given = info.get("fieldProjection")
    projection = None if given is None else tuple(str(f) for f in given)
    return Query(tuple(filters), orders, limit, offset, projection, since_ms, ids)


def _strings(field: str, given: Any) -> list[str]:
    """A filter's ``field_values``: ``List[String]`` in the request table of the preset
    objects' query pages ("Query Customer Object List by Criteria", fxiaoke.com/mob/guide/
    openapi/dist/en/pages/open-api/collection/object/AccountObj/query-acc/; "Query Custom
    Object List" says only ``List``), a time bound included (its epoch milliseconds as
    decimal text); the sandbox holds custom objects to the stricter reading. Anything else
    is refused with 15002 (参数不合法; the code is not documented), so a client sending a
    JSON number fails here, not on a tenant that reads the documented type."""
    values = [] if given is None else given
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise QueryError(15002, f"field_values of {field} must be a list of strings")
    return list(values)


def _epoch_ms(text: str) -> int:
    """A modstamp bound's epoch milliseconds. Text that is no finite number is refused with
    15002 like any other bad filter (FXiaoke answers HTTP 200 with an errorCode to
    everything), not left to fail the request as a whole."""
    try:
        return int(float(text))
    except (ValueError, OverflowError):
        raise QueryError(15002, f"field_values of {MODSTAMP} must be epoch milliseconds") from None


def _int(value: Any, name: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise QueryError(15002, f"{name} must be an integer") from None


def run(store: RecordStore, obj: str, query: Query, *, want_total: bool) -> dict[str, Any]:
    """The ``data`` of a query response: ``dataList``, ``total``, ``offset``, ``limit``."""
    need = query.offset + query.limit
    matched: list[dict[str, Any]] = []
    rows = _candidates(store, obj, query)
    total = 0
    for row in rows:
        if all(pred(row) for pred in query.filters):
            total += 1
            if len(matched) < need or not query.in_store_order:
                matched.append(row)
            elif not want_total:
                break
    if not query.in_store_order:
        for name, ascending in reversed(query.orders):
            matched.sort(key=_by_field(name), reverse=not ascending)
    page = [_project(r, query.projection) for r in matched[query.offset : need]]
    return {
        "dataList": page,
        "total": total if want_total else 0,
        "offset": query.offset,
        "limit": query.limit,
    }


def _candidates(store: RecordStore, obj: str, query: Query) -> Iterator[dict[str, Any]]:
    if query.ids is not None:
        found = store.get_many(obj, query.ids)
        for rid in sorted(found, key=lambda i: (found[i][0], i)):
            yield as_row(rid, *found[rid])
        return
    since = from_ms(query.since_ms) if query.since_ms is not None else None
    after: tuple[datetime, str] | None = None
    # A page in index order usually needs just offset + limit rows: read no more at first.
    size = query.offset + query.limit + 1 if query.in_store_order else _CHUNK
    while True:
        chunk = list(store.scan(obj, since=since, after=after, limit=size))
        for rid, modstamp, data in chunk:
            yield as_row(rid, modstamp, data)
        if len(chunk) < size:
            return
        size = _CHUNK
        after = (chunk[-1][1], chunk[-1][0])


def _project(row: Mapping[str, Any], fields: Sequence[str] | None) -> dict[str, Any]:
    """The fields a query returns. FXiaoke documents ``fieldProjection`` as the list of
    fields to return (the 查询 pages of each object, e.g. fxiaoke.com/mob/guide/openapi
    "AccountObj 查询": ``fieldProjection: ["_id", "name", ...]``) and says nothing of an
    empty list: the sandbox takes the strict reading, ``_id`` alone, so a client relying on
    "empty means everything" fails here rather than on a tenant. No projection at all
    returns the whole record."""
    if fields is None:
        return dict(row)
    return {name: row[name] for name in ("_id", *fields) if name in row}


def _by_field(name: str) -> Callable[[Mapping[str, Any]], tuple[int, Any]]:
    return lambda row: _sort_key(row.get(name))


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (2, str(value))


def _predicate(field: str, op: Any, values: list[Any]) -> Callable[[Mapping[str, Any]], bool]:
    """The test of one filter. The operators are the "operator Parameter Description"
    table of every object's query page ("Query Customer Object List by Criteria",
    fxiaoke.com/mob/guide/openapi/dist/en/pages/open-api/collection/object/AccountObj/
    query-acc/), spelled as there: ``N`` not ``NE``, ``GTE`` not ``GE``, upper case; ``N``
    also matches empty values ("Can query empty values"); ``BETWEEN`` takes two values, both
    ends included as in SQL (the page does not say). Anything else is refused with 15002
    (参数不合法; the code for it is not documented): a client sending ``NE`` fails here as
    it would on a tenant."""

    def norm(have: Any, want: Any) -> tuple[Any, Any]:
        if isinstance(have, int | float) and not isinstance(have, bool):
            try:
                return have, float(want)
            except (TypeError, ValueError):
                return str(have), str(want)
        return ("" if have is None else str(have)), str(want)

    first = values[0] if values else None
    last = values[1] if len(values) > 1 else None

    def compare(row: Mapping[str, Any], test: Callable[[Any, Any], bool]) -> bool:
        have = row.get(field)
        if have is None or first is None:
            return False
        a, b = norm(have, first)
        try:
            return test(a, b)
        except TypeError:
            return False

    def between(row: Mapping[str, Any]) -> bool:
        have = row.get(field)
        if have is None or first is None or last is None:
            return False
        (a, low), (_, high) = norm(have, first), norm(have, last)
        try:
            return bool(low <= a <= high)
        except TypeError:
            return False

    def members(row: Mapping[str, Any]) -> list[str]:
        have = row.get(field)
        if isinstance(have, list):
            return [str(v) for v in have]
        return [] if have is None else [str(have)]

    wanted = {str(v) for v in values}
    ops: dict[str, Callable[[Mapping[str, Any]], bool]] = {
        "EQ": lambda r: compare(r, lambda a, b: a == b),
        "N": lambda r: not compare(r, lambda a, b: a == b),
        "GT": lambda r: compare(r, lambda a, b: a > b),
        "GTE": lambda r: compare(r, lambda a, b: a >= b),
        "LT": lambda r: compare(r, lambda a, b: a < b),
        "LTE": lambda r: compare(r, lambda a, b: a <= b),
        "IN": lambda r: bool(wanted.intersection(members(r))),
        "NIN": lambda r: not wanted.intersection(members(r)),
        "HASANYOF": lambda r: bool(wanted.intersection(members(r))),
        "NHASANYOF": lambda r: not wanted.intersection(members(r)),
        "LIKE": lambda r: str(first) in str(r.get(field) or ""),
        "NLIKE": lambda r: str(first) not in str(r.get(field) or ""),
        "STARTWITH": lambda r: str(r.get(field) or "").startswith(str(first)),
        "ENDWITH": lambda r: str(r.get(field) or "").endswith(str(first)),
        "IS": lambda r: r.get(field) in (None, "", []),
        "ISN": lambda r: r.get(field) not in (None, "", []),
        "BETWEEN": between,
        "NBETWEEN": lambda r: not between(r),
    }
    if not isinstance(op, str) or op not in ops:
        raise QueryError(15002, f"unsupported operator {op}")
    return ops[op]
