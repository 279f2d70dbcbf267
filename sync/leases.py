"""How a lease in the state store knows its holder is alive: a heartbeat, and the holder's
process state where it runs on this host.

A lease row names its holder (host, pid) and an expiry. While the holder holds the lease, a
``Heartbeat`` thread moves the expiry forward every third of the lease's time to live, so a
holder busy in a long CRM call or a long run keeps it, and a holder that stopped renewing
(killed, frozen, its host gone) loses it at most one time to live after its last beat.

On the holder's own host the process table says more, at once: a process that is gone, or
a zombie (SIGKILLed and not yet reaped by its parent: ``os.kill(pid, 0)`` still succeeds on
it, but it will never run again), holds nothing. The state is read from ``/proc/<pid>/stat``
(proc(5), "The Linux man-pages project": field 3, ``state``; ``Z`` zombie, ``X`` dead).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

log = logging.getLogger(__name__)

#: process states (proc(5)) of a process that will never run again
_FINISHED_STATES = frozenset({"Z", "X", "x"})


def process_is_running(pid: int, proc: Path = Path("/proc")) -> bool:
    """False when process ``pid`` on this host is gone or a zombie; True when it exists or
    cannot be examined (another user's process: it is taken as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:  # no procfs here, or the process ended meanwhile: os.kill answered
        return True
    # "pid (comm) state ...": comm may itself hold spaces and parentheses
    fields = stat.rpartition(")")[2].split()
    return not fields or fields[0] not in _FINISHED_STATES


class Heartbeat:
    """Calls ``renew`` every ``every`` on a daemon thread until stopped; ``renew`` returns
    False when the lease is no longer ours (taken over after a missed beat), which ends
    the heartbeat with an error in the log."""

    def __init__(self, name: str, renew: Callable[[], bool], every: timedelta) -> None:
        self.name = name
        self._renew = renew
        self._every = every.total_seconds()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease:{name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                held = self._renew()
            except Exception as exc:  # the store is down: the next beat tries again
                log.warning("lease %s: renewal failed (%s)", self.name, type(exc).__name__)
                continue
            if not held:
                log.error("lease %s was lost: another process took it over", self.name)
                return
