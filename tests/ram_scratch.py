"""Where a test run keeps its scratch files: on the box's RAM disk when it has a roomy one.

Most tests open a SQLite state store, which crmtier runs with ``synchronous=FULL``
(``sync/store_engine.py``: a committed bookmark survives a power cut), so every commit
waits for the disk to sync. A small sync in a test commits often, and on a disk those
syncs are most of its time, the more so on a box other jobs share: the sync state
machine took 15 s with its store on disk and 7 s on tmpfs. No test can cut the power, so
none depends on the syncs reaching a disk; the product's settings stay as they are.

Only when the caller has not chosen a place (``TMPDIR``, ``TEMP``, ``TMP``, pytest's
``--basetemp`` or ``PYTEST_DEBUG_TEMPROOT``), ``/dev/shm`` is a tmpfs with room to spare and
the box has that much memory available: a tmpfs's size is a cap, not memory set aside (it
defaults to half the RAM and may be all of it), so its free room alone says nothing about a
box whose other jobs hold the memory, and a box without swap would meet the OOM killer.
Anywhere else (macOS, a container's 64 MB ``/dev/shm``, a busy box) the run is as before.
The controller decides once, before xdist starts its workers; they inherit ``TMPDIR``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

RAM_DISK = Path("/dev/shm")
#: free room on the RAM disk, and memory available, a run asks for: it writes about 600 MB
#: in all and keeps only failed tests' files, so this leaves room for other runs and jobs
MIN_FREE = 4 << 30
CHOSEN_BY_CALLER = ("TMPDIR", "TEMP", "TMP", "PYTEST_DEBUG_TEMPROOT")


def ram_scratch(
    environ: Mapping[str, str],
    *,
    ram_disk: Path = RAM_DISK,
    mounts: Path = Path("/proc/self/mounts"),
    meminfo: Path = Path("/proc/meminfo"),
    min_free: int = MIN_FREE,
) -> Path | None:
    """The RAM disk to put the run's scratch files on, or None to leave them where they are."""
    if any(environ.get(name) for name in CHOSEN_BY_CALLER):
        return None
    try:
        table = mounts.read_text("utf-8")
        memory = meminfo.read_text("utf-8")
        room = os.statvfs(ram_disk)
    except OSError:
        return None
    # the last mount on the path is the one in use (a later mount hides an earlier one)
    fstypes = [
        f[2] for f in (line.split() for line in table.splitlines()) if f[1:2] == [str(ram_disk)]
    ]
    if fstypes[-1:] != ["tmpfs"] or not os.access(ram_disk, os.W_OK | os.X_OK):
        return None
    available = _mem_available(memory)
    if available is None or available < min_free:
        return None
    return ram_disk if room.f_bavail * room.f_frsize >= min_free else None


def _mem_available(meminfo: str) -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes (the kernel's estimate of memory a new
    workload can take without swapping), None where the kernel gives none."""
    for line in meminfo.splitlines():
        name, _, value = line.partition(":")
        if name == "MemAvailable" and value.split()[1:] == ["kB"]:
            return int(value.split()[0]) * 1024
    return None
