"""What starting a command costs: the console script keeps the objects a command's import
built out of the garbage collector's later passes (crmtier/cli.py ``load_frozen``), and a
caller of ``cli`` that is not the console script keeps its collector as it was."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from click.testing import CliRunner

from crmtier.cli import cli
from tests.fresh_python import fresh_python


def _console_script(args: list[str], shows: str, before: str = "") -> str:
    """What ``shows`` (a Python expression) is in a fresh interpreter once the console
    script ran ``crmtier ARGS`` (``before`` runs first)."""
    code = (
        f"import gc, json, sys\n{before}\nfrom crmtier.cli import main\n"
        f"try:\n    main({args!r})\nexcept SystemExit:\n    pass\nprint({shows})\n"
    )
    return fresh_python(code).strip().splitlines()[-1]


def _modules(prefixes: tuple[str, ...]) -> str:
    """An expression: the loaded modules under ``prefixes``, as a JSON list."""
    return f"json.dumps(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"


def test_the_console_script_freezes_what_the_command_import_built() -> None:
    shows = "gc.isenabled(), gc.get_freeze_count() > 10_000"
    assert _console_script(["policy", "--help"], shows) == "True True"


def test_the_console_script_leaves_a_disabled_collector_disabled() -> None:
    shows = "gc.isenabled()"
    assert _console_script(["policy", "--help"], shows, before="gc.disable()") == "False"


def test_calling_cli_in_process_freezes_nothing() -> None:
    frozen = gc.get_freeze_count()
    result = CliRunner().invoke(cli, ["policy", "--help"])
    assert result.exit_code == 0, result.output
    assert gc.get_freeze_count() == frozen
    assert gc.isenabled()


def test_tier_imports_no_store_no_crm_and_no_rich(tmp_path: Path) -> None:
    """``crmtier tier`` reads a file and writes lines: it pays for no state store, CRM SDK
    or console library (rich is imported only for the progress bar of a large file on a
    terminal)."""
    source = tmp_path / "one.jsonl"
    source.write_text('{"id": "C1", "kind": "individual"}\n', encoding="utf-8")
    args = ["tier", "--input", str(source), "--as-of", "2026-01-01"]
    heavy = ("rich", "sqlalchemy", "requests", "simple_salesforce", "zcrmsdk", "connectors.sandbox")
    assert json.loads(_console_script(args, _modules(heavy))) == []


def test_the_sync_command_loads_neither_rich_nor_the_postgresql_dialect() -> None:
    """rich is for what a run draws (not ``--json``/``--quiet``), PostgreSQL's dialect for
    a PostgreSQL store: loading the command loads neither."""
    shows = _modules(("rich", "sqlalchemy.dialects.postgresql"))
    assert json.loads(_console_script(["sync", "--help"], shows)) == []
