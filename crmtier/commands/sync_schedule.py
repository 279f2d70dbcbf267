"""``crmtier sync --every``: the schedule loop, and the one line of a run that did not start.

Each tick makes its own engine (``crmtier.commands.sync.make_engine``), so its start checks
see what an admin changed since the last tick: a right revoked refuses that tick with the
one line ``crmtier sync`` prints, and the next tick checks again, as a CRM unreachable at a
tick's checks does. Only the first tick's refusal ends the schedule (exit 2 or 1): a
set-up that never worked is for the operator starting it to see, not to be retried.

A later tick that fails on the state store (``crmtier.store_failures``: a store it
cannot use as configured, say encrypted since under another key; or the database
unreachable) prints its one line too and the next tick tries again, so a database restart
is waited out; but ``STORE_FAILURES_MAX`` such ticks in a row end the schedule with that
failure's status (2, or 1 unreachable), since a store that stays unusable is for the
operator, and no run can be recorded meanwhile. A tick that gets past the store starts
the count again.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

import click

from connectors.errors import ConfigError, ConnectorError
from crmtier.store_failures import StoreFailure, failure

log = logging.getLogger("crmtier.sync")

EXIT_CONFIG, EXIT_RUNNING = 2, 5
#: Ticks failing on the state store in a row before the schedule ends (docs/operations.md,
#: "Scheduling and monitoring"): at 15-minute ticks, over an hour of a store unusable.
STORE_FAILURES_MAX = 5


class Stopper:
    """Ends the schedule loop between runs on SIGTERM/SIGINT (a run in progress finishes
    its current step; a kill mid-run is safe anyway)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def schedule(
    tick: Callable[[], int], seconds: float, store_failures_max: int = STORE_FAILURES_MAX
) -> int:
    """Run ``tick`` every ``seconds`` (measured start to start) until SIGTERM/SIGINT; the
    stream's lease in the state store keeps runs from overlapping even across processes
    and hosts. The exit status is the last tick's; the schedule also ends after
    ``store_failures_max`` ticks in a row failed on the state store."""
    stopper = Stopper()
    signal.signal(signal.SIGTERM, stopper)
    signal.signal(signal.SIGINT, stopper)
    code, first, store_failures = 0, True, 0
    while not stopper.event.is_set():
        started = time.monotonic()
        try:
            code = tick()
            store_failures = 0
        except ConnectorError as exc:  # ConfigError too: refused at its start checks
            if first:
                raise
            code, store_failures = refused(exc), 0
        except Exception as exc:
            failed = failure(exc)
            if failed is None or first:
                raise
            store_failures += 1
            code = store_failed(failed, store_failures, store_failures_max)
            if store_failures >= store_failures_max:
                return code
        first = False
        if code == EXIT_RUNNING:
            log.info("skipped a tick: another process holds the stream")
        stopper.event.wait(max(0.0, seconds - (time.monotonic() - started)))
    return code


def refused(exc: ConnectorError) -> int:
    """A run that did not start: its one line on stderr, and its exit status (2 for a
    configuration the CRM refuses, 1 for a CRM that could not be reached)."""
    if isinstance(exc, ConfigError):
        click.echo(f"crmtier sync: {exc}", err=True)
        return EXIT_CONFIG
    click.echo(f"crmtier sync: {type(exc).__name__}: {exc}", err=True)
    return 1


def store_failed(failed: StoreFailure, failures: int, most: int) -> int:
    """A tick the state store failed: its one line on stderr (what every command says of
    it, ``crmtier.store_failures``: the store named, never its password or SQL
    parameters), and its exit status (2 for a store unusable as configured, 1 for one
    that could not be reached)."""
    then = "giving up" if failures >= most else "retrying at the next tick"
    click.echo(
        f"crmtier sync: state store failed ({failures} of {most} ticks in a row; {then}): "
        f"{failed.reason}",
        err=True,
    )
    return failed.exit_code
