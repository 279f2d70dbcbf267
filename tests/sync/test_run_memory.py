"""What a run keeps per customer: nothing that grows with the customers it reads unless a
caller asks for it (issue 18: a million-customer run must stay flat in memory).

The per-customer outcome map is kept for callers that read it (the webhook worker, and
``RunOptions.keep_outcomes`` by default); ``crmtier sync`` turns it off and reports counts.
The pseudonym cache is bounded, and a pseudonym is the same whether cached or not.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sync import recorder as recorder_module
from sync.engine import RunOptions
from sync.maybe_made import MaybeMade
from sync.recorder import Recorder
from sync.store import StateStore
from tests.sync.test_write_pipeline import AS_OF, PAGE, PagedCrm, engine_for
from tiering_core.privacy import pseudonym


@pytest.mark.parametrize("keep", [True, False])
def test_a_run_without_outcomes_counts_and_writes_the_same(tmp_path: Path, keep: bool) -> None:
    crm = PagedCrm(pages=3)
    report = engine_for(crm, tmp_path).run(RunOptions(as_of=AS_OF, keep_outcomes=keep))
    assert report.status == "succeeded", report.error
    assert report.counts.read == report.counts.written == 3 * PAGE
    assert len(crm.tiers) == 3 * PAGE
    if keep:
        assert report.outcomes == dict.fromkeys(crm.ids, "written")
    else:
        assert report.outcomes == {}
    again = engine_for(crm, tmp_path).run(RunOptions(as_of=AS_OF, keep_outcomes=keep))
    assert again.counts.written == 0  # its own echo: the committed state is the same


def test_the_pseudonym_cache_is_bounded_and_names_every_customer_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recorder_module, "_REF_CACHE", 5)
    key = b"k" * 32
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    rec = Recorder(
        store,
        "paged:Customer",
        "run-1",
        key=key,
        audit_keys=store.audit_keys,
        trigger="sync",
        actor="test",
        retry_attempts=3,
        decisions={},
        maybe_made=MaybeMade("run-1"),
    )
    ids = [f"C{i:03d}" for i in range(23)]
    for cid in ids + ids[::-1]:
        assert rec.ref(cid) == pseudonym(cid, key)
        assert len(rec._refs) <= 5
