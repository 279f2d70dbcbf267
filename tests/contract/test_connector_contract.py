"""The contract every connector passes against its own sandbox, over real HTTPS with the
real client library. Parametrised over the registered CRM plugins and the test-only
in-memory CRM (tests/contract/memory_plugin, registered by conftest.py), which must pass it
like the real ones (docs/adding-a-crm.md). Differences between CRMs come from
``capabilities`` only."""

from __future__ import annotations

import logging
import math
from datetime import date

import pytest

from connectors.calltally import CallTally, counting
from connectors.contract import (
    CrmRecord,
    Cursor,
    FieldUpdate,
    MembershipChange,
    TaskClose,
    TaskUpsert,
    WritePlan,
)
from connectors.registry import kinds, plugin
from connectors.settings import load_crm_settings
from crmtier.config import load_config
from tests.contract.conftest import MEMORY
from tiering_core.models import TaskAction

CRMS = sorted({*kinds(), MEMORY})


def read_all(connector, since=None) -> list[CrmRecord]:
    return [r for page in connector.read_changed(since) for r in page.records]


@pytest.fixture(params=CRMS)
def crm(request) -> str:
    return request.param


@pytest.fixture
def setup(crm, sandbox_factory, connect):
    sandbox = sandbox_factory(crm, customers=30)
    return sandbox, connect(sandbox)


def test_reads_page_through_everything_once_in_order(crm, sandbox_factory, connect):
    """Every customer comes exactly once, in (modstamp, id) order, in pages of page_size."""
    sandbox = sandbox_factory(crm, customers=0)
    connector = connect(sandbox)
    n = 2 * connector.capabilities.page_size + 7
    sandbox.seed(n)
    pages = list(connector.read_changed(None))
    records = [r for p in pages for r in p.records]
    assert len(records) == n
    assert len({r.profile.id for r in records}) == n
    assert [r.cursor for r in records] == sorted(r.cursor for r in records)
    assert len(pages) == math.ceil(n / connector.capabilities.page_size)
    assert all(len(p.records) <= connector.capabilities.page_size for p in pages)


def test_cursor_resume_is_inclusive_and_breaks_ties_by_id(setup):
    """Resuming from a record's cursor yields that record and everything after, nothing
    before, even when the next record shares its modstamp."""
    _, connector = setup
    records = read_all(connector)
    tied = next(i for i in range(1, len(records)) if records[i].modstamp == records[i - 1].modstamp)
    resumed = read_all(connector, records[tied].cursor)
    assert [r.profile.id for r in resumed] == [r.profile.id for r in records[tied:]]
    later = read_all(connector, Cursor(records[-1].modstamp, records[-1].profile.id))
    assert [r.profile.id for r in later] == [records[-1].profile.id]


def test_fetch_returns_existing_ids_only(setup, crm):
    """Fetch by ids returns current records of the ids that exist."""
    _, connector = setup
    ids = [r.profile.id for r in read_all(connector)[:3]]
    fetched = connector.fetch([*ids, plugin(crm).absent_id])
    assert sorted(r.profile.id for r in fetched) == sorted(ids)


def test_field_writes_round_trip(setup):
    """Written tier fields are what the CRM then holds, and what the next read reports as
    ``current``."""
    sandbox, connector = setup
    ids = [r.profile.id for r in read_all(connector)[:3]]
    fields = {"value_tier": "wealth", "value_score": 71.5, "next_review": date(2027, 3, 1)}
    results = connector.apply(WritePlan(field_updates=tuple(FieldUpdate(i, fields) for i in ids)))
    assert [(r.kind, r.key, r.ok) for r in results] == [("field_update", i, True) for i in ids]
    for i in ids:
        written = sandbox.written(i)
        assert {k: written[k] for k in fields} == fields
    current = {r.profile.id: r.current for r in connector.fetch(ids)}
    assert all(current[i]["value_tier"] == "wealth" for i in ids)


def _task(customer: str, key: str) -> TaskUpsert:
    return TaskUpsert(
        customer,
        TaskAction(
            rule="rm_call",
            subject="Call about tier upgrade",
            priority="high",
            due=date(2027, 1, 15),
            dedupe_key=key,
        ),
    )


