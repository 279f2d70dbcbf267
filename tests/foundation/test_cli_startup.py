"""What starting a command costs: the console script keeps the objects a command's import
built out of the garbage collector's later passes (crmtier/cli.py ``load_frozen``), and a
caller of ``cli`` that is not the console script keeps its collector as it was."""

from __future__ import annotations

import gc
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
