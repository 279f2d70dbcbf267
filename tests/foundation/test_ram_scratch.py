"""The test run's scratch files go to a RAM disk only where the box has a roomy tmpfs and the
caller chose no place (tests/ram_scratch.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ram_scratch import ram_scratch


@pytest.mark.parametrize(
    ("environ", "fstype", "min_free", "chosen"),
    [
        pytest.param({}, "tmpfs", 0, True, id="roomy-tmpfs"),
        pytest.param({"TMPDIR": "/var/tmp"}, "tmpfs", 0, False, id="tmpdir-set"),
        pytest.param({"TMP": "/var/tmp"}, "tmpfs", 0, False, id="tmp-set"),
        pytest.param({"PYTEST_DEBUG_TEMPROOT": "/x"}, "tmpfs", 0, False, id="temproot-set"),
        pytest.param({"TMPDIR": ""}, "tmpfs", 0, True, id="tmpdir-empty"),
        pytest.param({}, "ext4", 0, False, id="a-disk"),
        pytest.param({}, None, 0, False, id="not-mounted"),
        pytest.param({}, "tmpfs", 1 << 60, False, id="too-small"),
    ],
)
def test_the_ram_disk_is_chosen_only_when_roomy_and_nobody_chose(
    tmp_path: Path, environ: dict[str, str], fstype: str | None, min_free: int, chosen: bool
) -> None:
    disk = tmp_path / "shm"
    disk.mkdir()
    mounts = tmp_path / "mounts"
    lines = ["proc /proc proc rw 0 0", "/dev/vda / ext4 rw 0 0"]
    if fstype is not None:
        lines.append(f"{fstype} {disk} {fstype} rw,relatime 0 0")
    mounts.write_text("\n".join(lines) + "\n", "utf-8")
    got = ram_scratch(environ, ram_disk=disk, mounts=mounts, min_free=min_free)
    assert got == (disk if chosen else None)


def test_no_mount_table_means_no_ram_disk(tmp_path: Path) -> None:
    assert ram_scratch({}, ram_disk=tmp_path, mounts=tmp_path / "absent", min_free=0) is None
