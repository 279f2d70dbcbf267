"""What starting a command costs: the console script keeps the objects a command's import
built out of the garbage collector's later passes (crmtier/cli.py ``load_frozen``), and a
caller of ``cli`` that is not the console script keeps its collector as it was."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from crmtier.cli import cli

ROOT = Path(__file__).resolve().parents[2]


def _python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.stdout.strip()


def test_the_console_script_freezes_what_the_command_import_built() -> None:
    code = (
        "import gc\n"
        "from crmtier.cli import main\n"
        "try:\n"
        "    main(['policy', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.isenabled(), gc.get_freeze_count() > 10_000)\n"
    )
    assert _python(code).splitlines()[-1] == "True True"


def test_the_console_script_leaves_a_disabled_collector_disabled() -> None:
    code = (
        "import gc\n"
        "gc.disable()\n"
        "from crmtier.cli import main\n"
        "try:\n"
        "    main(['policy', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(gc.isenabled())\n"
    )
    assert _python(code).splitlines()[-1] == "False"


def test_calling_cli_in_process_freezes_nothing() -> None:
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(cli, ["policy", "--help"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()


def _imported_after(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules under ``prefixes`` a fresh interpreter holds after running ``code``."""
    listing = (
        f"import json, sys\n{code}\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r}))))"
    )
    found: list[str] = json.loads(_python(listing).splitlines()[-1])
    return found


def test_tier_imports_no_store_no_crm_and_no_rich(tmp_path: Path) -> None:
    """``crmtier tier`` reads a file and writes lines: it pays for no state store, CRM SDK
    or console library (rich is imported only for the progress bar of a large file on a
    terminal)."""
    source = tmp_path / "one.jsonl"
    source.write_text('{"id": "C1", "kind": "individual"}\n', encoding="utf-8")
    code = (
        "from crmtier.cli import main\n"
        "try:\n"
        f"    main(['tier', '--input', {str(source)!r}, '--as-of', '2026-01-01'])\n"
        "except SystemExit:\n"
        "    pass"
    )
    heavy = ("rich", "sqlalchemy", "requests", "simple_salesforce", "zcrmsdk", "connectors.sandbox")
    assert _imported_after(code, heavy) == []


def test_the_sync_command_loads_neither_rich_nor_the_postgresql_dialect() -> None:
    """rich is for what a run draws (not ``--json``/``--quiet``), PostgreSQL's dialect for
    a PostgreSQL store: importing the command loads neither."""
    imported = _imported_after(
        "import crmtier.commands.sync", ("rich", "sqlalchemy.dialects.postgresql")
    )
    assert imported == []
