"""The shipped docs cover every policy key and every reason code (they are the admin's and
the sales team's reference, so a new key or code without documentation is a defect)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tiering_core.models import _ONLY_WHEN_SET, Previous
from tiering_core.policy import default_policy_text
from tiering_core.reasons import CATALOGUE

DOCS = Path(__file__).resolve().parents[2] / "docs"


def keys(table: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in table.items():
        if isinstance(value, dict) and value:
            yield from keys(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def test_every_policy_key_is_documented() -> None:
    text = (DOCS / "policy.md").read_text(encoding="utf-8")
    for key in keys(tomllib.loads(default_policy_text())):
        parts = key.split(".")
        if parts[:2] == ["strategy", "tasks"] or parts[:2] == ["strategy", "campaigns"]:
            assert f"`{parts[2]}`" in text and f"`{parts[3]} = " in text, key
        else:
            assert f"`{key}`" in text, key


def test_every_reason_code_is_documented() -> None:
    text = (DOCS / "reason-codes.md").read_text(encoding="utf-8")
    for code in CATALOGUE:
        assert f"`{code}`" in text, code
    for code in ("DQ_MISSING", "DQ_NEGATIVE", "DQ_IMPOSSIBLE", "DQ_UNKNOWN_ENUM", "DQ_NO_FX"):
        assert f"`{code}`" in text, code


def test_the_optional_output_keys_and_the_previous_block_are_documented() -> None:
    """``crmtier tier``'s output lines are a contract: a key that appears only where it
    applies, and each key of the ``previous`` input block, is named in the README."""
    text = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    for key in (*_ONLY_WHEN_SET, *Previous.model_fields):
        assert f"`{key}`" in text, key
