"""Every ``crmtier`` command the README shows is exercised, so the README cannot rot.

Shell blocks run in README order, in a working directory whose ``crmtier.toml`` points at a
live Salesforce sandbox (the sandbox stands in for the admin's org). Commands that never
return (``serve``, ``sandbox``) and the demos (run end to end by ``test_product_demo.py``, at a
small size) are checked against their ``--help``: the subcommand exists and takes every
option the README passes. Commands inside cron/systemd snippets get the same check.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from click.testing import CliRunner

from connectors.sandbox.base import open_sandbox
from crmtier.cli import cli

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHELL = {"", "bash", "sh", "shell", "console"}
NOT_RUN = {"serve", "sandbox", "demo"}
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return [(m.group(2), m.group(3)) for m in FENCE.finditer(README.read_text("utf-8"))]


def commands(text: str) -> Iterator[str]:
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        if not line or line.startswith("#"):
            continue
        for part in line.split("&&"):
            yield part.strip()


def crmtier_words(cmd: str) -> list[str]:
    """The ``crmtier ...`` words of a command (``/path/crmtier serve ...`` too), without
    shell redirections."""
    words = shlex.split(cmd)
    at = next((i for i, w in enumerate(words) if w == "crmtier" or w.endswith("/crmtier")), None)
    if at is None:
        return []
    out = []
    for w in words[at + 1 :]:
        if w in (">", ">>", "|"):
            break
        out.append(w)
    return out


def subcommand(words: list[str]) -> list[str]:
    return [w for w in words[:2] if not w.startswith("-")][
        : 2 if words[:1] in (["policy"], ["audit"]) else 1
    ]


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "COLUMNS": "200",
    }


def help_text(sub: list[str]) -> str:
    result = CliRunner().invoke(cli, [*sub, "--help"])
    assert result.exit_code == 0, f"crmtier {' '.join(sub)} --help: {result.output}"
    return result.output


def test_quick_start_is_exactly_the_two_commands() -> None:
    lang, first = blocks()[0]
    assert lang == ""
    assert first.strip().splitlines() == [
        "pip install -e '.[dev]' && crmtier demo",
        "python -m pytest",
    ]


def test_every_option_the_readme_passes_exists() -> None:
    seen = 0
    inline = re.findall(r"`(crmtier [^`]+)`", FENCE.sub("", README.read_text("utf-8")))
    for _, text in [*blocks(), ("inline", "\n".join(inline))]:
        for line in text.splitlines():
            if "crmtier" not in line or line.strip().startswith("#"):
                continue
            words = crmtier_words(line.strip().removeprefix("$ "))
            if not words or not re.fullmatch(r"[a-z]+", words[0]):
                continue
            sub = subcommand(words)
            page = help_text(sub)
            for option in (w.split("=")[0] for w in words if w.startswith("--")):
                assert option in page, f"README: crmtier {' '.join(sub)} has no {option}"
            seen += 1
    assert seen >= 20


def test_readme_shell_commands_run_against_a_sandbox(tmp_path: Path) -> None:
    sandbox = open_sandbox("salesforce", data_dir=tmp_path / "sandbox")
    sandbox.seed(60)
    sandbox.start()
    try:
        text, secrets = sandbox.crmtier_config()
        work = tmp_path / "work"
        work.mkdir()
        (work / "crmtier.toml").write_text(text, encoding="utf-8")
        (work / "examples").symlink_to(ROOT / "examples")
        ran = []
        for lang, block in blocks():
            if lang not in SHELL:
                continue
            for cmd in commands(block):
                words = crmtier_words(cmd)
                if not words or subcommand(words)[0] in NOT_RUN:
                    continue
                done = subprocess.run(
                    ["bash", "-c", cmd[cmd.index("crmtier") :]],
                    cwd=work,
                    env={**env(), **secrets},
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=300,
                )
                assert done.returncode == 0, f"{cmd}\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
                for secret in secrets.values():
                    assert secret not in done.stdout + done.stderr
                ran.append(cmd)
        assert any("sync" in c for c in ran) and any("report" in c for c in ran)
        assert (work / "report.html").stat().st_size > 10_000
        assert (work / "my-policy.toml").exists() and (work / "assessed.jsonl").exists()
    finally:
        sandbox.stop()


def test_readme_links_resolve() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text("utf-8"))
    local = [link for link in links if "://" not in link]
    assert local, "the README links its docs"
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_the_sync_exit_statuses_a_scheduler_reads_are_all_named() -> None:
    """Every status ``crmtier sync`` can end with is in README's scheduling sentence and in
    ``sync --help`` (exit 5, another run holding the lease, was in neither)."""
    from crmtier.commands.sync import EXIT
    from crmtier.commands.sync_schedule import EXIT_CONFIG, EXIT_RUNNING

    codes = {*EXIT.values(), EXIT_CONFIG, EXIT_RUNNING}
    text = " ".join(README.read_text("utf-8").split())
    said = re.search(r"the exit status tells a scheduler what happened \((.*?)\)\. With cron", text)
    assert said, "README's scheduling sentence moved"
    assert {int(n) for n in re.findall(r"(?:^|, )(\d) ", said.group(1))} == codes
    page = " ".join(help_text(["sync"]).split())
    assert all(f"{n} " in page.split("Exit status:")[1] for n in codes)
