"""``sync.state.load_states`` reads through the driver's own SQL and each column's result
processing: what it returns must be what SQLAlchemy's select returned (the reference
below is that select, as ``load_states`` ran it), on both backends, with and without a
cipher, for customers with state of every shape, tasks and memberships made, in doubt and
removed, and ids the store has never seen."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sync import state
from sync.crypto import StoreCipher
from sync.schema import customers, side_effects
from sync.store import StateStore
from tests.sync.conftest import PG_URL, pg_schema
from tests.sync.test_sync_bulk_rows import EFFECTS, STATE_ROWS, STREAM, UPDATES

#: in doubt alone (a task, a membership), a task with no rule, and another stream's row
MORE_EFFECTS: list[dict[str, Any]] = [
    {"kind": "task", "key": "t2", "customer_id": "001B", "campaign": None, "rule": "kyc",
     "active": False, "in_doubt": True, "run_id": "r2"},
    {"kind": "membership", "key": "m2", "customer_id": "001C", "campaign": "c2", "rule": None,
     "active": False, "in_doubt": True, "run_id": "r2"},
    {"kind": "task", "key": "t3", "customer_id": "001C", "campaign": None, "rule": None,
     "active": True, "in_doubt": None, "run_id": "r2"},
    {"kind": "membership", "key": "m3", "customer_id": "001A", "campaign": "c3", "rule": None,
     "active": True, "in_doubt": False, "run_id": "r2"},
]  # fmt: skip
#: another stream's tasks and memberships of the same customer ids: never this stream's
OTHER_EFFECTS: list[dict[str, Any]] = [
    {"kind": "membership", "key": "m9", "customer_id": "001A", "campaign": "c9", "rule": None,
     "active": True, "in_doubt": None, "run_id": "r2"},
    {"kind": "task", "key": "t9", "customer_id": "001D", "campaign": None, "rule": "edd",
     "active": False, "in_doubt": True, "run_id": "r2"},
]  # fmt: skip
IDS = ["001D", "001A", "001Z", "001C", "001B", "001A"]  # one unknown, one twice


def _selected(conn: sa.Connection, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``load_states`` as SQLAlchemy's selects ran it, each state as its fields."""
    wanted = sorted(set(ids))
    rows = conn.execute(
        sa.select(*state._STATE_COLUMNS).where(
            customers.c.stream == STREAM, customers.c.customer_id.in_(wanted)
        )
    ).tuples()
    effect = side_effects.c
    effects = conn.execute(
        sa.select(
            effect.customer_id, effect.kind, effect.key, effect.campaign, effect.rule,
            effect.active,
        ).where(
            effect.stream == STREAM,
            effect.customer_id.in_(wanted),
            sa.or_(effect.active.is_(True), effect.in_doubt.is_(True)),
        )
    ).tuples()  # fmt: skip
    out: dict[str, dict[str, Any]] = {}
    for cid, pseudonym, tiers, fields, assessed, below, digest, pending, run, override in rows:
        out[cid] = {
            "customer_id": cid, "pseudonym": pseudonym, "tiers": tiers, "fields": fields,
            "assessed_at": state.parse_day(assessed), "below_floor_since": state.parse_day(below),
            "input_hash": digest, "pending": pending, "run_id": run, "override": override,
            "tasks": frozenset(), "memberships": {}, "task_rules": {}, "tasks_in_doubt": {},
            "memberships_in_doubt": {},
        }  # fmt: skip
    for cid, kind, key, campaign, rule, active in effects:
        held = out[cid]
        if not active:
            if kind == "membership":
                held["memberships_in_doubt"][campaign] = key
            elif rule:
                held["tasks_in_doubt"][key] = rule
        elif kind == "task":
            held["tasks"] = held["tasks"] | {key}
            if rule:
                held["task_rules"][key] = rule
        else:
            held["memberships"][campaign] = key
    return out


@pytest.mark.parametrize("chunk", [500, 2], ids=["one-chunk", "chunks-of-2"])
@pytest.mark.parametrize("encrypted", [True, False], ids=["cipher", "no-cipher"])
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_states_read_as_sqlalchemys_select_read_them(
    tmp_path: Path, backend: str, encrypted: bool, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 2 split the 5 ids three ways: every chunk's rows and effects are kept,
    the last, shorter one with as many markers as ids."""
    monkeypatch.setattr(state, "_CHUNK", chunk)
    with ExitStack() as stack:
        url = f"sqlite:///{tmp_path / 's.db'}"
        if backend == "postgres":
            url = f"{PG_URL}?options=-csearch_path%3D{stack.enter_context(pg_schema())}"
        store = StateStore.open(url, cipher=StoreCipher(b"k" * 32) if encrypted else None)
        stack.callback(store.close)
        with store.begin() as conn:
            state.save_states(conn, STREAM, STATE_ROWS)
            state.save_states(conn, STREAM, UPDATES)
            state.save_states(conn, "other", STATE_ROWS[:1])
            state.save_side_effects(conn, STREAM, [{**e, "in_doubt": None} for e in EFFECTS])
            state.save_side_effects(conn, STREAM, MORE_EFFECTS)
            state.save_side_effects(conn, "other", [*MORE_EFFECTS[:1], *OTHER_EFFECTS])
            conn.execute(  # a decision with its fields and an override row, as runs store them
                customers.update()
                .where(customers.c.customer_id == "001A")
                .values(fields={"Tier__c": "private", "Score__c": 91.5}, override={"tier": "x"})
            )
        with store.begin() as conn:
            loaded = state.load_states(conn, STREAM, IDS)
            expected = _selected(conn, IDS)
    assert {cid: vars(s) for cid, s in loaded.items()} == expected
    assert sorted(loaded) == ["001A", "001B", "001C", "001D"]
    assert loaded["001A"].fields == {"Tier__c": "private", "Score__c": 91.5}
    assert loaded["001A"].memberships == {"c3": "m3"}
    assert loaded["001B"].tasks_in_doubt == {"t2": "kyc"}
    assert loaded["001D"].tasks_in_doubt == {}  # another stream's doubt is not this one's
    assert loaded["001C"].memberships_in_doubt == {"c2": "m2"}
    assert loaded["001C"].pending is None and loaded["001C"].run_id == "r2"
