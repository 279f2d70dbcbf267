"""The override audit row (sync/overrides.py): what it records for an applied, a refused,
a moot and an unrelated decision, that it never keeps the RM's free-text reason, and
which outcomes are new against the customer's last row."""

from __future__ import annotations

import json
from datetime import date

import pytest

from sync.overrides import is_new, override_trail
from tiering_core.engine import decide
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy

POLICY = load_policy()
AS_OF = date(2026, 11, 28)
OVERRIDE = {
    "value_tier": "private",
    "reason": "Mr Wang's family office",
    "expires": "2027-01-31",
    "approved": True,
    "maker_id": "005RM",
    "checker_id": "005HEAD",
    "proposed_at": "2026-11-20T09:00:00+00:00",
    "approved_at": "2026-11-20T11:00:00+00:00",
}


def profile(**override: object) -> CustomerProfile:
    data: dict[str, object] = {"id": "001A", "kind": "individual", "assets": {"deposits": 100_000}}
    if override:
        data["override"] = override
    return CustomerProfile.model_validate(data)


def test_applied_override_records_maker_checker_and_times() -> None:
    p = profile(**OVERRIDE)
    row = override_trail(p, decide(p, POLICY, AS_OF))
    assert row == {
        "outcome": "applied",
        "cause": None,
        "value_tier": "private",
        "service_tier": None,
        "expires": "2027-01-31",
        "reason_given": True,
        "maker": "005RM",
        "checker": "005HEAD",
        "proposed_at": "2026-11-20T09:00:00+00:00",
        "approved_at": "2026-11-20T11:00:00+00:00",
    }
    assert "Wang" not in json.dumps(row)


def test_refused_override_records_the_cause() -> None:
    p = profile(**{**OVERRIDE, "checker_id": "005RM"})
    row = override_trail(p, decide(p, POLICY, AS_OF))
    assert row is not None
    assert (row["outcome"], row["cause"], row["maker"], row["checker"]) == (
        "refused",
        "self_approved",
        "005RM",
        "005RM",
    )


def test_no_row_without_an_override_or_while_pending() -> None:
    plain = profile()
    assert override_trail(plain, decide(plain, POLICY, AS_OF)) is None
    pending = profile(**{**OVERRIDE, "approved": False})
    assert override_trail(pending, decide(pending, POLICY, AS_OF)) is None


def test_an_override_asking_for_the_tier_the_customer_has_is_moot() -> None:
    """Approved, asking for the value tier the decision gives anyway: nothing happens, so
    no row of its own (``is_new``); not approved: nothing to speak of."""
    p = profile(**{**OVERRIDE, "value_tier": "affluent"})
    decision = decide(p, POLICY, AS_OF)
    assert decision["value_tier"] == "affluent"
    row = override_trail(p, decision)
    assert row is not None and (row["outcome"], row["cause"]) == ("moot", None)
    unapproved = profile(**{**OVERRIDE, "value_tier": "affluent", "approved": False})
    assert override_trail(unapproved, decide(unapproved, POLICY, AS_OF)) is None


APPLIED_ROW = {"outcome": "applied", "cause": None, "value_tier": "private"}
REFUSED_ROW = {"outcome": "refused", "cause": "self_approved", "value_tier": "private"}
MOOT_ROW = {"outcome": "moot", "cause": None, "value_tier": "private"}


@pytest.mark.parametrize(
    ("recorded", "trail", "new"),
    [
        (None, None, False),  # no override, as before
        (None, REFUSED_ROW, True),  # first seen
        (REFUSED_ROW, REFUSED_ROW, False),  # the same, seen again
        (REFUSED_ROW, {**REFUSED_ROW, "cause": "expired"}, True),  # another cause
        (REFUSED_ROW, APPLIED_ROW, True),  # another outcome
        (APPLIED_ROW, {**APPLIED_ROW, "proposed_at": "2026-12-01T09:00:00+00:00"}, True),
        (APPLIED_ROW, None, True),  # its end
        (APPLIED_ROW, MOOT_ROW, False),  # moot: the last row stands
        (None, MOOT_ROW, False),
    ],
)
def test_which_outcomes_are_new(
    recorded: dict[str, object] | None, trail: dict[str, object] | None, new: bool
) -> None:
    assert is_new(recorded, trail) is new
