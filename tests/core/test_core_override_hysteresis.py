"""An applied override and the value rule's hysteresis (docs/overrides.md, "Expiry").

The sync passes the tier it last wrote (the override's, once applied) as
``previous.value_tier`` and the stored ``below_floor_since``. On the next run the
hysteresis holds the customer at that tier; the override must still be what decides
(``MANUAL_OVERRIDE``), the grace clock must not start while it holds, and once it has
expired the customer falls back through the grace counted from the expiry. One table,
run through ``decide_batch`` a customer at a time and all together (the vectorised step
must decide a row the same whatever else is in the batch).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from core_support import AS_OF
from test_core_override import GOOD, POLICY, customer

from tiering_core.engine import decide_batch
from tiering_core.models import AssessmentData

EXPIRES = date.fromisoformat(GOOD["expires"])
AFTER = EXPIRES + timedelta(days=1)
GRACE = POLICY.value.grace_days
#: What the sync passes once it has written the override's tier (the clock was cleared).
WRITTEN = {"value_tier": "private", "assessed_at": AS_OF.isoformat()}
HELD = {"VAL_HELD_BUFFER", "VAL_HELD_GRACE", "VAL_DOWNGRADE"}

# name, override, customer changes, as of, then: value tier, the override's reason code
# and value (None: none), below_floor_since
CASES: list[tuple[str, dict[str, Any], dict[str, Any], date, str, tuple[str, Any] | None, Any]] = [
    (
        "first application",
        GOOD,
        {"previous": {"value_tier": "affluent"}},
        AS_OF,
        "private",
        ("MANUAL_OVERRIDE", "private"),
        None,
    ),
    (
        "re-tier the same day",
        GOOD,
        {"previous": WRITTEN},
        AS_OF,
        "private",
        ("MANUAL_OVERRIDE", "private"),
        None,
    ),
    (
        "re-tier the next day",
        GOOD,
        {"previous": WRITTEN},
        AS_OF + timedelta(days=1),
        "private",
        ("MANUAL_OVERRIDE", "private"),
        None,
    ),
    (
        "on its expiry day (the last day it holds)",
        GOOD,
        {"previous": WRITTEN},
        EXPIRES,
        "private",
        ("MANUAL_OVERRIDE", "private"),
        None,
    ),
    (
        "the day after expiry: the grace starts then",
        GOOD,
        {"previous": WRITTEN},
        AFTER,
        "private",
        ("OVERRIDE_REFUSED", "expired"),
        AFTER,
    ),
    (
        "a grace period after expiry: falls back",
        GOOD,
        {"previous": {**WRITTEN, "below_floor_since": AFTER.isoformat()}},
        AFTER + timedelta(days=GRACE),
        "affluent",
        ("OVERRIDE_REFUSED", "expired"),
        None,
    ),
    (
        "moot: it asks for the tier the customer qualifies for",
        GOOD,
        {"assets": {"deposits": 9e6}, "previous": WRITTEN},
        AS_OF,
        "private",
        None,
        None,
    ),
    (
        "a clock that ran before the override is stopped, not resumed",
        GOOD,
        {"previous": {**WRITTEN, "below_floor_since": (AS_OF - timedelta(days=10)).isoformat()}},
        AS_OF,
        "private",
        ("MANUAL_OVERRIDE", "private"),
        None,
    ),
]


def _override_reason(d: AssessmentData) -> tuple[str, Any] | None:
    found = [
        (r["code"], r["value"])
        for r in d["reasons"]
        if r["code"] in ("MANUAL_OVERRIDE", "MANUAL_OVERRIDE_SERVICE", "OVERRIDE_REFUSED")
    ]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize(
    ("override", "changes", "as_of", "tier", "reason", "since"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_an_applied_override_decides_and_stops_the_clock(
    override: dict[str, Any],
    changes: dict[str, Any],
    as_of: date,
    tier: str,
    reason: tuple[str, Any] | None,
    since: date | None,
) -> None:
    [d] = decide_batch([customer(override, **changes)], POLICY, as_of)
    got = (d["value_tier"], _override_reason(d), d["below_floor_since"])
    assert got == (tier, reason, since)
    if reason is not None and reason[0] == "MANUAL_OVERRIDE":
        assert not HELD & {r["code"] for r in d["reasons"]}


@pytest.mark.parametrize("as_of", sorted({c[3] for c in CASES}))
def test_a_row_is_decided_alike_alone_and_in_the_batch(as_of: date) -> None:
    batch = [customer(c[1], **c[2]) for c in CASES]
    alone = [decide_batch([p], POLICY, as_of)[0] for p in batch]
    assert list(decide_batch(batch, POLICY, as_of)) == alone
