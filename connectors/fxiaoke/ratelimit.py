"""Client-side sliding-window limiter: at most N calls per window, per endpoint.

FXiaoke allows 100 calls / 20 s per interface and answers 14001 beyond it; hitting that
wastes calls and counts against the daily quota, so the connector throttles itself.

The guarantee is exact, not statistical: a slot is reserved when a call starts and its
timestamp is moved to when the call *ends*. A new call may start only once the oldest of
the last N calls ended more than a window ago, and in-flight calls are never evicted, so
however long the network takes, the server sees any N+1 consecutive calls of an endpoint
spread over more than one window.

The clock and the sleep are injectable so unit tests run in simulated time.

This is the in-process limiter of the embedded store's one worker; workers sharing a
PostgreSQL store take the same slots, with the same guarantee, from the store instead
(``sync/shared_limits.py``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class _Slot:
    at: float
    done: bool = False


@dataclass
class _Window:
    slots: deque[_Slot] = field(default_factory=deque)


class SlidingWindowLimiter:
    def __init__(
        self,
        max_calls: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if max_calls < 1 or window <= 0:
            raise ValueError("rate limit: max_calls must be >= 1 and window > 0")
        self.max_calls = max_calls
        self.window = window
        self._clock = clock
        self._sleep = sleep
        self._cond = threading.Condition()
        self._windows: dict[str, _Window] = {}
        self.waits = 0  # how often a call had to wait for a slot (bench and test figure)

    @contextmanager
    def slot(self, endpoint: str) -> Iterator[None]:
        """Hold one call slot of ``endpoint`` for the duration of the call."""
        reserved = self._acquire(endpoint)
        try:
            yield
        finally:
            with self._cond:
                reserved.at = self._clock()
                reserved.done = True
                self._cond.notify_all()

    def _acquire(self, endpoint: str) -> _Slot:
        with self._cond:
            win = self._windows.setdefault(endpoint, _Window())
            while True:
                now = self._clock()
                while win.slots and win.slots[0].done and win.slots[0].at < now - self.window:
                    win.slots.popleft()
                if len(win.slots) < self.max_calls:
                    reserved = _Slot(now)
                    win.slots.append(reserved)
                    return reserved
                oldest = win.slots[0]
                # The oldest slot frees a window after it ended (or when an in-flight call
                # ends and is then a window old): wait for that, or for a notification.
                wait = (oldest.at + self.window - now) if oldest.done else self.window
                wait = max(wait, 1e-3)
                self.waits += 1
                if self._sleep is not None:
                    self._cond.release()
                    try:
                        self._sleep(wait)
                    finally:
                        self._cond.acquire()
                else:
                    self._cond.wait(timeout=wait)
