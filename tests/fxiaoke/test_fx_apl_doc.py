"""The known-answer example in docs/fxiaoke-apl.md is right, for the sandbox's signer and
the receiver's verifier alike (an admin checks their APL function against it)."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import SecretStr

from connectors.fxiaoke import webhook
from connectors.sandbox.fxiaoke_push import signature

DOC = Path(__file__).resolve().parents[2] / "docs" / "fxiaoke-apl.md"


def test_the_documented_signature_vector() -> None:
    text = DOC.read_text(encoding="utf-8")
    secret = re.search(r"secret\s+`([^`]+)`, timestamp", text)
    timestamp = re.search(r"timestamp `(\d+)`, body", text)
    body = re.search(r"body\n\n```\n(.+?)\n```", text, re.S)
    expected = re.search(r"X-Fx-Signature: ([0-9a-f]{64})", text)
    assert secret and timestamp and body and expected
    raw = body.group(1).encode("utf-8")
    assert signature(secret.group(1), timestamp.group(1), raw) == expected.group(1)
    headers = {"x-fx-timestamp": timestamp.group(1), "x-fx-signature": expected.group(1)}
    now_s = int(timestamp.group(1)) / 1000
    webhook.verify(headers, raw, secret=SecretStr(secret.group(1)), now_s=now_s, window_s=300)
