"""Group commit: many concurrent requests, one durable inbox transaction.

Each request must not be acked before its events are committed (docs/targets.md W5), and a commit
with ``synchronous=FULL`` costs an fsync. Committing one request at a time would cap the receiver
at the disk's fsync rate and block the event loop; instead a single writer thread takes
every request that queued up while the previous commit ran and commits them together, then
wakes each request with its own result. Under light load a batch is one request (no added
wait); under heavy load batches grow and the fsync cost is shared (W6).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.webhook_events import ChangeEvent
from sync.inbox import Inbox

_Job = tuple[Sequence[ChangeEvent], asyncio.Future[int]]


class GroupCommitter:
    def __init__(
        self,
        inbox: Inbox,
        *,
        max_batch: int = 256,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_added: Callable[[list[int]], None] | None = None,
    ) -> None:
        """``on_added`` is told the ids of the events each commit added, after the
        commit, on the event loop (the task engine's deferrer, ``deferrer.py``)."""
        self._inbox = inbox
        self._on_added = on_added
        self._max_batch = max_batch
        self._clock = clock
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def persist(self, events: Sequence[ChangeEvent]) -> int:
        """Commit ``events`` durably; return how many were new (not redeliveries)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="inbox-group-commit")
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        await self._queue.put((events, future))
        return await future

    async def close(self) -> None:
        """Stop after the requests already queued are committed."""
        await stop_after_queue(self._queue, self._task)
        self._task = None

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < self._max_batch and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            try:
                added = await asyncio.to_thread(
                    self._inbox.add_batch, [events for events, _ in jobs], self._clock()
                )
            except Exception as exc:  # the store is down: every waiting request gets a 503
                for _, future in jobs:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for (_, future), count in zip(jobs, added.counts, strict=True):
                    if not future.done():
                        future.set_result(count)
                if self._on_added is not None and added.ids:
                    self._on_added(added.ids)
            finally:
                for _ in jobs:
                    self._queue.task_done()


async def stop_after_queue(queue: asyncio.Queue[Any], task: asyncio.Task[None] | None) -> None:
    """Let ``task`` finish what ``queue`` holds, then cancel it (a background consumer's
    orderly stop: nothing queued is dropped)."""
    if task is None:
        return
    await queue.join()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