def test_tasks_are_idempotent_on_rerun(setup):
    """Applying the same task plan twice leaves one task per dedupe key."""
    sandbox, connector = setup
    ids = [r.profile.id for r in read_all(connector)[:2]]
    plan = WritePlan(tasks=tuple(_task(i, f"rm_call:{i}:2027Q1") for i in ids))
    assert all(r.ok for r in connector.apply(plan))
    assert all(r.ok for r in connector.apply(plan))
    tasks = sandbox.tasks()
    assert sorted(t.external_id for t in tasks) == sorted(f"rm_call:{i}:2027Q1" for i in ids)
    assert {t.customer_id for t in tasks} == set(ids)


def test_a_held_task_is_not_rewritten(setup):
    """A task sent again (``TaskUpsert.resend``: a lost answer, a crash, planned while in
    doubt) whose key the CRM holds is left exactly as the relationship manager has it: the
    RM's subject and due date stand, even against a plan with other ones, the task answers
    ok, and no write call is made (docs/adding-a-crm.md)."""
    sandbox, connector = setup
    ids = [r.profile.id for r in read_all(connector)[:2]]
    key, absent = f"rm_call:{ids[0]}:2027Q1", f"rm_call:{ids[1]}:2027Q1"
    made = _task(ids[0], key)
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(made,))))
    sandbox.reschedule_task(key, "Called: ring back after the rates", date(2027, 2, 26))
    before = {t.external_id: t for t in sandbox.tasks()}
    calls = sandbox.write_calls()
    planned_anew = made.task.model_copy(update={"subject": "Call again", "due": date(2027, 1, 9)})
    again = TaskUpsert(ids[0], planned_anew, resend=True)
    assert [(r.kind, r.key, r.ok) for r in connector.apply(WritePlan(tasks=(again,)))] == [
        ("task", key, True)
    ]
    assert {t.external_id: t for t in sandbox.tasks()} == before
    assert (before[key].subject, before[key].due) == (
        "Called: ring back after the rates",
        "2027-02-26",
    )
    assert sandbox.write_calls() == calls
    # an absent key sent again is made, as a first send is
    never_arrived = TaskUpsert(ids[1], _task(ids[1], absent).task, resend=True)
    assert [r.ok for r in connector.apply(WritePlan(tasks=(never_arrived,)))] == [True]
    assert {t.external_id for t in sandbox.tasks()} == {key, absent}


def test_a_task_crmtier_made_can_be_closed_once_and_again(setup):
    """Closing one of crmtier's tasks by its key closes that task alone, in one write
    batch; closing it again is fine and leaves it closed."""
    sandbox, connector = setup
    ids = [r.profile.id for r in read_all(connector)[:2]]
    keys = [f"corporate_banking:{i}:2027Q1" for i in ids]
    made = WritePlan(tasks=tuple(_task(i, k) for i, k in zip(ids, keys, strict=True)))
    assert all(r.ok for r in connector.apply(made))
    close = WritePlan(task_closes=(TaskClose(ids[0], keys[0], "corporate_banking"),))
    for _ in range(2):
        results = connector.apply(close)
        assert [(r.kind, r.key, r.ok) for r in results] == [("task_close", keys[0], True)]
    open_keys = {t.external_id for t in sandbox.tasks() if t.open}
    assert keys[0] not in open_keys
    assert keys[1] in open_keys


#: A closure plan's three cases (REC1-REC3): the task is open, already closed, or not in
#: the CRM at all (never made, a create that never arrived, or deleted by an RM).
CLOSE_CASES = ("open", "closed", "absent")


