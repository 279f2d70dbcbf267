"""CPU of a page's planning half and of its enqueue (issue 18 items 2/4, the sync's side).

Seeds N customers in a Salesforce sandbox and reads them once through the real connector;
then, with the sandbox stopped, runs first syncs of them in this process against a fresh
SQLite store each pass: the pages replayed from memory, every write answered ``ok`` at once
(no network), with the cyclic collector as ``crmtier sync`` sets it. Printed per customer,
the main thread's CPU (``time.thread_time``: the write pool's threads are not counted) in
each step, best of ``--repeat`` passes:

  plan             ``PageStep.plan``: intake, claims, states, assess, plan
  intake           ``Reader.intake`` (input hashes)
  claims.take      ``RunClaims.take``: the page's customers claimed
  load_states      ``sync.state.load_states``: their committed state (and the tasks and
                   memberships crmtier made of them)
  assess           ``PagePlanner.assess`` (the tiering core's ``decide_batch`` inside)
  planner.plan     ``PagePlanner.plan``
  decide           ``PagePlanner.decide`` (one call a written customer)
  enqueue          ``Dispatcher.enqueue`` (``outbox.enqueue`` inside)
  outbox.enqueue   ``sync.outbox.enqueue`` alone
  claims.decided   ``RunClaims.decided``: the page commit marks its admitted versions
                   decided from (``customer_claims.decided``)

``--after fields`` or ``--after full``: each pass first runs an untimed first sync of that
write-back on its store, then times a ``--full`` re-tier of the same pages (their CRM
values still empty, so every customer's fields are written again). After a full first sync
most customers hold campaign memberships crmtier made, which a ``--fields-only`` run reads
to plan their withdrawal on a sanctions hit; the two differ by that.

Run: python bench/plan_step.py [--customers 20000] [--repeat 3] [--fields-only]
     [--after fields|full]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# Run as a script, bench/ comes first on the path and bench/sync.py would shadow the sync
# package: import the project from the repository root instead.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [str(_HERE.parent), *(p for p in sys.path if Path(p or ".").resolve() != _HERE)]

from connectors.contract import Page, WritePlan, WriteResult  # noqa: E402
from connectors.sandbox.base import open_sandbox  # noqa: E402
from crmtier.commands.sync import make_engine  # noqa: E402
from crmtier.commands.sync_gc import fewer_collections  # noqa: E402
from crmtier.config import load_config  # noqa: E402
from sync import dispatch, outbox, page_step, planning, reader, run_claims  # noqa: E402
from sync.settings import RunOptions  # noqa: E402
from sync.store import StateStore  # noqa: E402

#: (module or class, attribute, label) of the steps timed
_STEPS = (
    (page_step.PageStep, "plan", "plan"),
    (reader.Reader, "intake", "intake"),
    (run_claims.RunClaims, "take", "claims.take"),
    (page_step, "load_states", "load_states"),
    (planning.PagePlanner, "assess", "assess"),
    (planning.PagePlanner, "plan", "planner.plan"),
    (planning.PagePlanner, "decide", "decide"),
    (dispatch.Dispatcher, "enqueue", "enqueue"),
    (outbox, "enqueue", "outbox.enqueue"),
    (run_claims.RunClaims, "decided", "claims.decided"),
)


def _timed(spent: Counter[str], label: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return fn(*args, **kwargs)
        finally:
            spent[label] += time.thread_time() - started

    return timed


def _answered(plan: WritePlan) -> list[WriteResult]:
    """Every item of ``plan`` written, in plan order."""
    return [
        *(WriteResult("field_update", u.customer_id, True) for u in plan.field_updates),
        *(WriteResult("task", t.task.dedupe_key, True) for t in plan.tasks),
        *(WriteResult("membership", m.dedupe_key, True) for m in plan.memberships),
        *(WriteResult("task_close", c.dedupe_key, True) for c in plan.task_closes),
    ]


def _config(path: Path, text: str, *, fields_only: bool) -> Any:
    """The sandbox's config at ``path``, with tasks and memberships off when ``fields_only``."""
    if fields_only:
        for side_effect in ("tasks", "campaign_memberships"):
            text = text.replace(f"{side_effect} = true", f"{side_effect} = false")
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fields-only", action="store_true", help="tier fields only")
    parser.add_argument("--after", choices=("fields", "full"), help="time a re-tier after this")
    parser.add_argument("--profile", help="write a cProfile of the last pass's run here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        sandbox = open_sandbox("salesforce", data_dir=Path(tmp))
        sandbox.seed(args.customers)
        sandbox.start()
        try:
            text, env = sandbox.crmtier_config()
            os.environ.update(env)
            config = _config(Path(tmp) / "crmtier.toml", text, fields_only=args.fields_only)
            first = _config(Path(tmp) / "first.toml", text, fields_only=args.after == "fields")
            connector: Any = config.connector()
            pages = list(connector.read_changed(None))
        finally:
            sandbox.stop()

        def replay(since: Any) -> Iterator[Page]:
            return iter(pages)

        connector.read_changed = replay
        connector.apply = _answered
        spent: Counter[str] = Counter()
        for owner, name, label in _STEPS:
            setattr(owner, name, _timed(spent, label, getattr(owner, name)))
        best: dict[str, float] = {}
        for i in range(args.repeat):
            store = StateStore.open(f"sqlite:///{tmp}/state{i}.db")
            if args.after:
                with fewer_collections():
                    make_engine(first, store, connector).run(RunOptions())
            engine = make_engine(config, store, connector)
            spent.clear()
            gc.collect()
            profile = cProfile.Profile() if args.profile and i == args.repeat - 1 else None
            if profile is not None:
                profile.enable()
            with fewer_collections():  # as ``crmtier sync`` runs
                report = engine.run(RunOptions(full=args.after is not None))
            if profile is not None:
                profile.disable()
                profile.dump_stats(args.profile)
            store.close()
            if report.status != "succeeded" or report.counts.read != args.customers:
                sys.exit(f"the run {report.status}: {report.error}; {report.counts}")
            for label, seconds in spent.items():
                best[label] = min(best.get(label, float("inf")), seconds)
    print(f"{args.customers:,} customers, fields only: {args.fields_only}, after: {args.after}")
    for _, _, label in _STEPS:
        print(f"{label:<16} {best.get(label, 0) / args.customers * 1e6:8.1f} us/customer CPU")


if __name__ == "__main__":
    main()
