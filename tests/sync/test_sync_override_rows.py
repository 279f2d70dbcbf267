"""Every tier override the sync decides on leaves its ``override`` audit row, once per new
outcome (docs/overrides.md, "The audit trail"), on each CRM's sandbox over real HTTPS.

A refused override (self-approved, no checker, expired, its FXiaoke approval unread) leaves
the tiers as they were, and so does an applied service-tier override: no ``tier_change``
row, yet the examiner must find who tried to override the customer and what crmtier did.
Each case is one customer of the same book; the table says which override rows it must
have, in order, after its override is first seen, after the same override is seen again
(an incremental run and a full one), and after a last change (a refused one proposed
again and approved by a checker; an applied one removed). Before, only a decision that
moved the tiers wrote the row (and wrote it again with every later tier change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from connectors.sandbox.base import Sandbox
from connectors.sandbox.fxiaoke_flow import FX_INSTANCES
from connectors.sandbox.override_trail import approve_override, propose_override
from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync import schema
from sync.engine import RunOptions
from sync.store import StateStore
from tests.sync.conftest import Harness, crm_harness
from tests.sync.test_sync_override import _liftable
from tiering_core.privacy import pseudonym

AS_OF = date(2026, 6, 30)
DAY = AS_OF - timedelta(days=1)
EXPIRES = AS_OF + timedelta(days=30)
#: (old outcome, new outcome, new cause) of an override row; None: no override (ended)
Row = tuple[str | None, str | None, str | None]
#: what a case does to its customer in the CRM: (sandbox, customer, maker, checker)
Act = Callable[[Sandbox, str, str, str], None]


def _at(day: date, hour: int) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def _self_approved(sb: Sandbox, cid: str, maker: str, _checker: str) -> None:
    propose_override(sb, cid, user=maker, at=_at(DAY, 9), value_tier="private", expires=EXPIRES)
    approve_override(sb, cid, user=maker, at=_at(DAY, 10))


def _no_checker(sb: Sandbox, cid: str, maker: str, _checker: str) -> None:
    """Approved in the CRM, but its audit shows no approval after the proposal."""
    propose_override(sb, cid, user=maker, at=_at(DAY, 9), value_tier="private", expires=EXPIRES)
    sb.edit_customer(cid, {"override.approved": True})


def _expired(sb: Sandbox, cid: str, maker: str, checker: str) -> None:
    early = AS_OF - timedelta(days=40)
    ended = AS_OF - timedelta(days=5)
    propose_override(sb, cid, user=maker, at=_at(early, 9), value_tier="private", expires=ended)
    approve_override(sb, cid, user=checker, at=_at(early, 11))


def _unread(sb: Sandbox, cid: str, maker: str, checker: str) -> None:
    """FXiaoke lists the approval instance without its ``instanceId`` (a null field left
    out of the listing), so its details cannot be read (tests/sync/
    test_sync_audit_unread.py)."""
    _applied_value(sb, cid, maker, checker)
    store = sb.store  # type: ignore[attr-defined]
    for rid, at, data in list(store.scan(FX_INSTANCES)):
        if data["dataId"] == cid:
            store.insert_many(
                FX_INSTANCES, [(rid, at, {k: v for k, v in data.items() if k != "instanceId"})]
            )


def _applied_value(sb: Sandbox, cid: str, maker: str, checker: str) -> None:
    propose_override(sb, cid, user=maker, at=_at(DAY, 9), value_tier="private", expires=EXPIRES)
    approve_override(sb, cid, user=checker, at=_at(DAY, 11))


def _applied_service(sb: Sandbox, cid: str, maker: str, checker: str) -> None:
    propose_override(sb, cid, user=maker, at=_at(DAY, 9), service_tier="private", expires=EXPIRES)
    approve_override(sb, cid, user=checker, at=_at(DAY, 11))


def _proposed_again(sb: Sandbox, cid: str, maker: str, checker: str) -> None:
    """A new proposal, approved by a checker (on FXiaoke a new approval flow instance)."""
    propose_override(sb, cid, user=maker, at=_at(AS_OF, 8), value_tier="private", expires=EXPIRES)
    approve_override(sb, cid, user=checker, at=_at(AS_OF, 9))


def _removed(sb: Sandbox, cid: str, maker: str, _checker: str) -> None:
    propose_override(sb, cid, user=maker, at=_at(AS_OF, 8))  # every override field cleared


@dataclass(frozen=True)
class Case:
    name: str
    first: Act
    rows: tuple[Row, ...]  # once the override is first seen, and after it is seen again
    tiers_move: bool  # whether the first decision moves the tiers (a tier_change row)
    then: Act | None = None
    final: tuple[Row, ...] = ()  # after ``then``: the rows added
    crms: tuple[str, ...] = ("salesforce", "zoho", "fxiaoke")


REFUSED_SELF = (None, "refused", "self_approved")
APPLIED = (None, "applied", None)
CASES = (
    Case("refused self-approved", _self_approved, (REFUSED_SELF,), False),
    Case("refused no checker", _no_checker, ((None, "refused", "no_checker"),), False),
    Case("refused expired", _expired, ((None, "refused", "expired"),), False),
    Case(
        "refused audit unread",
        _unread,
        ((None, "refused", "no_checker"),),
        False,
        crms=("fxiaoke",),
    ),
    Case("applied, tiers unchanged", _applied_service, (APPLIED,), False),
    Case("applied, tiers changed", _applied_value, (APPLIED,), True),
    Case(
        "refused, then proposed again and approved by a checker",
        _self_approved,
        (REFUSED_SELF,),
        False,
        _proposed_again,
        (("refused", "applied", None),),
    ),
    Case(
        "applied, then removed",
        _applied_value,
        (APPLIED,),
        True,
        _removed,
        (("applied", None, None),),
    ),
)


@pytest.fixture(params=["salesforce", "zoho", "fxiaoke"])
def harness(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Harness]:
    with crm_harness(request.param, tmp_path / request.param, monkeypatch, 60) as h:
        yield h


def _run(h: Harness, *, full: bool = False) -> None:
    with open_engine(load_config(h.config), as_of=AS_OF) as engine:
        report = engine.run(RunOptions(as_of=AS_OF, full=full))
    assert report.status == "succeeded", report.error


def _trail(h: Harness, ids: list[str]) -> dict[str, list[tuple[str, Row | None]]]:
    """Each customer's override and tier_change rows in chain order: an override row as
    (old outcome, new outcome, new cause), a tier_change row as None."""
    store = StateStore.open(h.state_url())
    try:
        key = store.pseudonym_key()
        of = {pseudonym(cid, key): cid for cid in ids}
        a = schema.audit
        with store.begin() as conn:
            rows = conn.execute(
                sa.select(a.c.customer_ref, a.c.event, a.c.old, a.c.new)
                .where(a.c.event.in_(("override", "tier_change")))
                .order_by(a.c.seq)
            ).all()
    finally:
        store.close()
    out: dict[str, list[tuple[str, Row | None]]] = {cid: [] for cid in ids}
    for ref, event, old, new in rows:
        if ref in of:
            row = None
            if event == "override":
                row = (
                    old and old["outcome"],
                    new and new["outcome"],
                    new and new["cause"],
                )
            out[of[ref]].append((event, row))
    return out


def _overrides(trail: list[tuple[str, Row | None]]) -> list[Row]:
    return [row for event, row in trail if event == "override" and row is not None]


def test_each_override_outcome_gets_its_row_once(harness: Harness) -> None:
    h, sb = harness, harness.sandbox
    _run(h)
    liftable, (maker, checker, *_) = _liftable(h)
    cases = [c for c in CASES if h.crm in c.crms]
    assert len(liftable) >= len(cases), "the book has a liftable customer per case"
    mine = dict(zip((c.name for c in cases), liftable, strict=False))
    before = _trail(h, list(mine.values()))
    for case in cases:
        case.first(sb, mine[case.name], maker, checker)

    _run(h)
    first = _trail(h, list(mine.values()))
    added = {c.name: first[mine[c.name]][len(before[mine[c.name]]) :] for c in cases}
    assert {name: _overrides(rows) for name, rows in added.items()} == {
        c.name: list(c.rows) for c in cases
    }
    assert {name: any(e == "tier_change" for e, _ in rows) for name, rows in added.items()} == {
        c.name: c.tiers_move for c in cases
    }

    _run(h)  # the same overrides seen again: no new row
    _run(h, full=True)
    again = _trail(h, list(mine.values()))
    assert {c: _overrides(t) for c, t in again.items()} == {
        c: _overrides(t) for c, t in first.items()
    }

    for case in cases:
        if case.then is not None:
            case.then(sb, mine[case.name], maker, checker)
    _run(h)
    final = _trail(h, list(mine.values()))
    assert {c.name: _overrides(final[mine[c.name]]) for c in cases} == {
        c.name: [*_overrides(first[mine[c.name]]), *c.final] for c in cases
    }
    assert h.audit_verify().returncode == 0


def test_the_row_names_maker_checker_and_what_was_asked(harness: Harness) -> None:
    """A refusal's row says what was asked, by whom, and the cause; the row's value is
    what the store keeps as the customer's last (``customers.override``)."""
    h, sb = harness, harness.sandbox
    _run(h)
    (cid, *_), (maker, *_) = _liftable(h)
    _self_approved(sb, cid, maker, maker)
    _run(h)
    store = StateStore.open(h.state_url())
    try:
        ref = pseudonym(cid, store.pseudonym_key())
        a, c = schema.audit, schema.customers
        with store.begin() as conn:
            (new,) = conn.execute(
                sa.select(a.c.new).where(a.c.customer_ref == ref, a.c.event == "override")
            ).scalars()
            kept = conn.execute(sa.select(c.c.override).where(c.c.customer_id == cid)).scalar()
    finally:
        store.close()
    assert kept == new
    assert (new["outcome"], new["cause"], new["maker"], new["checker"]) == (
        "refused",
        "self_approved",
        maker,
        maker,
    )
    assert (new["value_tier"], new["expires"]) == ("private", EXPIRES.isoformat())
    assert new["proposed_at"] == _at(DAY, 9).isoformat()
    assert "reason" not in new  # only whether one was given: it may name the customer
