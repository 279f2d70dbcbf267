"""CPU of recording the CRM's answers alone (``Recorder.record_results``, issue 18 item 3).

A first sync's write call answers for up to a bulk job of customers at once, and the run
records each answer in one transaction: the outbox item ``done``, the customer's decision
promoted to its committed state, its ``tier_change`` audit row (and for a task or a
membership its ``side_effects`` row and audit row). Here, on a SQLite store in a temporary
directory, N customers' decisions are parked as a page's commit parks them (pending state
rows, outbox items, the run's pseudonyms already made), then one call's answers are timed:

  fields       one field update a customer, all answered in one call (a bulk job's answer)
  effects      a field update, a task and a membership a customer (a full first sync),
               each kind answered in its own call, the three calls recorded together
  pool         the write pool's own bookkeeping (``sync.writepool``) for 20,000 customers'
               field updates queued a page of 2,000 at a time, as a run queues them, and
               sent in bulk jobs of 10,000 to a CRM that answers at once; the answers go
               to a recorder that records nothing (the recording is timed above)

Figures are CPU time (``time.process_time``) per customer of ``record_results`` alone, best
of ``--repeat`` passes (each on a fresh store), with the cyclic collector paused as
``crmtier sync`` nearly does. The checkout imported is printed: with ``PYTHONPATH`` set,
its entries come first (an A/B pair runs this file against another checkout).
Run: python bench/record.py [--customers 2000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on the path and bench/sync.py would shadow the sync
# package: drop it, and import the project from the repository root unless PYTHONPATH
# names the checkout to measure.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
if not os.environ.get("PYTHONPATH"):
    sys.path.insert(0, str(_HERE.parent))

import sync  # noqa: E402
from connectors.contract import Capabilities, WritePlan, WriteResult  # noqa: E402
from sync import outbox  # noqa: E402
from sync.maybe_made import MaybeMade  # noqa: E402
from sync.outbox import NewItem, OutboxItem  # noqa: E402
from sync.recorder import Answered, Recorder  # noqa: E402
from sync.records import Decision, PendingDecision  # noqa: E402
from sync.settings import SyncSettings  # noqa: E402
from sync.state import save_states  # noqa: E402
from sync.store import StateStore  # noqa: E402
from sync.writepool import WritePool  # noqa: E402

STREAM = "bench:Customer"
RUN = "run-bench"
DAY = date(2026, 12, 7)
TIERS = ("mass", "affluent", "wealth", "private")


def _pending(i: int) -> PendingDecision:
    tier = TIERS[i % len(TIERS)]
    tiers = {
        "value_tier": tier,
        "needs_tier": "standard",
        "credit_risk": "low",
        "aml_risk": "low",
        "ops_risk": "low",
    }
    return PendingDecision(
        tiers=tiers,
        fields={"value_tier": tier, "needs_tier": "standard", "tier_reason": f"AUM band {i % 7}"},
        assessed_at=DAY,
        below_floor_since=None,
        reason_codes=("VALUE_AUM", "NEEDS_STANDARD"),
        policy_version="p1",
        input_hash=f"{i:064x}",
        run_id=RUN,
        trigger="sync",
        source_event_id=None,
    )


def _new_items(cid: str, effects: bool) -> list[NewItem]:
    items = [NewItem(cid, "field_update", cid, {"value_tier": "wealth"})]
    if effects:
        task = {"rule": "upgrade_call", "priority": "high", "due": "2026-12-14", "queue": "rm"}
        items.append(NewItem(cid, "task", f"{cid}:upgrade_call", task))
        member = {"campaign": "vip_events", "member": True}
        items.append(NewItem(cid, "membership", f"{cid}:vip_events", member))
    return items


def _parked(
    tmp: Path, customers: int, effects: bool
) -> tuple[StateStore, Recorder, list[Answered]]:
    """A store and a recorder with ``customers`` decisions parked, and their answers."""
    store = StateStore.open(f"sqlite:///{tmp / 'state.db'}")
    decisions: dict[str, Decision] = {}
    rec = Recorder(
        store,
        STREAM,
        RUN,
        key=b"k" * 32,
        audit_keys=store.audit_keys,
        trigger="sync",
        actor="bench",
        retry_attempts=3,
        decisions=decisions,
        maybe_made=MaybeMade(RUN),
    )
    ids = [f"001{i:012d}" for i in range(customers)]
    new = [item for cid in ids for item in _new_items(cid, effects)]
    pendings = [_pending(i) for i in range(customers)]
    with store.begin() as conn:
        items = outbox.enqueue(conn, STREAM, RUN, new, trigger="sync")
        save_states(
            conn, STREAM, [rec.pending_row(c, p) for c, p in zip(ids, pendings, strict=True)]
        )
    mine: dict[str, set[int]] = {}
    for item in items:
        mine.setdefault(item.customer_id, set()).add(item.id)
    for cid, pending in zip(ids, pendings, strict=True):
        decisions[cid] = Decision(cid, pending, mine[cid], this_run=True, base=None)
    by_kind: dict[str, list[Any]] = {}
    for item in items:
        by_kind.setdefault(item.kind, []).append(item)
    calls: list[Answered] = [
        (kind_items, [WriteResult(i.kind, i.key, True) for i in kind_items])
        for kind_items in by_kind.values()
    ]
    return store, rec, calls


def _best(repeat: int, customers: int, effects: bool, where: str | None) -> float:
    best = float("inf")
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(dir=where) as tmp:
            store, rec, calls = _parked(Path(tmp), customers, effects)
            gc.collect()
            gc.disable()
            started = time.process_time()
            rec.record_results(calls)
            best = min(best, time.process_time() - started)
            gc.enable()
            assert not rec.decisions and rec.counts.written == customers
            store.close()
    return best


class _AnsweringCrm:
    """A CRM with Salesforce's batching that answers every write at once, all written."""

    capabilities = Capabilities(
        crm="bench", page_size=2_000, max_write_batch=200, bulk_threshold=2_000
    )

    def apply(self, plan: WritePlan) -> list[WriteResult]:
        return [WriteResult("field_update", u.customer_id, True) for u in plan.field_updates]


