"""A Bulk API 2.0 ingest job's wait and what its final state means, apart from the SDK
(``client.py`` makes the calls): the polls at waits the job's own progress sizes, and how
many of the rows sent it never processed.

References (Bulk API 2.0 and Bulk API Developer Guide): "Job States" (``JobComplete``,
``Failed`` and ``Aborted`` are final), "Get Information About an Ingest Job"
(``errorMessage`` says why a job failed), "Get Job Unprocessed Record Results"
(``unprocessedrecords/``: the rows a job never processed, "not the same as failed rows").

Two assumptions, not confirmed on a real org (none here; the sandbox is ours): that
``numberRecordsProcessed`` counts failed rows too, and that ``unprocessedrecords/``,
which the guide describes for failed and aborted jobs, also lists the rows a
``JobComplete`` job did not process. If either is wrong the list names fewer rows than
``unprocessed`` counts, and the client counts the whole job as not written
(``TransientError``): its rows are sent again in a new job (updates that set values, so
harmless), costing a job's calls, and a job with failed rows would never be taken as
written (its rows retried until the attempts run out). No row is counted written that
was not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from connectors.errors import TransientError

#: A job's states after which nothing more happens to it ("Job States").
BULK_FINAL = frozenset({"JobComplete", "Failed", "Aborted"})
#: The longest wait between two polls of a job's state, and for a job in all (the SDK's
#: own ``wait_for_job`` gives up after 24 hours too).
BULK_POLL_MAX_SECONDS = 30.0
BULK_JOB_TIMEOUT_SECONDS = 24 * 3600.0


def await_job(
    poll: Callable[[], Mapping[str, Any]],
    records: int,
    floor: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> Mapping[str, Any]:
    """Poll a closed job until it is final: first after ``floor`` seconds, then when its
    own progress says it will be done (``next_poll``). Salesforce's guide says only to
    check the state until it is ``JobComplete`` ("Process for Creating Bulk API 2.0
    Requests"); how long a job takes depends on the org (its triggers and flows), so the
    wait is measured from the job rather than guessed from its size. ``poll`` retries a
    failed read of the same job itself; a job not final after a day is given up."""
    started = clock()
    wait = floor
    while True:
        sleep(wait)
        job = poll()
        if job["state"] in BULK_FINAL:
            return job
        elapsed = clock() - started
        if elapsed > BULK_JOB_TIMEOUT_SECONDS:
            raise TransientError(f"Salesforce bulk job {job['state']} after {elapsed:.0f} s")
        done = int(job.get("numberRecordsProcessed") or 0)
        wait = next_poll(elapsed, done, records, floor)


def next_poll(elapsed: float, done: int, records: int, floor: float) -> float:
    """Seconds until the next poll of a job ``elapsed`` seconds into its wait with ``done``
    of its ``records`` processed: the time the rest takes at the rate so far (none done
    yet: as long again, a doubling), at least ``floor`` and a tenth of a second (never a
    busy loop), at most ``BULK_POLL_MAX_SECONDS``."""
    rest = elapsed * (records - done) / done if done else elapsed
    return min(BULK_POLL_MAX_SECONDS, max(floor, 0.1, rest))


def unprocessed(job: Mapping[str, Any], records: int) -> int:
    """How many of the ``records`` rows sent the complete ``job`` did not process (failed
    rows count as processed: they are read from ``failedResults/``)."""
    return max(0, records - int(job.get("numberRecordsProcessed") or 0))
