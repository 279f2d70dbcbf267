"""Fixtures for the tiering-core tests (helpers live in core_support.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from core_support import AS_OF, build

from tiering_core.engine import assess
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import Policy, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def rate(policy: Policy) -> Callable[..., Assessment]:
    """``rate(assets={...})``: assess BASELINE changed as given, on AS_OF."""

    def _rate(**changes: Any) -> Assessment:
        return assess(CustomerProfile.model_validate(build(**changes)), policy, AS_OF)

    return _rate
