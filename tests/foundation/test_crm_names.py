"""Nothing outside ``connectors/`` names a CRM (issue 19 item 1): the product reaches each CRM
through its connector plugin (connectors/plugin.py, connectors/registry.py), so a new CRM is
a new folder and one entry-point line, with no list of CRMs to extend anywhere else.

What counts as naming a CRM is code: identifiers, imports and string literals (including
user-facing text such as CLI help; choices come from the registry). Comments and
docstrings may cite a vendor's behaviour to explain a design, as docs/ does.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("tiering_core", "sync", "webhooks", "crmtier")
VENDOR = re.compile(r"salesforce|zoho|fxiaoke|纷享", re.IGNORECASE)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of string expressions standing alone (docstrings and ``#:``-style notes)."""
    return {
        id(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def crm_names(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of each identifier, import or string literal that names a CRM."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    for node in ast.walk(tree):
        texts: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose:
            texts = [node.value]
        elif isinstance(node, ast.Name):
            texts = [node.id]
        elif isinstance(node, ast.Attribute):
            texts = [node.attr]
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            texts = [node.name]
        elif isinstance(node, ast.arg):
            texts = [node.arg]
        elif isinstance(node, ast.alias):
            texts = [node.name, node.asname or ""]
        elif isinstance(node, ast.ImportFrom):
            texts = [node.module or ""]
        for text in texts:
            if VENDOR.search(text):
                yield getattr(node, "lineno", 0), text


def product_files() -> list[Path]:
    files = [p for package in PRODUCT for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50  # the walk found the product
    return files


def test_the_check_finds_planted_names() -> None:
    planted = (
        "from connectors.zoho import webhook\n"
        "KINDS = ('salesforce', 'other')\n"
        "def fix_fxiaoke(x): return f'{x} in 纷享销客'\n"
        "settings.zoho_token\n"
    )
    assert sorted(line for line, _ in crm_names(planted)) == [1, 2, 3, 3, 4]


def test_prose_may_cite_a_vendor() -> None:
    source = '"""Salesforce retries for 24 h."""\n# Zoho stamps whole seconds\nx = 1\n'
    assert list(crm_names(source)) == []


@pytest.mark.parametrize("path", product_files(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_no_crm_is_named_outside_connectors(path: Path) -> None:
    found = [f"line {line}: {text!r}" for line, text in crm_names(path.read_text("utf-8"))]
    assert found == [], f"{path.relative_to(ROOT)} names a CRM; ask its plugin instead"
