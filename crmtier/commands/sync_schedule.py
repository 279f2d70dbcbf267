"""``crmtier sync --every``: the schedule loop, and the one line of a run that did not start.

Each tick makes its own engine (``crmtier.commands.sync.make_engine``), so its start checks
see what an admin changed since the last tick: a right revoked refuses that tick with the
one line ``crmtier sync`` prints, and the next tick checks again, as a CRM unreachable at a
tick's checks does. Only the first tick's refusal ends the schedule (exit 2 or 1): a
set-up that never worked is for the operator starting it to see, not to be retried.
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

log = logging.getLogger("crmtier.sync")

EXIT_CONFIG, EXIT_RUNNING = 2, 5


class Stopper:
    """Ends the schedule loop between runs on SIGTERM/SIGINT (a run in progress finishes
    its current step; a kill mid-run is safe anyway)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()


def schedule(tick: Callable[[], int], seconds: float) -> int:
    """Run ``tick`` every ``seconds`` (measured start to start) until SIGTERM/SIGINT; the
    stream's lease in the state store keeps runs from overlapping even across processes
    and hosts. The exit status is the last tick's."""
    stopper = Stopper()
    signal.signal(signal.SIGTERM, stopper)
    signal.signal(signal.SIGINT, stopper)
    code, first = 0, True
    while not stopper.event.is_set():
        started = time.monotonic()
        try:
            code = tick()
        except ConnectorError as exc:  # ConfigError too: refused at its start checks
            if first:
                raise
            code = refused(exc)
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
