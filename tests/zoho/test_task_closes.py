"""Zoho tasks and their closures look their keys up by COQL (test_task_writes.py and
tests/contract/test_task_close_calls.py count the calls): the look-up's scope
``ZohoCRM.coql.READ`` is checked by ``doctor``, and a grant without it refuses a task or
closure plan before any write. Closures write the first of ``crm.task_closed_statuses``,
each of which must be in the org's Tasks Status picklist, and look absent keys up again
after their writes (connectors/zoho/closures.py)."""

from __future__ import annotations

from datetime import date

import pytest

from connectors.contract import TaskClose, TaskUpsert, WritePlan
from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from connectors.sandbox.zoho_schema import TASK_KEY_FIELD, TASK_MODULE, TASK_STATUS
from sync.write_readiness import require
from tiering_core.models import TaskAction

LOOKUP = "tasks: key look-up"


def _made(customer: str, key: str) -> TaskUpsert:
    action = TaskAction(
        rule="upgrade_call", subject="Call", priority="normal", due=date(2027, 2, 1), dedupe_key=key
    )
    return TaskUpsert(customer, action)


def _closes(customers: list[str], keys: list[str]) -> WritePlan:
    return WritePlan(
        task_closes=tuple(
            TaskClose(c, k, "upgrade_call") for c, k in zip(customers, keys, strict=True)
        )
    )


def test_doctor_names_the_coql_scope_closures_need(sandbox_factory, zconnect):
    for scope, ok in ((True, True), (False, False)):
        connector = zconnect(sandbox_factory("zoho", customers=1, coql_scope=scope))
        [line] = [c for c in connector.check() if c.name == LOOKUP]
        assert (line.ok, line.severity) == (ok, "error")
        assert ("ZohoCRM.coql.READ" in line.fix) is not ok


@pytest.mark.parametrize("kinds", [("tasks",), ("task_closes",), ("tasks", "task_closes")])
def test_without_the_coql_scope_a_task_plan_fails_before_any_write(
    sandbox_factory, zconnect, kinds
):
    """Tasks are looked up too (Zoho has no upsert for Tasks): a grant without the scope
    writes neither tasks nor closures, and makes nothing else of the plan first."""
    zoho = sandbox_factory("zoho", customers=2, coql_scope=False)
    connector = zconnect(zoho)
    ids = zoho.customer_ids()
    parts = {
        "tasks": (_made(ids[0], "k-made"),),
        "task_closes": _closes(ids, ["k-0", "k-1"]).task_closes,
    }
    with pytest.raises(ConfigError):
        connector.apply(WritePlan(**{k: parts[k] for k in kinds}))
    assert zoho.write_calls() == 0 and zoho.tasks() == []


def _statuses(zoho) -> dict[str, str]:
    return {
        str(data.get(TASK_KEY_FIELD)): str(data.get("Status"))
        for _, _, data in zoho.store.scan(TASK_MODULE)
    }


def _set_status(zoho, key: str, status: str) -> None:
    [rid] = [r for r, _, d in zoho.store.scan(TASK_MODULE) if d.get(TASK_KEY_FIELD) == key]
    zoho.store.update(TASK_MODULE, rid, {"Status": status})


def test_a_closure_writes_the_first_closed_status_and_leaves_any_closed_one(zoho, zconnect):
    """Zoho's Tasks Status is a picklist the org edits, and its metadata marks no value
    closed: an org that closes tasks as "Cancelled" names it, and a Task a relationship
    manager set to any configured closed value is left as it is (no write)."""
    zoho.api.schema.set_picklist(TASK_MODULE, "Status", (*TASK_STATUS, "Cancelled"))
    connector = zconnect(zoho, task_closed_statuses=["Cancelled", "Completed"])
    ids = zoho.customer_ids()[:3]
    keys = ["k-open", "k-completed", "k-cancelled"]
    made = connector.apply(WritePlan(tasks=tuple(map(_made, ids, keys))))
    assert all(r.ok for r in made)
    _set_status(zoho, "k-completed", "Completed")
    _set_status(zoho, "k-cancelled", "Cancelled")
    before = zoho.server.calls.counts()
    assert all(r.ok for r in connector.apply(_closes(ids, keys)))
    after = zoho.server.calls.counts()
    assert {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)} == {
        "coql": 1,
        "update": 1,
    }
    assert _statuses(zoho) == {
        "k-open": "Cancelled",
        "k-completed": "Completed",
        "k-cancelled": "Cancelled",
    }


