"""Fixtures of the ``crmtier calibrate`` tests: one synthetic history with a planted ground
truth (connectors/sandbox/history.py), read and calibrated once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from calibrate_support import CUSTOMERS, SEED, SENSITIVE, numbered

from connectors.sandbox.history import history_lines
from crmtier.calibrate.history import History, read_history
from crmtier.calibrate.run import Calibration, calibrate
from tiering_core.policy import Policy, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="session")
def history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("calibrate") / "history.jsonl"
    path.write_text("".join(f"{line}\n" for line in history_lines(CUSTOMERS, SEED)), "utf-8")
    return path


@pytest.fixture(scope="session")
def small_history_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """For the tests of how the command behaves, not of what it finds."""
    path = tmp_path_factory.mktemp("calibrate") / "small.jsonl"
    path.write_text("".join(f"{line}\n" for line in history_lines(1_500, SEED)), "utf-8")
    return path


@pytest.fixture(scope="session")
def revenue_history(policy: Policy) -> History:
    return read_history(numbered(history_lines(CUSTOMERS, SEED)), policy, "revenue", print)


@pytest.fixture(scope="session")
def revenue_calibration(revenue_history: History, policy: Policy) -> Calibration:
    return calibrate(revenue_history, policy, {}, "revenue", SENSITIVE)
