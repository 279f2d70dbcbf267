"""The typed records between the sync engine's parts: the stored pending decision keeps the
layout existing state stores hold, outcomes keep the strings the webhook worker and its
metrics report, and a pre-decision adjustment changes what a run writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from sync.engine import RunOptions, SyncEngine
from sync.planning import Assessed
from sync.records import Outcome, PendingDecision, Skip
from sync.settings import SyncSettings
from sync.store import StateStore
from tests.sync.test_sync_stateful import WRITEBACK
from tests.sync.test_write_pipeline import PAGE, PagedCrm, fields_only

#: a ``customers.pending`` value as an earlier version of the engine stored it
STORED: dict[str, Any] = {
    "tiers": {"value_tier": "private", "needs_tier": "basic", "status": "rated"},
    "fields": {"value_tier": "private", "next_review": "2027-05-02", "tags": ["a", "b"]},
    "assessed_at": "2026-05-02",
    "below_floor_since": None,
    "reason_codes": ["VAL_AUM_PRIVATE", "VAL_UPGRADE"],
    "policy_version": "default@1",
    "input_hash": "ab" * 32,
    "run_id": "r1",
    "trigger": "webhook",
    "source_event_id": "evt-1",
}


@pytest.mark.parametrize(
    "stored",
    [
        STORED,
        {**STORED, "below_floor_since": "2026-01-31", "source_event_id": None},
        {**STORED, "trigger": "sync", "reason_codes": [], "fields": {}},
    ],
)
def test_a_stored_pending_decision_reads_back_and_writes_the_same_json(
    stored: dict[str, Any],
) -> None:
    decision = PendingDecision.from_json(stored)
    assert decision is not None
    assert decision.to_json() == stored
    assert list(decision.to_json()) == list(STORED)  # the same keys, in the same order


def test_stored_dates_are_dates_in_the_record() -> None:
    decision = PendingDecision.from_json({**STORED, "below_floor_since": "2026-01-31"})
    assert decision is not None
    assert decision.assessed_at == date(2026, 5, 2)
    assert decision.below_floor_since == date(2026, 1, 31)


@pytest.mark.parametrize("stored", [None, {}])
def test_no_stored_decision_is_none(stored: dict[str, Any] | None) -> None:
    assert PendingDecision.from_json(stored) is None


def test_a_decision_missing_later_keys_reads_with_them_empty() -> None:
    old = {k: v for k, v in STORED.items() if k not in ("source_event_id", "trigger")}
    decision = PendingDecision.from_json(old)
    assert decision is not None
    assert (decision.trigger, decision.source_event_id) == (None, None)
    assert decision.reason_codes == ("VAL_AUM_PRIVATE", "VAL_UPGRADE")


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Outcome.WRITTEN, "written"),
        (Outcome.UNCHANGED, "unchanged"),
        (Outcome.DEAD_LETTERED, "dead_lettered"),
        (Outcome.DEFERRED, "deferred"),
        (Outcome.WOULD_WRITE, "would_write"),
        (Outcome.ASSESS_ERROR, "skipped:assess_error"),
        (Skip.ALREADY_SYNCED, "already_synced"),
        (Skip.DUPLICATE_IN_PAGE, "duplicate_in_page"),
        (Skip.ASSESS_ERROR, "assess_error"),
        (Skip.SUPERSEDED, "superseded"),
        (Skip.DEFERRED, "deferred_to_next_run"),
    ],
)
def test_outcomes_and_skips_are_the_strings_reports_show(value: str, text: str) -> None:
    assert value == text and f"{value}" == text


def test_a_pre_decision_adjustment_changes_what_the_run_writes(tmp_path: Path) -> None:
    """An adjustment sees each page's assessments before planning; here it rates every
    customer ``private``, and the CRM is written ``private`` for all of them."""
    seen: list[int] = []

    def everyone_private(pairs: list[Assessed]) -> list[Assessed]:
        seen.append(len(pairs))
        for _, assessment in pairs:
            assessment["actions"] = tuple(
                {**a, "value": "private"} if a.get("field") == "value_tier" else a
                for a in assessment["actions"]
            )
        return pairs

    def assess(profiles: Sequence[Any]) -> list[Any]:
        return fields_only(profiles)

    crm = PagedCrm(pages=1)
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        engine = SyncEngine(
            store,
            crm,
            WRITEBACK,
            assess,
            stream="paged:Customer",
            pseudonym_key=b"k" * 32,
            settings=SyncSettings(),
            policy_version="memory@1",
            adjustments=[everyone_private],
        )
        report = engine.run(RunOptions(as_of=date(2026, 5, 2)))
    finally:
        store.close()
    assert report.status == "succeeded", report.error
    assert seen == [PAGE]
    assert set(crm.tiers.values()) == {"private"} and len(crm.tiers) == PAGE
