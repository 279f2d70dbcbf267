"""Secret references: configuration names where a secret lives, never the secret itself.

``env:NAME`` reads an environment variable, ``file:PATH`` reads a file (trailing newline
stripped). A literal value is refused: bank security reviews (docs/targets.md S1) require that
no secret sits in a config file. Resolved values are ``SecretStr`` so they print as
``**********`` in reprs, logs and exceptions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BeforeValidator, SecretStr


class SecretRefError(ValueError):
    """A secret reference that is literal, malformed or points at nothing."""


def resolve_secret(ref: str, *, name: str = "secret") -> SecretStr:
    """Resolve ``env:NAME`` or ``file:PATH``; the error names the setting, never the value."""
    scheme, sep, target = ref.partition(":")
    if not sep or scheme not in ("env", "file") or not target:
        raise SecretRefError(
            f"{name}: literal secrets are not allowed; use 'env:VARIABLE' or 'file:/path'"
        )
    if scheme == "env":
        value = os.environ.get(target)
        if value is None:
            raise SecretRefError(f"{name}: environment variable {target} is not set")
        return SecretStr(value)
    path = Path(target).expanduser()
    try:
        return SecretStr(path.read_text(encoding="utf-8").rstrip("\r\n"))
    except OSError as exc:
        raise SecretRefError(f"{name}: cannot read secret file {path}: {exc.strerror}") from None


def _validate_ref(value: object) -> SecretStr:
    if isinstance(value, SecretStr):
        return value
    if not isinstance(value, str):
        raise SecretRefError("must be a string 'env:VARIABLE' or 'file:/path'")
    return resolve_secret(value)


#: A pydantic field type: write ``client_secret: SecretRef`` in a config model.
SecretRef = Annotated[SecretStr, BeforeValidator(_validate_ref)]