def test_a_closed_status_the_orgs_picklist_lacks_stops_doctor_start_and_writes(
    sandbox_factory, zconnect
):
    """Never a closure that writes a value Zoho refuses, nor one that counts a status the
    org does not have: doctor's line, the start-up gate and the write itself all refuse."""
    zoho = sandbox_factory("zoho", customers=1)
    connector = zconnect(zoho, task_closed_statuses=["Completed", "Cancelled"])
    [line] = [c for c in connector.check() if c.name == "tasks: closed statuses"]
    assert not line.ok and "'Cancelled'" in line.detail and "task_closed_statuses" in line.fix
    with pytest.raises(ConfigError, match="tasks are on, but tasks: closed statuses"):
        require(connector, WritebackConfig(tasks=True))
    with pytest.raises(ConfigError, match=r"crm\.task_closed_statuses: .*'Cancelled'"):
        connector.apply(_closes(zoho.customer_ids(), ["k-0"]))
    assert zoho.write_calls() == 0


def test_the_default_closed_status_passes_doctor(sandbox_factory, zconnect):
    connector = zconnect(sandbox_factory("zoho", customers=1))
    [line] = [c for c in connector.check() if c.name == "tasks: closed statuses"]
    assert line.ok and "'Completed'" in line.detail


def test_a_task_inserted_after_the_closures_look_up_is_closed_too(zoho, zconnect, monkeypatch):
    """The race: a closure looks its keys up and finds one absent, then the insert of that
    key lands (a create crmtier stopped waiting for, stored after all) before the closure's
    writes end. The absent keys are looked up again after the writes, so the late Task is
    closed too, not left open on a customer whose sales work was withdrawn. Only a key
    absent at the re-check too answers ``absent`` (its task stays in doubt on record)."""
    closer, maker = zconnect(zoho), zconnect(zoho)
    a, b, c = zoho.customer_ids()[:3]
    assert maker.apply(WritePlan(tasks=(_made(b, "k-held"),)))[0].ok
    query = closer.client.query
    looked_up: list[str] = []

    def then_the_insert_lands(text):
        page = query(text)
        if not looked_up:
            looked_up.append(text)
            assert maker.apply(WritePlan(tasks=(_made(a, "k-late"),)))[0].ok
        return page

    monkeypatch.setattr(closer.client, "query", then_the_insert_lands)
    results = closer.apply(_closes([a, b, c], ["k-late", "k-held", "k-never"]))
    assert [(r.key, r.ok, r.absent) for r in results] == [
        ("k-late", True, False),
        ("k-held", True, False),
        ("k-never", True, True),
    ]
    assert _statuses(zoho) == {"k-late": "Completed", "k-held": "Completed"}


def test_an_org_without_the_default_closed_status_is_refused_at_start(sandbox_factory, zconnect):
    """The default, ``Completed``, is configuration like any other value: an org whose
    admin renamed it ("Closed") must not start and meet it only at the first closure, a
    sanctions hit, where the whole run would stop after its field writes, run after run.
    The start-up gate reads the Tasks picklist whatever the setting, one line, no write."""
    zoho = sandbox_factory("zoho", customers=1)
    renamed = tuple("Closed" if s == "Completed" else s for s in TASK_STATUS)
    zoho.api.schema.set_picklist(TASK_MODULE, "Status", renamed)
    connector = zconnect(zoho)
    with pytest.raises(ConfigError, match="tasks are on, but tasks: closed statuses") as refused:
        require(connector, WritebackConfig(tasks=True))
    assert "'Completed'" in str(refused.value) and "\n" not in str(refused.value)
    assert zoho.write_calls() == 0


def test_a_run_reads_the_tasks_metadata_once_for_its_closed_statuses(sandbox_factory, zconnect):
    """The start gate reads the Tasks field metadata for the closed statuses; the run's
    task plan and its closure plans check against that read and make no metadata call of
    their own (closures.py, "What the checks cost"). The one other Tasks read is
    zcrmsdk's, for its record conversion at the first Tasks write."""
    zoho = sandbox_factory("zoho", customers=3)
    connector = zconnect(zoho)
    a, b, c = zoho.customer_ids()
    read: list[str | None] = []
    zoho.server.inject("fields", match=lambda r: read.append(r.arg("module")) and False, times=None)
    require(connector, WritebackConfig(tasks=True))
    assert read == [TASK_MODULE]
    assert connector.apply(WritePlan(tasks=(_made(a, "k-a"),)))[0].ok
    for plan in (_closes([a], ["k-a"]), _closes([b, c], ["k-b", "k-c"])):
        assert all(r.ok for r in connector.apply(plan))
    assert read.count(TASK_MODULE) == 2  # the gate's, and zcrmsdk's at the first write
    assert _statuses(zoho) == {"k-a": "Completed"}
