"""``/metrics`` in the Prometheus text exposition format, without a client library.

Five things an operator of the real-time path needs to see (docs/targets.md W7): requests by route
and status, events by outcome (accepted, duplicate at the receiver; written, unchanged, superseded,
... at the worker), the inbox backlog (depth and the age of the oldest pending event, which grows
while the CRM is down and must fall after recovery), CRM API calls by kind, and, with a task
engine, its queue and each worker's throughput (``queue_lines``). Counters are
process-local and thread-safe (the worker runs in a thread); backlog
gauges are read from the inbox at scrape time, so they are true across restarts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sync.inbox import Inbox
from sync.tasks.stats import QueueStats

Labels = tuple[tuple[str, str], ...]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, Counter[Labels]] = {}
        self._help: dict[str, str] = {}

    def inc(self, name: str, help_text: str, amount: int = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._help.setdefault(name, help_text)
            self._counters.setdefault(name, Counter())[key] += amount

    def value(self, name: str, **labels: str) -> int:
        with self._lock:
            return self._counters.get(name, Counter())[tuple(sorted(labels.items()))]

    def render(
        self,
        inbox: Inbox | None = None,
        api_calls: Callable[[], Mapping[str, int]] | None = None,
        now: datetime | None = None,
        queue: Callable[[datetime], QueueStats] | None = None,
    ) -> str:
        lines: list[str] = []
        with self._lock:
            for name in sorted(self._counters):
                lines += [f"# HELP {name} {self._help[name]}", f"# TYPE {name} counter"]
                for labels, value in sorted(self._counters[name].items()):
                    lines.append(f"{name}{_labels(labels)} {value}")
        if inbox is not None:
            stats = inbox.stats(now or datetime.now(UTC))
            lines += _gauge(
                "crmtier_inbox_depth", "Events acked but not yet processed.", stats.depth
            )
            lines += _gauge(
                "crmtier_inbox_oldest_pending_age_seconds",
                "Age of the oldest unprocessed event.",
                round(stats.oldest_pending_age_s, 3),
            )
            lines += _gauge(
                "crmtier_inbox_dead", "Events that exhausted their retries.", stats.dead
            )
        if queue is not None:
            lines += queue_lines(queue(now or datetime.now(UTC)))
        if api_calls is not None:
            name = "crmtier_crm_api_calls_total"
            lines += [f"# HELP {name} CRM API calls by kind.", f"# TYPE {name} counter"]
            for kind, count in sorted(api_calls().items()):
                lines.append(f"{name}{_labels((('kind', kind),))} {count}")
        return "\n".join(lines) + "\n"


def queue_lines(stats: QueueStats) -> list[str]:
    """The task engine's queue (``[workers] engine = "procrastinate"``): units waiting by
    kind, running, the age of the oldest waiting one, dead letters, the workers alive when
    full syncs are spread over them, and what each worker has finished (jobs, customers,
    failed jobs), read from the store at scrape time."""
    lines = [
        "# HELP crmtier_queue_depth Units of work waiting for a worker, by kind.",
        "# TYPE crmtier_queue_depth gauge",
    ]
    lines += [
        f"crmtier_queue_depth{_labels((('task', task),))} {n}"
        for task, n in sorted(stats.waiting.items())
    ]
    lines += _gauge("crmtier_queue_running", "Units of work being run now.", stats.running)
    lines += _gauge(
        "crmtier_queue_oldest_waiting_age_seconds",
        "Seconds since the oldest waiting unit was deferred.",
        round(stats.oldest_waiting_age_s, 3),
    )
    lines += _gauge("crmtier_queue_failed", "Units out of attempts (dead letters).", stats.failed)
    if stats.live_workers is not None:
        lines += _gauge(
            "crmtier_workers_alive",
            "Workers with a heartbeat within stalled_after_seconds (0: spread full syncs refused).",
            stats.live_workers,
        )
    per_worker = (
        ("crmtier_worker_jobs_total", "Units finished, by worker and kind.", "jobs"),
        ("crmtier_worker_customers_total", "Customers finished, by worker and kind.", "customers"),
        ("crmtier_worker_failed_total", "Units that failed, by worker and kind.", "failed"),
    )
    for name, help_text, attribute in per_worker:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
        for w in stats.workers:
            labels = (("kind", w.kind), ("worker", w.worker))
            lines.append(f"{name}{_labels(labels)} {getattr(w, attribute)}")
    return lines


def _gauge(name: str, help_text: str, value: float) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
