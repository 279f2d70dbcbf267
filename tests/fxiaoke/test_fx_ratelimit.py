"""The client-side limiter in simulated time, then with real threads on a short window."""

from __future__ import annotations

import threading
import time
from bisect import bisect_right
from concurrent.futures import ThreadPoolExecutor

import pytest

from connectors.fxiaoke.ratelimit import SlidingWindowLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def max_in_window(times: list[float], window: float) -> int:
    """Most call starts within any closed window of ``window`` seconds."""
    ordered = sorted(times)
    return max((bisect_right(ordered, t + window) - i for i, t in enumerate(ordered)), default=0)


def test_a_full_window_waits_until_the_oldest_call_ended_a_window_ago() -> None:
    t = FakeTime()
    limiter = SlidingWindowLimiter(100, 20.0, clock=t.clock, sleep=t.sleep)
    starts = []
    for _ in range(250):
        with limiter.slot("/cgi/crm/v2/data/update"):
            starts.append(t.now)
            t.now += 0.01  # each call takes 10 ms
    assert max_in_window(starts, 20.0) == 100
    assert starts[100] > starts[0] + 0.01 + 20.0  # after the first call *ended* + window
    assert limiter.waits >= 2
    assert t.now - starts[0] < 2 * 20.0 + 5  # and no longer than needed


def test_endpoints_have_separate_windows() -> None:
    t = FakeTime()
    limiter = SlidingWindowLimiter(2, 20.0, clock=t.clock, sleep=t.sleep)
    for path in ("/query", "/query", "/update", "/update"):
        with limiter.slot(path):
            pass
    assert t.sleeps == []
    with limiter.slot("/query"):
        pass
    assert t.sleeps and t.now > 1000.0 + 20.0


def test_a_call_still_in_flight_is_never_evicted() -> None:
    t = FakeTime()
    held: list[object] = []

    def sleep(seconds: float) -> None:
        t.sleeps.append(seconds)
        if len(t.sleeps) == 1:
            held[0].__exit__(None, None, None)  # type: ignore[attr-defined]  # the slow call returns
        t.now += seconds

    limiter = SlidingWindowLimiter(1, 1.0, clock=t.clock, sleep=sleep)
    slow = limiter.slot("/x")
    slow.__enter__()
    held.append(slow)
    t.now += 5.0  # far past the window, but the first call has not returned yet
    with limiter.slot("/x"):
        started = t.now
    assert t.sleeps, "the second call must wait for the first to return"
    assert started > 1005.0 + 1.0  # a full window after the slow call *ended*


@pytest.mark.parametrize("bad", [(0, 1.0), (1, 0.0)])
def test_rejects_a_meaningless_limit(bad: tuple[int, float]) -> None:
    with pytest.raises(ValueError, match="rate limit"):
        SlidingWindowLimiter(*bad)


def test_threads_share_the_window_exactly() -> None:
    limiter = SlidingWindowLimiter(20, 0.3)
    ends: list[float] = []
    starts: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        with limiter.slot("/update"):
            start = time.monotonic()
            time.sleep(0.002)
            with lock:
                starts.append(start)
                ends.append(time.monotonic())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: call(), range(70)))
    starts.sort()
    assert len(starts) == 70
    assert max_in_window(starts, 0.3) <= 20
