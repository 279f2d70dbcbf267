"""``crmtier tier``'s output: a batch's Assessment JSON Lines, made from its decision
columns (``decisions.decided``) as columns of JSON fragments (``fragments``).

A line is each customer's ``Assessment`` as ``Assessment.model_dump_json`` writes it,
byte for byte (tests/core: against the model, on generated and arbitrary books). It is
never built as a dict a customer: the tiers and levels, the reasons (both languages),
the set-field actions and the DQ issues are serialised once per distinct value a batch
and picked per customer by code, the campaign actions are two prepared heads per
campaign and each customer's dedupe keys (``strategy.campaign_digests``), and the lines
are the fragments joined row by row. Tasks stay per customer: whether a customer gets
one, and its text, is the task rules' (``strategy.tasks``), asked as a whole decision
asks them (``DecisionColumns.row``), but only for the customers whose decided columns
trigger any rule at all (``strategy.task_candidates``): most customers get none.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from functools import partial
from itertools import repeat
from typing import Any

import numpy as np

from tiering_core import decisions
from tiering_core.columns import Columns
from tiering_core.decision_columns import DecisionColumns
from tiering_core.engine import evaluate
from tiering_core.fragments import Fragments, arrays, column, each, keyed, to_json
from tiering_core.models import ACTION_KINDS
from tiering_core.policy import Policy
from tiering_core.rules import override, strategy

#: The decided outputs between ``id`` and ``reasons``, in the model's order.
_HEAD = (
    "status",
    "value_tier",
    "value_score",
    "needs_tier",
    "credit_risk",
    "aml_risk",
    "ops_risk",
    "edd_required",
    "next_review",
    "service_level",
    "preferred_channel",
)


def assessment_lines(cols: Columns, policy: Policy, as_of: date) -> bytes:
    """A batch's output lines, each its customer's Assessment JSON and a newline, in
    input order. Overrides are applied as ``engine.decide_columns`` applies them: a line
    is the customer's ``Assessment``, whatever path made it."""
    if not cols.n:
        return b""
    return lines(decided(cols, policy, as_of))


def decided(cols: Columns, policy: Policy, as_of: date) -> DecisionColumns:
    """A non-empty batch's decisions as its lines are written from (every action kind,
    reason texts rendered, the task candidates among them): the step before ``lines``,
    which ``bench/core.py`` times apart from it."""
    ev = override.apply(evaluate(cols, policy, as_of), cols, policy, as_of)
    return decisions.decided(cols, ev, policy, as_of, ACTION_KINDS, rendered=True)


def lines(dc: DecisionColumns) -> bytes:
    """``dc``'s decisions (every action kind, reason texts rendered) as JSON Lines; the
    task rules are asked about its task candidates alone (``DecisionColumns.candidates``:
    any other has no task)."""
    n = len(dc)
    named = dc.named
    out = Fragments(n)
    out.add(b'{"id":')
    out.add(each(dc.ids))
    service_level = dc.service_level  # an override's, where one applies
    made: dict[int, list[bytes]] = {}
    for name in _HEAD:
        out.add(b',"' + name.encode() + b'":')
        values = service_level if name == "service_level" else getattr(named, name)
        out.add(_values(name, values, made))
    out.add(b',"reasons":[')
    out.add(dc.cells.items())
    out.add(b'],"actions":[')
    _actions(dc, made, out)
    out.add(b'],"dq_issues":[')
    out.add(arrays(dc.issues))
    out.add(b"],")
    out.add(
        keyed(
            list(zip(named.below_floor_since, dc.households, named.qualified, strict=True)),
            partial(_tail, dc.policy.version),
        )
    )
    out.add(b"}\n")
    return out.lines()


def _tail(
    version: str,
    key: tuple[date | None, decisions.Household, tuple[str, date | None] | None],
) -> bytes:
    below_floor_since, household, own = key
    tail: dict[str, Any] = {"policy_version": version, "below_floor_since": below_floor_since}
    if household.read:  # the key only where households were read (DecisionColumns.plain)
        tail["household_tier"] = household.tier
    if own is not None:  # only where an override made them differ (DecisionColumns.plain)
        tail["qualified_value_tier"], tail["qualified_below_floor_since"] = own
    return to_json(tail)[1:-1]


