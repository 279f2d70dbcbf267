"""Operational risk (a customer-level proxy; no regulator defines one, docs/targets.md A6).

Basel loss-event exposure seen from one customer: external fraud (fraud-victim flag),
execution/process problems (expired KYC, failed operations) and service friction (support
tickets). High/medium/low by the policy's thresholds; no ops data at all is ``unrated``.
"""

from __future__ import annotations

import numpy as np

from tiering_core.columns import Columns
from tiering_core.policy import Policy
from tiering_core.rules.base import RISK_LEVELS, UNRATED_RISK, IntArray, ReasonColumn, ge, known

LOW, MEDIUM, HIGH = (RISK_LEVELS.index(x) for x in ("low", "medium", "high"))


def rate(cols: Columns, policy: Policy) -> tuple[IntArray, list[ReasonColumn]]:
    o = policy.ops
    fraud = cols.flag["fraud_victim"] == 1
    kyc = cols.flag["kyc_expired"] == 1
    failed, tickets = cols.number["failed_operations_90d"], cols.number["support_tickets_90d"]
    failed_high, failed_medium = ge(failed, o.failed_high_from), ge(failed, o.failed_medium_from)
    tickets_high = ge(tickets, o.tickets_high_from)
    tickets_medium = ge(tickets, o.tickets_medium_from)
    level = np.zeros(cols.n, dtype=np.int8)
    for fires, lvl in (
        (fraud, RISK_LEVELS.index(o.fraud_victim_level)),
        (kyc, RISK_LEVELS.index(o.kyc_expired_level)),
        (failed_medium | tickets_medium, MEDIUM),
        (failed_high | tickets_high, HIGH),
    ):
        level = np.where(fires, np.maximum(level, lvl), level).astype(np.int8)
    has_data = (
        (cols.flag["fraud_victim"] >= 0)
        | (cols.flag["kyc_expired"] >= 0)
        | known(failed)
        | known(tickets)
    )
    level = np.where(has_data, level, UNRATED_RISK).astype(np.int8)
    reasons = [
        ReasonColumn("OPS_FRAUD_VICTIM", fraud),
        ReasonColumn("OPS_KYC_EXPIRED", kyc),
        ReasonColumn("OPS_FAILED_HIGH", failed_high, failed, float(o.failed_high_from)),
        ReasonColumn(
            "OPS_FAILED", failed_medium & ~failed_high, failed, float(o.failed_medium_from)
        ),
        ReasonColumn("OPS_TICKETS_HIGH", tickets_high, tickets, float(o.tickets_high_from)),
        ReasonColumn(
            "OPS_TICKETS", tickets_medium & ~tickets_high, tickets, float(o.tickets_medium_from)
        ),
        ReasonColumn("OPS_NO_DATA", ~has_data),
    ]
    return level, reasons
