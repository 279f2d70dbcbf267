"""What a listing may show of a customer's AML rating: nothing, unless asked.

An AML rating and what follows from it (enhanced due diligence) are confidential: the
PRC Anti-Money Laundering Law binds a bank to keep the customer information and
assessments of its AML work confidential (PBOC 保密原则), which is why the write-back
sends ``aml_risk`` only to fields compliance alone can read. Listings crmtier
prints on an operator's terminal (a dry run's plan, ``audit show``) follow the same rule:
restricted values are replaced by ``HIDDEN`` and an EDD task or AML reason code is left
out, unless the operator passes ``--show-restricted``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tiering_core.outputs import RESTRICTED

HIDDEN = "(restricted)"
#: outputs that reveal an AML rating (declared in tiering_core/outputs.py), hidden whatever
#: the configured restricted fields say
ALWAYS_RESTRICTED = RESTRICTED
#: task rules whose existence reveals an AML rating
RESTRICTED_TASK_RULES = frozenset({"edd_review"})
#: reason codes of the AML dimension (tiering_core/reasons.py)
AML_REASON_PREFIX = "AML_"


@dataclass(frozen=True)
class Disclosure:
    """How much of the restricted outputs a listing shows: all (``show``) or none."""

    restricted: frozenset[str] = ALWAYS_RESTRICTED
    show: bool = False

    @classmethod
    def of(cls, restricted: Iterable[str], show: bool) -> Disclosure:
        """For a write-back config's ``restricted`` outputs."""
        return cls(ALWAYS_RESTRICTED | frozenset(restricted), show)

    def value(self, name: str, value: Any) -> Any:
        return HIDDEN if not self.show and name in self.restricted else value

    def mapping(self, values: Any) -> Any:
        """A tier mapping (``{"aml_risk": "high", ...}``) with restricted values hidden;
        anything not a mapping as it is."""
        if not isinstance(values, Mapping):
            return values
        return {k: self.value(str(k), v) for k, v in values.items()}

    def hides_rule(self, rule: str | None) -> bool:
        return not self.show and rule in RESTRICTED_TASK_RULES

    def reason_codes(self, codes: Iterable[str]) -> list[str]:
        return [c for c in codes if self.show or not c.startswith(AML_REASON_PREFIX)]
