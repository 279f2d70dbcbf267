"""The FXiaoke sandbox's call limits as the routes enforce them (fxiaoke_routes.py): calls
per interface in a sliding window (100 calls / 20 s on a real tenant, 10 a minute on the
token endpoints) and the optional daily quota a tenant buys (30002 once spent).

Apart from ``fxiaoke.py`` so the sandbox's lifecycle and protocol do not also keep the
counters; a reset of the sandbox clears both.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class CallWindows:
    """Calls per kind in a sliding window, the way the sandbox enforces FXiaoke's limits."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._times: dict[str, deque[float]] = {}

    def admit(self, kind: str, limit: int, window: float) -> bool:
        now = time.monotonic()
        with self._lock:
            times = self._times.setdefault(kind, deque())
            while times and now - times[0] > window:
                times.popleft()
            times.append(now)
            return len(times) <= limit

    def clear(self) -> None:
        with self._lock:
            self._times.clear()


class DailyQuota:
    """The day's call quota: ``calls`` is the day's limit (None: the tenant bought no
    quota, every call admitted); ``spend`` counts each call against it."""

    def __init__(self, calls: int | None) -> None:
        self.calls = calls
        self._used = 0
        self._lock = threading.Lock()

    def spend(self) -> bool:
        """Count one call; False once the day's calls are spent."""
        with self._lock:
            self._used += 1
            return self.calls is None or self._used <= self.calls

    def clear(self) -> None:
        with self._lock:
            self._used = 0
