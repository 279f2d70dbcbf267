"""Named kill points for the crash tests (docs/targets.md R1).

``CRMTIER_KILL_AT=after_commit:3`` makes the process SIGKILL itself the third time it
passes ``after_commit``; several points can be given, comma-separated. Unset (production)
the check is one dict lookup. SIGKILL, not an exception: no ``finally`` block, no atexit
handler, no flush runs, exactly like the OOM killer. Not a power cut: what the process wrote
to the kernel survives a SIGKILL in the page cache, synced or not, so these tests hold on a
tmpfs too; a power cut's loss of unsynced writes is SQLite's ``synchronous=FULL`` to answer
for, which no test can cut.
"""

from __future__ import annotations

import os
import signal

ENV = "CRMTIER_KILL_AT"

#: every instrumented point, in the order one page passes them
POINTS = (
    "after_fetch",
    "after_tier",
    "before_commit",
    "in_commit",
    "after_commit",
    "before_write",
    "after_write",
    "before_record",
    "in_record",
    "after_record",
)


def _parse(spec: str) -> dict[str, int]:
    targets: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, count = part.partition(":")
        if name not in POINTS:
            raise ValueError(f"{ENV}: unknown kill point {name!r}; one of {', '.join(POINTS)}")
        targets[name] = int(count or 1)
    return targets


_targets = _parse(os.environ.get(ENV, ""))
_hits: dict[str, int] = {}


def kill_point(name: str) -> None:
    if not _targets:
        return
    target = _targets.get(name)
    if target is None:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] >= target:
        os.kill(os.getpid(), signal.SIGKILL)
