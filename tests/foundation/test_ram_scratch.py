"""The test run's scratch files go to a RAM disk only where the box has a roomy tmpfs and the
caller chose no place (tests/ram_scratch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ram_scratch import ram_scratch

GB = 1 << 30


@pytest.mark.parametrize(
    ("environ", "fstypes", "min_free", "available", "chosen"),
    [
        pytest.param({}, ["tmpfs"], 0, "8000000 kB", True, id="roomy-tmpfs"),
        pytest.param({"TMPDIR": "/var/tmp"}, ["tmpfs"], 0, "8000000 kB", False, id="tmpdir-set"),
        pytest.param({"TMP": "/var/tmp"}, ["tmpfs"], 0, "8000000 kB", False, id="tmp-set"),
        pytest.param(
            {"PYTEST_DEBUG_TEMPROOT": "/x"}, ["tmpfs"], 0, "8000000 kB", False, id="temproot-set"
        ),
        pytest.param({"TMPDIR": ""}, ["tmpfs"], 0, "8000000 kB", True, id="tmpdir-empty"),
        pytest.param({}, ["ext4"], 0, "8000000 kB", False, id="a-disk"),
        pytest.param({}, [], 0, "8000000 kB", False, id="not-mounted"),
        pytest.param({}, ["tmpfs", "ext4"], 0, "8000000 kB", False, id="tmpfs-hidden-by-a-disk"),
        pytest.param({}, ["ext4", "tmpfs"], 0, "8000000 kB", True, id="tmpfs-over-a-disk"),
        pytest.param({}, ["tmpfs"], 1 << 60, "8000000 kB", False, id="too-small"),
        pytest.param({}, ["tmpfs"], 4 * GB, "1048576 kB", False, id="memory-short"),
        pytest.param({}, ["tmpfs"], 0, None, False, id="no-memavailable"),
    ],
)
def test_the_ram_disk_is_chosen_only_when_roomy_and_nobody_chose(
    tmp_path: Path,
    environ: dict[str, str],
    fstypes: list[str],
    min_free: int,
    available: str | None,
    chosen: bool,
) -> None:
    disk = tmp_path / "shm"
    disk.mkdir()
    mounts = tmp_path / "mounts"
    lines = ["proc /proc proc rw 0 0", "/dev/vda / ext4 rw 0 0"]
    lines += [f"{fstype} {disk} {fstype} rw,relatime 0 0" for fstype in fstypes]
    mounts.write_text("\n".join(lines) + "\n", "utf-8")
    meminfo = tmp_path / "meminfo"
    memory = ["MemTotal:       24683772 kB", "MemFree:         1000000 kB"]
    if available is not None:
        memory.append(f"MemAvailable:   {available}")
    meminfo.write_text("\n".join(memory) + "\n", "utf-8")
    got = ram_scratch(environ, ram_disk=disk, mounts=mounts, meminfo=meminfo, min_free=min_free)
    assert got == (disk if chosen else None)


def test_no_mount_table_means_no_ram_disk(tmp_path: Path) -> None:
    assert ram_scratch({}, ram_disk=tmp_path, mounts=tmp_path / "absent", min_free=0) is None