def test_closing_closes_only_tasks_the_crm_holds(setup):
    """One closure plan over an open task, an already-closed one and a key the CRM does
    not hold: every item answers ok (the absent key says it is ``absent``: a task whose
    making went unanswered stays in doubt), the open task is closed, the closed one stays
    closed, and the absent key creates no record (an upsert by external id would make a
    bare completed task) and costs no write call of its own."""
    sandbox, connector = setup
    ids = [r.profile.id for r in read_all(connector)[:3]]
    keys = {case: f"corporate_banking:{i}:2027Q1" for case, i in zip(CLOSE_CASES, ids, strict=True)}
    made = WritePlan(tasks=(_task(ids[0], keys["open"]), _task(ids[1], keys["closed"])))
    assert all(r.ok for r in connector.apply(made))
    closed = WritePlan(task_closes=(TaskClose(ids[1], keys["closed"], "corporate_banking"),))
    assert all(r.ok for r in connector.apply(closed))
    before = {t.external_id: t for t in sandbox.tasks()}
    calls = sandbox.write_calls()
    plan = WritePlan(
        task_closes=tuple(
            TaskClose(i, keys[case], "corporate_banking")
            for case, i in zip(CLOSE_CASES, ids, strict=True)
        )
    )
    results = connector.apply(plan)
    assert [(r.kind, r.key, r.ok, r.absent) for r in results] == [
        ("task_close", keys[case], True, case == "absent") for case in CLOSE_CASES
    ]
    # a sandbox lists a withdrawn task as closed, or not at all (FXiaoke's invalidated)
    after = {t.external_id: t for t in sandbox.tasks()}
    assert set(after) <= set(before) and keys["absent"] not in after
    assert not any(after[k].open for k in (keys["open"], keys["closed"]) if k in after)
    # the open task's closure alone is written: one call, none for the others
    assert sandbox.write_calls() - calls == 1


def test_memberships_are_idempotent_and_removable(setup):
    """Adding twice makes one membership; removing takes it away; removing again is fine."""
    sandbox, connector = setup
    if connector.capabilities.campaign_member_object is None:
        pytest.skip("this CRM has no campaign membership")
    ids = [r.profile.id for r in read_all(connector)[:2]]
    campaign = sorted(connector.writeback.campaigns)[0]
    add = WritePlan(
        memberships=tuple(MembershipChange(i, campaign, True, f"{campaign}:{i}") for i in ids)
    )
    assert all(r.ok for r in connector.apply(add))
    assert all(r.ok for r in connector.apply(add))
    assert {(i, campaign) for i in ids} <= sandbox.memberships()
    remove = WritePlan(
        memberships=(MembershipChange(ids[0], campaign, False, f"{campaign}:{ids[0]}"),)
    )
    assert all(r.ok for r in connector.apply(remove))
    assert all(r.ok for r in connector.apply(remove))
    assert (ids[0], campaign) not in sandbox.memberships()
    assert (ids[1], campaign) in sandbox.memberships()


def test_a_member_added_by_hand_counts_as_made_and_is_removed(setup):
    """A relationship manager put customers in a campaign by hand: the member carries no
    crmtier key. crmtier's add of them is counted as made (no second membership, no
    error), and its removal (a sanctions hit's: docs/policy.md) takes them out of the
    campaign: a removal that looked for crmtier's key alone found nothing, answered
    success, and left a sanctioned customer in a VIP campaign."""
    sandbox, connector = setup
    if connector.capabilities.campaign_member_object is None:
        pytest.skip("this CRM has no campaign membership")
    records = read_all(connector)
    kinds = {r.profile.kind: r.profile.id for r in records}  # one of each kind there is
    ids = sorted(kinds.values())
    campaign = sorted(connector.writeback.campaigns)[0]
    for i in ids:
        sandbox.add_member_by_hand(i, campaign)
    plan = tuple(MembershipChange(i, campaign, True, f"{campaign}:{i}") for i in ids)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=plan)))
    assert {(i, campaign) for i in ids} <= sandbox.memberships()
    leave = tuple(MembershipChange(i, campaign, False, f"{campaign}:{i}") for i in ids)
    assert all(r.ok for r in connector.apply(WritePlan(memberships=leave)))
    assert not sandbox.memberships() & {(i, campaign) for i in ids}


def test_per_record_errors_are_results(setup, crm):
    """One bad record fails alone, as a result; the others are written."""
    sandbox, connector = setup
    ids = [r.profile.id for r in read_all(connector)[:2]]
    plan = WritePlan(
        field_updates=(
            FieldUpdate(ids[0], {"value_tier": "private"}),
            FieldUpdate(plugin(crm).absent_id, {"value_tier": "private"}),
            FieldUpdate(ids[1], {"value_tier": "private"}),
        )
    )
    results = connector.apply(plan)
    assert [r.ok for r in results] == [True, False, True]
    assert results[1].error_code
    assert sandbox.written(ids[0])["value_tier"] == "private"