def _actions(dc: DecisionColumns, made: dict[int, list[bytes]], out: Fragments) -> None:
    """The actions in kind order: set-field (always some), tasks, campaigns, then a
    refused override's task (``DecisionColumns.row``)."""
    _set_fields(dc, made, out)
    out.add(_tasks(dc))
    keys, membership = dc.memberships
    if keys:
        digests = zip(*map(strategy.campaign_digests, dc.ids, repeat(keys)), strict=True)
        close = b""  # the previous campaign's key, closed in this one's head
        for key, member, digest in zip(keys, membership, digests, strict=True):
            out.add(list(map(_campaign_heads(key, close).__getitem__, member)))
            out.add(digest)
            close = b'"}'
        out.add(close)
    if dc.overrides:
        out.add(_refusals(dc))


def _set_fields(dc: DecisionColumns, made: dict[int, list[bytes]], out: Fragments) -> None:
    """Each ``set_field`` action, comma-led but the first (a line has them all: the tier
    command asks for every action kind)."""
    if not dc.set_fields:
        raise ValueError("a line's actions start with its set-field actions")
    lead = b""
    for name, values in dc.set_fields.items():
        out.add(lead + b'{"kind":"set_field","field":' + to_json(name) + b',"value":')
        out.add(_values(name, values, made))
        out.add(b"}")
        lead = b","


#: The outputs that are floats: serialised value by value, since a dict key would not
#: tell 0.0 from -0.0, nor 1 from 1.0 (they are written differently).
_FLOATS = frozenset({"value_score"})


def _values(name: str, values: Sequence[Any], made: dict[int, list[bytes]]) -> list[bytes]:
    """Output ``name``'s JSON value of each row. A column already written this batch is
    reused from ``made`` (by the list's identity: ``lines`` holds every list it writes):
    ten of the set-field actions' values are the head fields' own lists."""
    key = id(values)
    if key not in made:
        made[key] = each(values) if name in _FLOATS else column(values)
    return made[key]


def _tasks(dc: DecisionColumns) -> list[bytes]:
    """Each customer's tasks, comma-led (``b""``: none), from the task rules as a whole
    decision has them (``DecisionColumns.row``), asked for the candidates alone (made
    with the decisions: ``lines`` has every action kind's)."""
    named, policy, as_of = dc.named, dc.policy, dc.as_of
    candidates = dc.candidates
    if candidates is None:  # decided without the task kind: the lines would lose every task
        raise ValueError("assessment lines need decisions made with the task kind")
    customers, cells, issues, levels = dc.customers, dc.cells, dc.issues, dc.service_level
    out = [b""] * len(dc)
    for i in np.flatnonzero(candidates).tolist():
        outcome = named.outcome(i, levels[i], issues[i])
        tasks = strategy.tasks(customers[i], outcome, policy, as_of, cells.reasons_of(i))
        if tasks:
            out[i] = b"," + to_json(tasks)[1:-1]
    return out


def _campaign_heads(key: str, close: bytes) -> tuple[bytes, bytes]:
    """A campaign action's JSON up to its dedupe key's value, comma-led: (not member,
    member), so a customer's ``member`` picks its head. ``close`` ends the previous
    campaign's action: a constant of its own would be one more fragment to join a row
    (the join's cost is per fragment)."""
    return close + _campaign_head(key, False), close + _campaign_head(key, True)


def _campaign_head(key: str, member: bool) -> bytes:
    action = {"kind": "campaign", "campaign": key, "member": member, "dedupe_key": ""}
    return b"," + to_json(action)[:-2]  # without the empty key's closing '"}'


def _refusals(dc: DecisionColumns) -> list[bytes]:
    """A refused override's task to its maker, comma-led, where there is one. Only a
    customer with a refusal reason can have one: the others' reasons are not made (most
    overrides are applied)."""
    out = [b""] * len(dc)
    overrides = dc.overrides or ()
    for i in dc.cells.values_of(override.REFUSAL_REASON):
        customer, o = dc.customers[i], overrides[i]
        if o is not None:
            reasons = dc.cells.reasons_of(i)
            tasks = override.refusal_tasks(
                customer.id, customer.owner_id, o, reasons, dc.policy, dc.as_of, dc.kinds
            )
            if tasks:
                out[i] = b"," + to_json(tasks)[1:-1]
    return out
