"""What every CRM's ``[crm]`` table has in common, and how a bad one is reported.

Each CRM's config model (``connectors/<crm>/config.py``) extends ``CrmSettings`` with its
own keys; the shared part is the transport (CA bundle, timeouts, retry bounds) and the API
budget (``api_share``). ``load_crm_settings`` turns a pydantic failure into one line that
names the key (``crm.client_secret: ...``) and never echoes the value, which may be a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.config_text import sentence
from connectors.errors import ConfigError
from connectors.http import RetryPolicy


class CrmSettings(BaseModel):
    # hide_input_in_errors: a ValidationError must never quote a value, which may be a secret.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    ca_bundle: str = ""
    # docs/targets.md R5: max share of the daily allowance a run uses
    api_share: float = Field(0.2, gt=0, le=1)
    max_attempts: int = Field(5, ge=1, le=10)
    backoff_base: float = Field(0.5, ge=0)
    backoff_cap: float = Field(120.0, ge=0, le=120)  # R6: no API retry waits over 2 minutes
    connect_timeout: float = Field(10.0, gt=0, le=60)
    read_timeout: float = Field(30.0, gt=0, le=600)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
        )


S = TypeVar("S", bound=CrmSettings)


def load_crm_settings(model: type[S], crm: Mapping[str, Any]) -> S:
    """Validate the raw ``[crm]`` table into ``model``; errors name the key, not the value."""
    try:
        return model.model_validate(dict(crm))
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(["crm", *(str(p) for p in err["loc"])])
        raise ConfigError(f"{where}: {sentence(err, model.model_fields)}") from None