def _pool_pass(customers: int = 20_000, page: int = 2_000) -> float:
    """CPU seconds of the pool's work for ``customers`` field updates (see ``pool``)."""
    items = [
        OutboxItem(i, f"001{i:012d}", "field_update", f"001{i:012d}", {"v": 1}, 0, RUN, "sync")
        for i in range(1, customers + 1)
    ]
    pool = WritePool(
        _AnsweringCrm(),  # type: ignore[arg-type]
        SyncSettings(),
        holding=lambda: False,
        record=lambda calls: [],
        after_record=lambda: None,
        maybe_made=MaybeMade(RUN),
    )
    gc.collect()
    gc.disable()
    started = time.process_time()
    for start in range(0, customers, page):
        pool.send_ready()  # as a page's plan calls it, twice
        pool.send_ready()
        pool.queue.update((item.id, item) for item in items[start : start + page])
        pool.drain(final=False)
    pool.drain(final=True)
    seconds = time.process_time() - started
    gc.enable()
    pool.shutdown()
    assert not pool.queue and pool.tally.items["field_update"] == customers
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--dir",
        help="where the stores go (default: the system's temporary directory); /dev/shm"
        " keeps the commits' disk syncs, which vary most on a busy box, out of the figures",
    )
    args = parser.parse_args()
    print(f"sync from {Path(sync.__file__).parent.parent}; {args.customers:,} customers")
    for name, effects in (("fields", False), ("effects", True)):
        seconds = _best(args.repeat, args.customers, effects, args.dir)
        print(f"{name:<8} {seconds / args.customers * 1e6:8.1f} us/customer CPU")
    seconds = min(_pool_pass() for _ in range(args.repeat))
    print(f"{'pool':<8} {seconds / 20_000 * 1e6:8.1f} us/customer CPU")


if __name__ == "__main__":
    main()
