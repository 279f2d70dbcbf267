"""The write pool's look for full batches between pages (``WritePool._ready_batches``):
it counts the queued items of each kind first and looks no further when no kind has a
full batch; that shortcut must never miss one, whatever the mix of kinds and their batch
sizes (a CRM's bulk path collects a run's field updates in jobs far larger than a call)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from types import SimpleNamespace
from typing import cast

from hypothesis import example, given
from hypothesis import strategies as st

from connectors.contract import Connector, WriteKind
from sync.maybe_made import MaybeMade
from sync.outbox import OutboxItem
from sync.settings import SyncSettings
from sync.writepool import WritePool
from tests.sync.test_write_pipeline import BATCH, PagedCrm

KINDS: tuple[WriteKind, ...] = ("field_update", "task", "membership", "task_close")
#: a bulk path whose jobs are five calls' worth of field updates
BULK = replace(PagedCrm.capabilities, bulk_threshold=3 * BATCH, bulk_batch=5 * BATCH)


@given(
    counts=st.lists(st.integers(0, 3 * BULK.bulk_job), min_size=4, max_size=4),
    bulk=st.booleans(),
)
@example(counts=[BATCH - 1, BATCH, 1, 0], bulk=False)  # one kind exactly full, no more
@example(counts=[BULK.bulk_job, BATCH - 1, 0, 1], bulk=True)  # a job exactly full
def test_every_full_batch_of_every_kind_is_found(counts: list[int], bulk: bool) -> None:
    caps = BULK if bulk else PagedCrm.capabilities
    connector = cast(Connector, SimpleNamespace(capabilities=caps))
    pool = WritePool(
        connector,
        SyncSettings(),
        holding=bool,
        record=lambda calls: [],
        after_record=bool,
        maybe_made=MaybeMade("run-1"),
    )
    try:
        ids = iter(range(1, 1 + sum(counts)))
        for kind, count in zip(KINDS, counts, strict=True):
            for n in range(count):
                item_id = next(ids)
                pool.queue[item_id] = OutboxItem(
                    item_id, f"C{item_id}", kind, f"{kind}:{n}", {}, 0, "run-1", "sync"
                )
        found = Counter(batch[0].kind for batch in pool._ready_batches(final=False))
    finally:
        pool.pool.shutdown()
    size = {kind: pool.batch for kind in KINDS}
    if bulk:
        size["field_update"] = caps.bulk_job
    expected = {kind: count // size[kind] for kind, count in zip(KINDS, counts, strict=True)}
    assert found == Counter({kind: n for kind, n in expected.items() if n})
