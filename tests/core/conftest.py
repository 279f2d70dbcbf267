"""Fixtures for the tiering-core tests (helpers live in core_support.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from core_support import AS_OF, FICO_POLICY, build

from tiering_core.engine import assess
from tiering_core.models import Assessment, CustomerProfile
from tiering_core.policy import Policy, load_policy


@pytest.fixture(scope="session")
def policy() -> Policy:
    return load_policy()


@pytest.fixture(scope="session")
def fico_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path = tmp_path_factory.mktemp("policy") / "fico.toml"
    path.write_text(FICO_POLICY, encoding="utf-8")
    return load_policy(path)


@pytest.fixture
def rate_fico(fico_policy: Policy) -> Callable[..., Assessment]:
    """``rate`` under FICO_POLICY (a declared score scale, DTI cut-offs on)."""

    def _rate(**changes: Any) -> Assessment:
        return assess(CustomerProfile.model_validate(build(**changes)), fico_policy, AS_OF)

    return _rate


@pytest.fixture
def rate(policy: Policy) -> Callable[..., Assessment]:
    """``rate(assets={...})``: assess BASELINE changed as given, on AS_OF."""

    def _rate(**changes: Any) -> Assessment:
        return assess(CustomerProfile.model_validate(build(**changes)), policy, AS_OF)

    return _rate
