"""What a decision asks of the CRM besides its tier fields, as the sync plans it.

The sync's planner (``sync.planner.plan_wants``) reads of a customer's decision its task
actions, the campaigns it names and the ones it is a member of (with each membership's
dedupe key), and what says whether sales work is withdrawn (its AML rating and reason
codes). ``Wants`` holds exactly that. A batch's decision columns give every customer's
``Wants`` without a decision dict (``DecisionColumns.wants``: the task rules asked about
task candidates alone, a membership's key hashed only for the campaigns a customer is a
member of, about 1.6 of 10 in a generated book); ``wants_of`` reads the same from a whole
decision (``AssessmentData``), as ``crmtier explain`` and the simulation hold one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from tiering_core.models import AssessmentData
from tiering_core.row_reasons import codes_of


class Wants(NamedTuple):
    """One customer's decision as the sync plans its tasks, memberships and closures."""

    id: str
    #: its task actions (plain data, as a decision's ``actions`` hold them), in action order
    tasks: tuple[dict[str, Any], ...]
    #: every campaign the decision names, member or not (each must be mapped or switched
    #: off in the config: the planner refuses one that is neither)
    campaigns: tuple[str, ...]
    #: campaign -> membership dedupe key, for the campaigns it is a member of
    members: Mapping[str, str]
    aml_risk: str
    codes: tuple[str, ...]  # its reason codes, in reason order


def wants_of(assessment: AssessmentData) -> Wants:
    """A whole decision's ``Wants``, read from its actions (a campaign named twice: its
    last action decides, as a list of actions read in order would)."""
    tasks = []
    campaigns = []
    members: dict[str, str] = {}
    for action in assessment["actions"]:
        kind = action["kind"]
        if kind == "task":
            tasks.append(action)
        elif kind == "campaign":
            campaign = action["campaign"]
            campaigns.append(campaign)
            if action["member"]:
                members[campaign] = action["dedupe_key"]
            else:
                members.pop(campaign, None)
    return Wants(
        assessment["id"],
        tuple(tasks),
        tuple(campaigns),
        members,
        assessment["aml_risk"],
        codes_of(assessment["reasons"]),
    )
