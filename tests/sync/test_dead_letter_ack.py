"""``crmtier sync --ack``: an operator's acknowledgement of dead letters by id. A letter
named that is no longer open says what closed it (a customer's newer decision that wrote
nothing supersedes its letters, ``superseded``), and an id the stream has no letter of is
an error, never a silent "acknowledged 0"."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy as sa

from crmtier.commands.sync_dead_letters import dead_letters
from crmtier.config import CrmtierConfig
from sync import outbox, schema
from sync.outbox import OutboxItem
from sync.store import StateStore

STREAM = "s"


class _Config(SimpleNamespace):
    """What the command reads of a configuration: the stream and its state store."""

    store: StateStore
    stream: str

    def open_state_store(self) -> Any:
        return SimpleNamespace(begin=self.store.begin, close=lambda: None)


def _letters(store: StateStore) -> list[int]:
    """Two open letters, the second then superseded by its customer's newer decision."""
    with store.begin() as conn:
        for cid in ("C1", "C2"):
            item = OutboxItem(1, cid, "task", f"{cid}:k", {"rule": "upgrade_call"}, 1, "r", "sync")
            outbox.dead_letter(
                conn, STREAM, item, pseudonym=f"p-{cid}", error_code="TRANSIENT",
                reason="timed out", run_id="r",
            )  # fmt: skip
        outbox.resolve_dead_letters(conn, STREAM, ["C2"], "superseded")
        d = schema.dead_letters
        return list(conn.execute(sa.select(d.c.id).order_by(d.c.id)).scalars())


def _statuses(store: StateStore) -> list[str]:
    with store.begin() as conn:
        d = schema.dead_letters
        return list(conn.execute(sa.select(d.c.status).order_by(d.c.id)).scalars())


def test_ack_names_the_letters_it_could_not_acknowledge(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    open_id, superseded_id = _letters(store)
    config = cast(CrmtierConfig, _Config(store=store, stream=STREAM))
    code = dead_letters(config, (str(open_id), str(superseded_id), "999999"), None, "table")
    out, err = capsys.readouterr()
    assert code == 1  # an id with no letter: most likely a typo, the operator must see it
    assert out.splitlines() == [
        "acknowledged 1 dead letter(s)",
        f"dead letter {superseded_id}: not open, already superseded",
    ]
    assert err.strip() == f"dead letter 999999: no such letter in {STREAM}"
    assert _statuses(store) == ["acked", "superseded"]
    assert dead_letters(config, (str(open_id),), None, "table") == 0  # closed: said, no error
    again = capsys.readouterr().out.splitlines()
    assert again[1] == f"dead letter {open_id}: not open, already acked"


def test_ack_refuses_what_is_not_an_id(
    store: StateStore, capsys: pytest.CaptureFixture[str]
) -> None:
    _letters(store)
    config = cast(CrmtierConfig, _Config(store=store, stream=STREAM))
    assert dead_letters(config, ("17x",), None, "table") == 2
    assert "--ack: takes dead letter ids or 'all'" in capsys.readouterr().err
    assert _statuses(store) == ["open", "superseded"]
