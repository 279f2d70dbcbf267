"""Consent: whether the customer has refused personalised marketing.

PIPL Art. 24 (《个人信息保护法》第二十四条): information push and commercial marketing
by automated decision-making must come with an option not aimed at the person's
characteristics, or a convenient way to refuse. A customer whose mapped opt-out field is
true is therefore kept out of every marketing campaign and every marketing task
(``strategy``); service, risk and compliance work is not marketing and goes on. The reason
``CONSENT_NO_MARKETING`` records why. An unknown answer (field not mapped, or empty) is
not a refusal: the bank's consent records decide, not crmtier.
"""

from __future__ import annotations

from tiering_core.columns import BoolArray, Columns
from tiering_core.rules.base import ReasonColumn


def rate(cols: Columns) -> tuple[BoolArray, list[ReasonColumn]]:
    """(opted out, reasons) for a batch."""
    opted_out = cols.flag["marketing_opt_out"] == 1
    return opted_out, [ReasonColumn("CONSENT_NO_MARKETING", opted_out)]
