"""Feedback signals: open complaints and detractors, which drive service tasks.

Not a tier of its own. The canonical ``nps`` is one customer's 0-10 answer to "how likely
are you to recommend us" (the policy's ``feedback.nps_min..nps_max``): 0-6 is a detractor,
7-8 passive, 9-10 a promoter, so the default detractor line is 6 and a promoter never gets
a service-recovery task.
"""

from __future__ import annotations

from dataclasses import dataclass

from tiering_core.columns import BoolArray, Columns
from tiering_core.policy import Policy
from tiering_core.rules.base import ReasonColumn, gt, le


@dataclass(frozen=True)
class FeedbackOutcome:
    open_complaint: BoolArray
    detractor: BoolArray
    reasons: list[ReasonColumn]


def rate(cols: Columns, policy: Policy) -> FeedbackOutcome:
    f = policy.feedback
    x = cols.number
    complaint = gt(x["open_complaints"], 0)
    nps_low = le(x["nps"], f.detractor_nps_max)
    csat_low = le(x["csat"], f.detractor_csat_max)
    return FeedbackOutcome(
        complaint,
        nps_low | csat_low,
        [
            ReasonColumn("FB_OPEN_COMPLAINT", complaint, x["open_complaints"]),
            ReasonColumn("FB_DETRACTOR_NPS", nps_low, x["nps"], f.detractor_nps_max),
            ReasonColumn("FB_LOW_CSAT", csat_low, x["csat"], f.detractor_csat_max),
        ],
    )
