"""``crmtier explain`` under a tier override: the hysteresis state shows what the
customer's own data earns beside the override's tier (docs/overrides.md, "What an
override changes"; docs/simulate-explain.md).

An examiner asks of an overridden customer "what would the customer be without the
override": the qualified tier, which needs and channel follow and which the store keeps
apart while an override makes it differ. The explanation used to show only the committed
(the override's) tier and its clock, which an override keeps still.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from connectors.mapping import load_default_mapping
from crmtier.explain import ExplainContext, explain
from sync.disclosure import Disclosure
from sync.inputs import StoredCustomer
from sync.planner import Known
from sync.state import CustomerState
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

AS_OF = date(2026, 11, 30)
POLICY = load_policy()
GRACE = POLICY.value.grace_days
#: Proposed by one RM, approved by another, a quarter long: it lifts an affluent customer.
OVERRIDE = {
    "value_tier": "private",
    "reason": "family office consolidating its deposits here",
    "expires": "2027-02-15",
    "approved": True,
    "maker_id": "005RM1",
    "checker_id": "005HEAD",
    "proposed_at": "2026-11-19T16:00:00",
    "approved_at": "2026-11-20T09:30:00",
}
KEPT = {"value_tier": "private", "qualified_value_tier": "affluent"}
WEALTH_FELL = date(2026, 11, 1)  # own assets fell below wealth's buffer on this day
#: The hysteresis keys an explanation had before the qualified tier was kept.
PLAIN = {
    "previous_value_tier",
    "previous_assessed_at",
    "below_floor_since",
    "downgrade_due",
    "buffer",
    "grace_days",
}


def _explained(override: dict[str, Any] | None, tiers: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "001C1",
        "kind": "individual",
        "assets": {"deposits": 100_000, "investments": 0, "insurance": 0},
        "aml": {"sanctions_hit": False, "pep": False},
    }
    if override is not None:
        data["override"] = override
    profile = CustomerProfile.model_validate(data)
    state = CustomerState(profile.id, "p-1", tiers=tiers, assessed_at=AS_OF - timedelta(days=1))
    stored = StoredCustomer(
        profile.id, "p-1", profile.model_dump_json(), {}, AS_OF.isoformat(), state
    )
    mapping = load_default_mapping("salesforce")
    ctx = ExplainContext(POLICY, mapping.mapping, mapping.writeback, Disclosure(), "en")
    return explain(stored, Known(), ctx, AS_OF)


@pytest.mark.parametrize(
    ("committed", "carried", "own", "since"),
    [
        # the override's first run: nothing was kept apart before it
        ({"value_tier": "affluent"}, None, "affluent", None),
        # later runs: the store kept the qualified tier apart
        (KEPT, "affluent", "affluent", None),
        # own assets fell from wealth under the override: the qualified tier's own grace
        (
            {
                "value_tier": "private",
                "qualified_value_tier": "wealth",
                "qualified_below_floor_since": WEALTH_FELL.isoformat(),
            },
            "wealth",
            "wealth",
            WEALTH_FELL,
        ),
    ],
    ids=["first run", "kept apart", "own grace running"],
)
def test_the_hysteresis_shows_the_tier_the_customer_qualifies_for(
    committed: dict[str, str], carried: str | None, own: str, since: date | None
) -> None:
    out = _explained(OVERRIDE, {"needs_tier": "basic", **committed})
    assert out["tiers"]["value_tier"] == "private"  # the override's tier is written
    h = out["hysteresis"]
    assert h["previous_value_tier"] == committed["value_tier"]
    assert h["below_floor_since"] is None  # an applied override keeps its clock still
    assert h["previous_qualified_tier"] == carried
    assert h["qualified_value_tier"] == own
    assert h["qualified_below_floor_since"] == (since.isoformat() if since else None)
    due = since + timedelta(days=GRACE) if since else None
    assert h["qualified_downgrade_due"] == (due.isoformat() if due else None)


def test_without_an_override_the_hysteresis_is_as_before() -> None:
    out = _explained(None, {"value_tier": "affluent", "needs_tier": "basic"})
    assert set(out["hysteresis"]) == PLAIN


def test_an_override_gone_shows_the_two_agreeing_again() -> None:
    """The store still carries a qualified tier from the override's last run; this
    decision has none apart (no override): the qualified tier is the value tier now."""
    committed = {"value_tier": "affluent", "qualified_value_tier": "affluent"}
    h = _explained(None, committed)["hysteresis"]
    assert h["previous_qualified_tier"] == "affluent"
    assert (h["qualified_value_tier"], h["qualified_below_floor_since"]) == ("affluent", None)
