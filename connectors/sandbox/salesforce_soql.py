"""The SOQL subset the Salesforce sandbox understands.

Enough for what integrations actually send for incremental sync and lookups, parsed
properly rather than pattern-matched so that a connector sending slightly different (but
valid) SOQL still works::

    SELECT f1, f2 FROM Obj
      [WHERE <cond>]            -- =, !=, <>, <, <=, >, >=, IN (...), NOT IN (...),
                                -- AND, OR, NOT, parentheses; literals: 'text', numbers,
                                -- true/false/null, ISO datetimes (unquoted), dates
      [ORDER BY f [ASC|DESC] [, ...]]
      [LIMIT n]

Anything else is a ``MALFORMED_QUERY`` (Salesforce's own error code), so an unsupported
query fails loudly instead of returning wrong rows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any


class SoqlError(ValueError):
    """A query the sandbox cannot parse; reported as ``MALFORMED_QUERY``."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*')
      | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
      | (?P<date>\d{4}-\d{2}-\d{2})
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "ORDER",
    "BY",
    "LIMIT",
    "AND",
    "OR",
    "NOT",
    "IN",
    "ASC",
    "DESC",
    "NULLS",
    "FIRST",
    "LAST",
}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    value: Any = None


def tokenize(soql: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    soql = soql.strip()
    while pos < len(soql):
        m = _TOKEN.match(soql, pos)
        if m is None or m.end() == pos:
            raise SoqlError(f"unexpected character at position {pos}: {soql[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        text = m.group(kind)
        tokens.append(Token(kind, text, _literal(kind, text)))
    return tokens


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if kind == "datetime":
        return parse_soql_datetime(text)
    if kind == "date":
        return date.fromisoformat(text)
    if kind == "number":
        return float(text) if "." in text else int(text)
    return None


def parse_soql_datetime(text: str) -> datetime:
    """SOQL/REST datetimes: ``2025-01-15T09:31:02Z``, ``...02.000+0000``, ``...+08:00``."""
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    m = re.fullmatch(r"(.*[+-]\d{2})(\d{2})", text)
    if m and ":" not in text[-6:]:
        text = f"{m.group(1)}:{m.group(2)}"
    return datetime.fromisoformat(text).astimezone(UTC)


Predicate = Callable[[Mapping[str, Any]], bool]


@dataclass(frozen=True)
class Comparison:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class BoolOp:
    op: str  # AND | OR | NOT
    args: tuple[Node, ...]


Node = Comparison | BoolOp


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: Node | None
    order_by: tuple[tuple[str, bool], ...]  # (field, descending)
    limit: int | None
    #: asked of the ``queryAll`` resource: deleted records (the Recycle Bin) and archived
    #: Tasks too, which ``query`` leaves out ("Unlike the Query resource, QueryAll returns
    #: records that are soft deleted due to a merge or delete ... QueryAll also returns
    #: information about archived task and event records", REST API Developer Guide,
    #: "QueryAll", developer.salesforce.com/docs/platform/api-rest/guide/
    #: resources-queryall.html)
    all_rows: bool = False

    def matches(self, record: Mapping[str, Any]) -> bool:
        return self.where is None or _eval(self.where, record)

    def modstamp_floor(self) -> datetime | None:
        """The lowest ``SystemModstamp`` any matching row can have (None: unbounded), so
        the sandbox scans its (modstamp, id) index from there instead of from the start."""
        return None if self.where is None else _floor(self.where)

    def id_set(self) -> list[str] | None:
        """When the query is restricted to ``Id IN (...)`` (or ``Id = x``), those ids."""
        return self.values_of("Id")

    def values_of(self, field: str) -> list[str] | None:
        """When the query is restricted to ``field IN (...)`` (or ``field = x``), the values:
        lets the org answer from an index instead of scanning the object."""
        return None if self.where is None else _values(self.where, field)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def is_kw(self, word: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind == "word" and tok.text.upper() == word

    def take(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise SoqlError("unexpected end of query")
        self.i += 1
        return tok

    def expect_kw(self, word: str) -> None:
        tok = self.take()
        if tok.kind != "word" or tok.text.upper() != word:
            raise SoqlError(f"expected {word}, found {tok.text!r}")

    def expect_punct(self, char: str) -> None:
        tok = self.take()
        if tok.text != char:
            raise SoqlError(f"expected {char!r}, found {tok.text!r}")

    def ident(self) -> str:
        tok = self.take()
        if tok.kind != "word" or tok.text.upper() in _KEYWORDS:
            raise SoqlError(f"expected a field name, found {tok.text!r}")
        return tok.text

    def query(self) -> Query:
        self.expect_kw("SELECT")
        fields = [self.ident()]
        while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
            self.take()
            fields.append(self.ident())
        self.expect_kw("FROM")
        sobject = self.ident()
        where = None
        if self.is_kw("WHERE"):
            self.take()
            where = self.expr()
        order: list[tuple[str, bool]] = []
        if self.is_kw("ORDER"):
            self.take()
            self.expect_kw("BY")
            order.append(self.order_item())
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                order.append(self.order_item())
        limit = None
        if self.is_kw("LIMIT"):
            self.take()
            tok = self.take()
            if tok.kind != "number" or not isinstance(tok.value, int) or tok.value < 0:
                raise SoqlError("LIMIT needs a non-negative integer")
            limit = tok.value
        if self.peek() is not None:
            raise SoqlError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return Query(tuple(fields), sobject, where, tuple(order), limit)

    def order_item(self) -> tuple[str, bool]:
        name = self.ident()
        desc = False
        if self.is_kw("ASC") or self.is_kw("DESC"):
            desc = self.take().text.upper() == "DESC"
        if self.is_kw("NULLS"):
            self.take()
            self.take()
        return name, desc

    def expr(self) -> Node:
        args = [self.term()]
        while self.is_kw("OR"):
            self.take()
            args.append(self.term())
        return args[0] if len(args) == 1 else BoolOp("OR", tuple(args))

    def term(self) -> Node:
        args = [self.factor()]
        while self.is_kw("AND"):
            self.take()
            args.append(self.factor())
        return args[0] if len(args) == 1 else BoolOp("AND", tuple(args))

    def factor(self) -> Node:
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            node = self.expr()
            self.expect_punct(")")
            return node
        if self.is_kw("NOT"):
            self.take()
            return BoolOp("NOT", (self.factor(),))
        name = self.ident()
        negate = False
        if self.is_kw("NOT") and self.is_kw("IN", 1):
            self.take()
            negate = True
        if self.is_kw("IN"):
            self.take()
            self.expect_punct("(")
            values = [self.value()]
            while self.peek() is not None and self.peek().text == ",":  # type: ignore[union-attr]
                self.take()
                values.append(self.value())
            self.expect_punct(")")
            return Comparison(name, "NOT IN" if negate else "IN", tuple(values))
        op = self.take()
        if op.kind != "op":
            raise SoqlError(f"expected a comparison after {name}, found {op.text!r}")
        return Comparison(name, "!=" if op.text == "<>" else op.text, self.value())

    def value(self) -> Any:
        tok = self.take()
        if tok.kind in ("string", "datetime", "date", "number"):
            return tok.value
        if tok.kind == "word" and tok.text.lower() in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok.text.lower()]
        raise SoqlError(f"expected a literal, found {tok.text!r}")


def parse(soql: str) -> Query:
    return _Parser(tokenize(soql)).query()


def _compare(left: Any, op: str, right: Any) -> bool:
    if op == "IN":
        return left in right
    if op == "NOT IN":
        return left not in right
    if op == "=":
        return bool(left == right)
    if op == "!=":
        return bool(left != right)
    if left is None or right is None:
        return False
    if isinstance(right, date) and not isinstance(right, datetime) and isinstance(left, str):
        left = date.fromisoformat(left[:10])
    try:
        return {
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }[op]
    except TypeError:
        return False


def _eval(node: Node, record: Mapping[str, Any]) -> bool:
    if isinstance(node, Comparison):
        return _compare(record.get(node.field), node.op, node.value)
    if node.op == "AND":
        return all(_eval(a, record) for a in node.args)
    if node.op == "OR":
        return any(_eval(a, record) for a in node.args)
    return not _eval(node.args[0], record)


def _floor(node: Node) -> datetime | None:
    if isinstance(node, Comparison):
        if (
            node.field == "SystemModstamp"
            and node.op in (">", ">=", "=")
            and isinstance(node.value, datetime)
        ):
            return node.value
        return None
    if node.op == "AND":
        floors = [f for f in (_floor(a) for a in node.args) if f is not None]
        return max(floors) if floors else None
    if node.op == "OR":
        bounds = [_floor(a) for a in node.args]
        present = [f for f in bounds if f is not None]
        return min(present) if len(present) == len(bounds) else None
    return None


def _values(node: Node, field: str) -> list[str] | None:
    if isinstance(node, Comparison):
        if node.field == field and node.op == "IN":
            return [str(v) for v in node.value]
        if node.field == field and node.op == "=":
            return [str(node.value)]
        return None
    if node.op == "AND":
        for arg in node.args:
            values = _values(arg, field)
            if values is not None:
                return values
    return None
