"""``[webhooks]`` settings; the static check that secrets never meet ``==`` (docs/targets.md W3)."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.webhooks.wh_payloads import WHSEC, WHSEC_NEW
from webhooks.settings import load_webhooks

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_WHSEC", WHSEC)
    monkeypatch.setenv("T_WHSEC_NEW", WHSEC_NEW)
    monkeypatch.setenv("T_ZOHO", "z" * 32)
    monkeypatch.setenv("T_FX", "f" * 32)
    monkeypatch.setenv("T_SHORT", "short")


def test_full_section() -> None:
    settings = load_webhooks(
        {
            "listen": "0.0.0.0:9000",
            "secrets": [
                "env:T_WHSEC_NEW",
                {"ref": "env:T_WHSEC", "not_after": "2026-12-01T00:00:00Z"},
            ],
            "salesforce_org_id": "00D5g000004ABCDEAZ",
            "zoho_token": "env:T_ZOHO",
            "zoho_channel_id": "1000000068001",
            "fxiaoke_secret": "env:T_FX",
        }
    )
    assert (settings.host, settings.port) == ("0.0.0.0", 9000)
    v6 = load_webhooks({"listen": "[::1]:0"})
    assert (v6.host, v6.port) == ("::1", 0)
    assert settings.replay_window_seconds == 300
    assert (settings.max_json_bytes, settings.max_soap_bytes) == (256 * 1024, 1024 * 1024)
    before, after = datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert [s.active(before) for s in settings.secrets] == [True, True]
    assert [s.active(after) for s in settings.secrets] == [True, False]
    assert "zzzz" not in repr(settings) and "ffff" not in repr(settings)


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"]}, "secrets"),
        ({"secrets": ["env:T_SHORT"]}, "secrets"),
        ({"secrets": [{"ref": "env:T_WHSEC", "not_after": "2026-12-01T00:00:00"}]}, "secrets"),
        ({"zoho_token": "literal-token"}, "zoho_token"),
        ({"zoho_token": "env:T_UNSET_VARIABLE"}, "zoho_token"),
        ({"fxiaoke_secret": "env:T_SHORT"}, "fxiaoke_secret"),
        ({"salesforce_org_id": "001000000000001"}, "salesforce_org_id"),
        ({"zoho_channel_id": "abc"}, "zoho_channel_id"),
        ({"replay_window_seconds": 301}, "replay_window_seconds"),
        ({"dedupe_days": 3}, "dedupe_days"),
        ({"listen": "8080"}, "listen"),
        ({"public_url": "ftp://crmtier.example"}, "public_url"),
        ({"body_timeout_seconds": 0}, "body_timeout_seconds"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_bad_values_name_the_field(section: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        load_webhooks(section)
    assert field in str(info.value)
    assert "MfKQ9r8" not in str(info.value)


def test_zoho_token_longer_than_50_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_LONG", "x" * 51)
    with pytest.raises(ValidationError, match=r"1\.\.50"):
        load_webhooks({"zoho_token": "env:T_LONG"})


# --- W3: no == on secret material ----------------------------------------------------------

SECRET_NAME = ("secret", "token", "signature", "digest", "hmac", "org_id", "channel", "key")
VERIFYING_MODULES = [
    "connectors/webhook_events.py",
    "connectors/plugin.py",
    *[str(p.relative_to(REPO)) for p in sorted(REPO.glob("connectors/*/webhook.py"))],
    *[str(p.relative_to(REPO)) for p in sorted(REPO.glob("connectors/*/plugin.py"))],
    "tests/contract/memory_plugin/webhook.py",
    *[str(p.relative_to(REPO)) for p in sorted((REPO / "webhooks").glob("*.py"))],
]


def _names(node: ast.AST) -> set[str]:
    found: set[str] = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name):
            found.add(sub.id.lower())
        elif isinstance(sub, ast.Attribute):
            found.add(sub.attr.lower())
        elif isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            found.add(sub.value.lower())
    return found


def secret_equality_comparisons(source: str) -> list[int]:
    """Lines where ``==``/``!=``/``in`` has an operand whose names mention secret material."""
    hits = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
            continue
        operands = [node.left, *node.comparators]
        if any(
            word in name for operand in operands for name in _names(operand) for word in SECRET_NAME
        ):
            hits.append(node.lineno)
    return hits


def test_static_check_finds_a_planted_violation() -> None:
    assert secret_equality_comparisons("ok = received_signature == expected\n") == [1]
    assert secret_equality_comparisons("ok = hmac.compare_digest(a, b)\n") == []


@pytest.mark.parametrize("module", VERIFYING_MODULES)
def test_no_equality_on_secret_material(module: str) -> None:
    assert secret_equality_comparisons((REPO / module).read_text()) == [], module
