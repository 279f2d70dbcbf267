"""Whose CRM calls these are: a connector's count of every call, and each run's own.

A connector counts every call it makes (``ApiUsage``: the process's total, what the CRM's
allowance is measured against and what ``/metrics`` shows). One connector is shared by
the runs of a process: the webhook worker's passes, ``crmtier serve``'s scheduled sync
beside them, a worker's concurrent jobs. A run that took the difference of that total
before and after it would count every call the others made meanwhile. So a run opens a
``CallTally`` (``counting``) for the calls made on its behalf, in its own thread and in the
threads it hands work to (``carry``: the context goes with the work, ``contextvars``, PEP
567), and a connector counts each call with ``CallCounter.add``: in its total, and in
every tally open where the call is made.

A tally also keeps a run's allowances (``allow``): a kind of diagnostic read a connector
makes per refused record, capped per run so a mass refusal cannot turn into as many reads
of one tenant; ``run_tally`` is the tally of the run a call is made for.
"""

from __future__ import annotations

import contextvars
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class CallTally:
    """Calls by kind, counted from any number of threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: Counter[str] = Counter()
        self._allowed: Counter[str] = Counter()
        self._denied: Counter[str] = Counter()

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self._calls[kind] += n

    def __getitem__(self, kind: str) -> int:
        with self._lock:
            return self._calls[kind]

    def counts(self) -> dict[str, int]:
        """The kinds called at least once, and how often."""
        with self._lock:
            return {kind: n for kind, n in self._calls.items() if n}

    def total(self) -> int:
        with self._lock:
            return sum(self._calls.values())

    def allow(self, allowance: str, limit: int) -> bool:
        """Take one of the ``limit`` uses of ``allowance`` this tally's run has: False (and
        counted in ``denied``) once they are spent."""
        with self._lock:
            if self._allowed[allowance] < limit:
                self._allowed[allowance] += 1
                return True
            self._denied[allowance] += 1
            return False

    def denied(self, allowance: str) -> int:
        """How many uses of ``allowance`` were refused, the limit being spent."""
        with self._lock:
            return self._denied[allowance]


#: the tallies open in this context, outermost first
_open: contextvars.ContextVar[tuple[CallTally, ...]] = contextvars.ContextVar(
    "crmtier_call_tallies", default=()
)


class CallCounter(CallTally):
    """A connector's counter: every call it makes, each also counted in the tallies open
    where it is made (the run it was made for)."""

    def add(self, kind: str, n: int = 1) -> None:
        super().add(kind, n)
        for tally in _open.get():
            tally.add(kind, n)


def run_tally() -> CallTally | None:
    """The innermost tally open here: the run's (a retier unit's) the calls are made for;
    None outside any."""
    tallies = _open.get()
    return tallies[-1] if tallies else None


@contextmanager
def counting(tally: CallTally) -> Iterator[CallTally]:
    """Count in ``tally`` the calls made in this block, in this thread and in the work it
    hands to other threads with ``carry``."""
    token = _open.set((*_open.get(), tally))
    try:
        yield tally
    finally:
        _open.reset(token)


def carry(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` bound to a copy of this context, to be run once on another thread (an
    executor's): the calls it makes count in the tallies open here."""
    context = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return context.run(fn, *args, **kwargs)

    return run
