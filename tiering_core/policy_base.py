"""What every policy section shares: the base model (immutable, unknown keys refused, so a
typo in an admin's TOML is an error, not a silently ignored key) and the tier names a
section may list. Its own module so that sections kept outside ``policy.py`` (the
relationship sections of ``policy_relations.py``, AML in ``policy_aml.py``, strategy in
``policy_strategy.py``) build on the same base."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TierName = Literal[
    "private",
    "wealth",
    "affluent",
    "mass",
    "corporate_strategic",
    "corporate_key",
    "corporate_standard",
    "corporate_small",
]

#: An AML risk level a policy may name (``unrated`` is never configured).
AmlLevel = Literal["low", "medium", "high", "prohibited"]

NonNeg = Field(ge=0)


class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
