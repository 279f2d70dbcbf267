"""The override audit row (sync/overrides.py): what it records for an applied, a refused
and an unrelated decision, and that it never keeps the RM's free-text reason."""

from __future__ import annotations

import json
from datetime import date

from sync.overrides import override_trail
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
