"""Issue 16 item 2 end to end: a sanctions hit withdraws, in the run that sees it, the open
sales tasks crmtier made in earlier runs; the run after writes nothing.

``crmtier sync`` as a subprocess against each CRM's sandbox over HTTPS: run 1 makes a sales
task, the customer is then sanctioned in the CRM, run 2 closes that task and creates the
same-day sanctions review (the closed tasks no longer count against their owners' caps),
run 3 writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync import schema
from sync.planner import SALES_TASK_RULES
from sync.store import StateStore
from tests.sync.conftest import Harness, _set_keys, available_crms, start_sandbox

CUSTOMERS = 60
AS_OF = datetime.now(UTC).date().isoformat()


@pytest.fixture(params=available_crms())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    sandbox = start_sandbox(request.param, tmp_path / "sandbox", CUSTOMERS)
    request.addfinalizer(sandbox.stop)
    return Harness(sandbox, tmp_path / "sandbox")


def _made_tasks(harness: Harness) -> list[tuple[str, str, str, bool]]:
    """(customer, rule, key, active) of every task in the store."""
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            t = schema.side_effects
            rows = conn.execute(
                sa.select(t.c.customer_id, t.c.rule, t.c.key, t.c.active).where(t.c.kind == "task")
            ).all()
    finally:
        store.close()
    return [(r.customer_id, r.rule, r.key, bool(r.active)) for r in rows]


def _counted_open(harness: Harness) -> set[str]:
    """Keys of the tasks counted open against their owners' caps (``sync.taskbudget``)."""
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            t = schema.task_queue
            return set(conn.execute(sa.select(t.c.key).where(t.c.status == "made")).scalars())
    finally:
        store.close()


def _closed_audit_rows(harness: Harness) -> list[dict[str, object]]:
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            a = schema.audit
            return [
                dict(new)
                for new in conn.execute(
                    sa.select(a.c.new).where(a.c.event == "task_closed")
                ).scalars()
            ]
    finally:
        store.close()


def test_a_sanctions_hit_closes_earlier_sales_tasks_once(harness: Harness) -> None:
    sb = harness.sandbox
    first = harness.run("--as-of", AS_OF)
    assert first.returncode == 0, (first.report, first.stderr[-2000:])
    sales = [(c, r, k) for c, r, k, active in _made_tasks(harness) if r in SALES_TASK_RULES]
    assert sales and all(active for *_, active in _made_tasks(harness))
    other = {c for c, r, _, _ in _made_tasks(harness) if r not in SALES_TASK_RULES}
    # one whose other work (complaint, credit, data) must stay open, when there is one
    cid = min((c for c, _, _ in sales), key=lambda c: (c not in other, c))
    withdrawn = {k: r for c, r, k in sales if c == cid}
    kept = {k for c, _, k, _ in _made_tasks(harness) if c == cid} - set(withdrawn)
    assert {t.external_id for t in sb.tasks() if t.open} >= set(withdrawn)
    assert _counted_open(harness) >= set(withdrawn)  # every sales rule is bounded

    sb.edit_customer(cid, {"aml.sanctions_hit": True})
    dry = harness.run("--dry-run", "--as-of", AS_OF)
    assert dry.returncode == 0, dry.stderr[-2000:]
    assert dry.report is not None
    for rule in set(withdrawn.values()):
        closing = sum(1 for r in withdrawn.values() if r == rule)
        assert dry.report["totals"]["task"][rule]["closed"] == closing, dry.report["totals"]
    calls = sb.write_calls()

    second = harness.run("--as-of", AS_OF)
    assert second.returncode == 0, (second.report, second.stderr[-2000:])
    assert second.report is not None
    assert second.report["counts"]["writes"]["task_close"] == len(withdrawn)
    open_keys = {t.external_id for t in sb.tasks() if t.open}
    assert not open_keys & set(withdrawn)  # closed in the CRM
    assert kept <= open_keys  # compliance, complaint, credit, data work stays open
    made = {(c, r, k): active for c, r, k, active in _made_tasks(harness)}
    assert [k for (c, r, k), active in made.items() if c == cid and r == "sanctions_review"]
    assert all(not made[cid, r, k] for k, r in withdrawn.items())
    assert not _counted_open(harness) & set(withdrawn)  # closed: off the owners' caps
    assert sorted((row["rule"], row["key"]) for row in _closed_audit_rows(harness)) == sorted(
        (r, k) for k, r in withdrawn.items()
    )  # one audit row per closure
    # every write of the run, closures included, in at most one call per item
    assert 1 <= sb.write_calls() - calls <= sum(second.report["counts"]["writes"].values())

    after = sb.write_calls()
    third = harness.run("--as-of", AS_OF)
    assert third.returncode == 0, (third.report, third.stderr[-2000:])
    assert third.report is not None
    assert sb.write_calls() == after  # nothing is closed twice
    assert third.report["counts"]["written"] == 0
    assert len(_closed_audit_rows(harness)) == len(withdrawn)
    assert harness.audit_verify().returncode == 0


