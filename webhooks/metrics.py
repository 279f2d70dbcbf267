"""``/metrics`` in the Prometheus text exposition format, without a client library.

Four things an operator of the real-time path needs to see (docs/targets.md W7): requests by route
and status, events by outcome (accepted, duplicate at the receiver; written, unchanged, superseded,
... at the worker), the inbox backlog (depth and the age of the oldest pending event, which grows
while the CRM is down and must fall after recovery), and CRM API calls by kind. Counters are
process-local and thread-safe (the worker runs in a thread); backlog
gauges are read from the inbox at scrape time, so they are true across restarts.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sync.inbox import Inbox

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
        if api_calls is not None:
            name = "crmtier_crm_api_calls_total"
            lines += [f"# HELP {name} CRM API calls by kind.", f"# TYPE {name} counter"]
            for kind, count in sorted(api_calls().items()):
                lines.append(f"{name}{_labels((('kind', kind),))} {count}")
        return "\n".join(lines) + "\n"


def _gauge(name: str, help_text: str, value: float) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {value}"]


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