def test_empty_plan_makes_no_write_calls(setup):
    sandbox, connector = setup
    before = sandbox.write_calls()
    assert connector.apply(WritePlan()) == []
    assert sandbox.write_calls() == before


def test_malformed_crm_record_is_a_dq_issue_not_a_failed_page(setup):
    """Text in a numeric CRM field comes back as a DQ issue on that customer only."""
    sandbox, connector = setup
    records = read_all(connector)
    victim = records[5].profile.id
    sandbox.edit_customer(victim, {"activity.transactions_90d": "N/A"})
    after = {r.profile.id: r for r in read_all(connector)}
    assert len(after) == len(records)
    issues = after[victim].dq_issues
    assert any(i.field == "activity.transactions_90d" for i in issues)
    assert (
        after[victim].profile.activity is None
        or after[victim].profile.activity.transactions_90d is None
    )


def test_check_passes_on_the_sandbox_default_setup(setup):
    _, connector = setup
    checks = connector.check()
    assert checks
    failed = [c for c in checks if not c.ok and c.severity == "error"]
    assert failed == []


def test_no_secret_in_repr_or_str(crm, sandbox_factory, connect):
    sandbox = sandbox_factory(crm, customers=1)
    connector = connect(sandbox)
    _, env = sandbox.crmtier_config()
    shown = " ".join([repr(connector), str(connector), repr(vars(connector))])
    for value in env.values():
        assert value not in shown


def test_sandbox_config_loads_with_the_product_loader(
    crm, sandbox_factory, tmp_path, monkeypatch, caplog
):
    """What ``crmtier sandbox --write-config`` writes is a valid crmtier.toml, loading
    without a warning: no deprecated key (``[writeback] reasons_max``) for an admin to copy."""
    sandbox = sandbox_factory(crm, customers=1)
    text, env = sandbox.crmtier_config()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    path = tmp_path / "crmtier.toml"
    path.write_text(text, encoding="utf-8")
    caplog.set_level(logging.WARNING)
    config = load_config(path)
    assert "reasons_max" not in text
    assert [r.getMessage() for r in caplog.records if r.name == "crmtier.config"] == []
    assert config.crm["kind"] == crm
    assert load_crm_settings(plugin(crm).settings, config.crm).api_share > 0
    connector = config.connector()
    try:  # serve and the receiver find the plugin by the connector's own word
        assert connector.capabilities.crm == crm
    finally:
        connector.close()


def test_one_more_than_a_write_batch_takes_two_write_calls(crm, sandbox_factory, connect):
    """docs/targets.md P1: field updates go out max_write_batch at a time, no more calls."""
    sandbox = sandbox_factory(crm, customers=0)
    connector = connect(sandbox)
    batch = connector.capabilities.max_write_batch
    sandbox.seed(batch + 1)
    ids = [r.profile.id for r in read_all(connector)]
    before = sandbox.write_calls()
    plan = WritePlan(field_updates=tuple(FieldUpdate(i, {"value_tier": "affluent"}) for i in ids))
    assert all(r.ok for r in connector.apply(plan))
    assert sandbox.write_calls() - before == 2


def test_every_call_counts_for_the_run_it_is_made_for(setup):
    """One connector serves the runs of a process at once; each run's record shows the
    calls made for it (``connectors.calltally``): every call ``api_usage`` counts within
    the run's tally, reads and writes alike, and none made outside it."""
    _, connector = setup
    before = dict(connector.api_usage().calls)
    with counting(CallTally()) as run:
        ids = [r.profile.id for r in read_all(connector)[:2]]
        updates = tuple(FieldUpdate(i, {"value_tier": "affluent"}) for i in ids)
        assert all(r.ok for r in connector.apply(WritePlan(field_updates=updates)))
    during = {k: v - before.get(k, 0) for k, v in connector.api_usage().calls.items()}
    assert run.counts() == {k: n for k, n in during.items() if n} and run.total() >= 2
    connector.fetch(ids)  # another run's call
    assert run.counts() == {k: n for k, n in during.items() if n}