@pytest.mark.parametrize("how", ["switched-off", "only-fields"])
def test_switching_tasks_and_memberships_off_still_withdraws_what_crmtier_made(
    harness: Harness, how: str
) -> None:
    """An admin turns ``tasks`` and ``campaign_memberships`` off after crmtier made sales
    tasks and memberships (or runs ``sync --only fields``): a later sanctions hit still
    closes the customer's sales tasks and removes its memberships (docs/policy.md), though
    no task or membership is made any more (not even the sanctions review: tasks are off).
    Nothing else but fields is written: a customer without restrictions that holds
    memberships and whose assessment no longer wants them keeps them (with both switches
    on it would leave its campaigns)."""
    sb = harness.sandbox
    first = harness.run("--as-of", AS_OF)
    assert first.returncode == 0, (first.report, first.stderr[-2000:])
    assert first.report is not None
    sales = [(c, r, k) for c, r, k, _ in _made_tasks(harness) if r in SALES_TASK_RULES]
    members = {c for c, _ in sb.memberships()}
    cid = min((c for c, _, _ in sales), key=lambda c: (c not in members, c))
    withdrawn = {k: r for c, r, k in sales if c == cid}
    assert {t.external_id for t in sb.tasks() if t.open} >= set(withdrawn)
    assert cid in members  # a customer with both to withdraw
    made_before = len(_made_tasks(harness))
    poorer = min(members - {cid})  # unrestricted, holds memberships, to lose its wealth
    kept = {m for m in sb.memberships() if m[0] != cid}

    run = ["--as-of", AS_OF]
    if how == "switched-off":
        harness.text = _set_keys(
            harness.text, "writeback", {"tasks": False, "campaign_memberships": False}
        )
        harness.config.write_text(harness.text, "utf-8")
    else:
        run += ["--only", "fields"]
    sb.edit_customer(cid, {"aml.sanctions_hit": True})
    sb.edit_customer(poorer, {"assets.deposits": 0, "aum_avg_3m": 0})
    second = harness.run(*run)
    assert second.returncode == 0, (second.report, second.stderr[-2000:])
    assert second.report is not None
    writes = second.report["counts"]["writes"]
    # the withdrawal gate asks what the gate of both kinds on asked, charged to the minimum
    on_gate = first.report["min_calls"]["start_checks"]
    assert second.report["min_calls"]["start_checks"] == on_gate > 0
    assert writes["task_close"] == len(withdrawn)
    assert not {t.external_id for t in sb.tasks() if t.open} & set(withdrawn)
    assert not [c for c, _ in sb.memberships() if c == cid]  # out of every campaign
    assert {m for m in sb.memberships() if m[0] != cid} == kept  # nobody else's changed
    assert not set(writes) - {"field_update", "task_close", "membership"}, writes
    made = _made_tasks(harness)
    assert len(made) == made_before  # tasks are off: no sanctions review, nothing new
    assert all(not active for c, _, k, active in made if k in withdrawn)
    assert sorted((row["rule"], row["key"]) for row in _closed_audit_rows(harness)) == sorted(
        (r, k) for k, r in withdrawn.items()
    )

    if how == "switched-off":
        after = sb.write_calls()
        third = harness.run("--as-of", AS_OF)
        assert third.returncode == 0, (third.report, third.stderr[-2000:])
        assert sb.write_calls() == after  # nothing withdrawn twice
