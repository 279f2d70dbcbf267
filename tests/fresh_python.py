"""Running code in a fresh interpreter: what a process starting cold imports or does,
which the test process (already holding every module) cannot show."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def fresh_python(code: str) -> str:
    """What ``code`` prints, run by this interpreter in a new process with the checkout
    first on its path (a failure raises, with the child's output)."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.stdout
