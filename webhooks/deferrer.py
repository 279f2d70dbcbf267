"""Hands committed webhook events to the task engine, off the ack path.

With ``[workers] engine = "procrastinate"`` the receiver's group commit (``committer.py``)
reports the ids of the events it added; this class gathers them and calls ``defer`` (one
job per ``batch_size`` events, ``sync/tasks/webhook_batch.py``) from a thread, so a slow
or failing queue never delays an ack: the events are already durable, and the engine's
periodic sweep gives a job to any event whose defer failed. Ids are gathered like the
in-process worker's micro-batch: until ``batch_size`` are waiting or the first of them has
waited ``window``, so a burst becomes full jobs (one CRM fetch and write per customer
each) and a lone event waits at most ``window``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from webhooks.committer import stop_after_queue

log = logging.getLogger(__name__)

Defer = Callable[[Sequence[int]], object]


class Deferrer:
    def __init__(self, defer: Defer, *, batch_size: int, window: float) -> None:
        self._defer = defer
        self._batch_size = batch_size
        self._window = window
        self._queue: asyncio.Queue[Sequence[int]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def offer(self, ids: Sequence[int]) -> None:
        """Queue committed event ids (from the event loop; never blocks)."""
        if not ids:
            return
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="task-deferrer")
        self._queue.put_nowait(ids)

    async def close(self) -> None:
        """Defer what is queued, then stop."""
        await stop_after_queue(self._queue, self._task)
        self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            taken = [await self._queue.get()]
            ids = list(taken[0])
            deadline = loop.time() + self._window
            while len(ids) < self._batch_size:
                try:
                    more = await asyncio.wait_for(self._queue.get(), deadline - loop.time())
                except TimeoutError:
                    break
                taken.append(more)
                ids.extend(more)
            try:
                await asyncio.to_thread(self._defer, ids)
            except Exception as exc:  # durable already: the sweep defers them later
                log.error(
                    "task engine: deferring %d events failed (%s); the sweep will",
                    len(ids),
                    type(exc).__name__,
                )
            finally:
                for _ in taken:
                    self._queue.task_done()
