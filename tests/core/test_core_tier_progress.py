"""``crmtier tier`` with its progress bar (a large file, stderr a terminal): the
assessments still go to stdout, whole, and only the bar and the problems to stderr."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from crmtier.commands import tier


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_run_with_its_progress_bar_writes_every_assessment_to_stdout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "in.jsonl"
    records = [{"id": f"C{i}", "kind": "individual"} for i in range(50)]
    source.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    monkeypatch.setattr(tier, "PROGRESS_MIN_BYTES", 0)  # the bar for this small file
    stderr = _Terminal()
    monkeypatch.setattr(sys, "stderr", stderr)
    with (tmp_path / "out.jsonl").open("w", encoding="utf-8") as stdout:
        monkeypatch.setattr(sys, "stdout", stdout)
        tier.command.main(["--input", str(source), "--as-of", "2026-11-28"], standalone_mode=False)
    lines = (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [r["id"] for r in records]
    assert "assessing in.jsonl" in stderr.getvalue()
    assert "50 assessed, 0 skipped" in stderr.getvalue()
