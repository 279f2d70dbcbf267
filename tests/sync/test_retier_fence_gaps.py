"""The fence of a re-tier's page units (``retier_units.attempt``), where it had gaps.

* A failed ownership check (``UnitRunner._owns_unit``: its own database error) before a
  write call: the call never left. It was counted as sent (the write tally, the
  minimum-calls figure) and failed the unit's writing as a failed call would, the calls
  after it still going out. Now it is withdrawn as unsent (``Unsent``): the attempt sends
  nothing more, its items stay pending, exact, for the run's last drain.
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from sync import retier_worker, schema
from sync.engine import RunOptions
from tests.sync.test_retier import (  # noqa: F401  (``stores`` is a fixture)
    AS_OF,
    Book,
    StoreFactory,
    engine_on,
    same_report,
    spread_run,
    stored,
    stores,
)


class CheckFailsOnce:
    """The first ownership check of any unit's attempt raises a database error (the
    store unreachable for a moment); how many checks ran after it on that attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lock = threading.Lock()
        self.failed_on: object = None
        self.after = 0
        owns = retier_worker.UnitRunner._owns_unit

        def flaky(runner: retier_worker.UnitRunner) -> bool:
            with self.lock:
                if self.failed_on is None:
                    self.failed_on = runner
                    raise sa.exc.OperationalError("SELECT", {}, Exception("connection lost"))
                if self.failed_on is runner:
                    self.after += 1
            return owns(runner)

        monkeypatch.setattr(retier_worker.UnitRunner, "_owns_unit", flaky)


def test_a_failed_ownership_check_sends_nothing_and_the_run_ends_as_one_process_does(
    stores: tuple[StoreFactory, StoreFactory], monkeypatch: pytest.MonkeyPatch
) -> None:
    one_book, spread_book = Book(420), Book(420)
    one_store, spread_store = stores[0](), stores[1]()
    check = CheckFailsOnce(monkeypatch)
    options = RunOptions(full=True, as_of=AS_OF)
    one = engine_on(one_store, one_book).run(options)
    spread = spread_run(spread_store, spread_book, stores[1], workers=2)
    assert check.failed_on is not None
    assert check.after == 0  # the attempt sent nothing more once a check had failed
    # the call never left: not counted sent, not in doubt; the run's last drain sent its
    # items as the run's own, and everything ends where one process leaves it
    same_report(one, spread)
    assert spread_book.state() == one_book.state()
    assert stored(spread_store) == stored(one_store)
    with spread_store.begin() as conn:
        unanswered = conn.execute(
            sa.select(sa.func.count()).where(schema.outbox.c.unanswered.is_(True))
        ).scalar()
    assert unanswered == 0
