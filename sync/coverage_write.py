"""Advisor-coverage proposals carried out in the CRM (issue 21 §2).

``sync.coverage.propose`` decides which RM should take each customer waiting for one; this
module puts those proposals where the branch or team manager works: one follow-up task per
proposal in ``coverage.queue``, upserted by its deterministic dedupe key (customer, RM,
month). A bank that opts in (``[coverage] assign = "owner"`` in crmtier.toml) has the
proposed RM made the owner instead (``change_owners``): the plan only ever proposes a
customer with no suitable owner, to an RM whose free capacity holds them, so an owner
change never breaks an existing relationship nor fills a book past capacity, and once
made the next full read sees the customer covered: a rerun changes nothing.

It is what ``crmtier coverage --write`` runs on a schedule (docs/policy.md, "Advisor
coverage"), separately from ``crmtier sync``: coverage balances whole books, so
it needs a full read, which a 15-minute incremental run must not pay for.

The fewest calls: a proposal whose task crmtier already made (the state store's
``side_effects``, the same record ``crmtier sync`` keeps for its own tasks) is not sent
again, so an unchanged book writes nothing on the next run; the rest go in one
``Connector.apply`` (the connector batches them). Each task made is recorded and gets a
``task`` audit row under the customer's pseudonym, in one transaction; a write the CRM
refuses is not recorded, so the next run proposes and sends it again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa

from connectors.contract import (
    Connector,
    OwnerChange,
    OwnerWrites,
    TaskUpsert,
    WritePlan,
    WriteResult,
)
from sync.audit import AuditEntry, append
from sync.coverage import proposals_plan
from sync.runs import new_run_id
from sync.schema import side_effects
from sync.state import save_side_effects
from sync.store import StateStore
from tiering_core.coverage import Coverage
from tiering_core.policy import Policy
from tiering_core.privacy import pseudonym

#: The task rule of a coverage proposal (``tiering_core.coverage.proposal_tasks``).
RULE = "coverage_proposal"
_CHUNK = 500


@dataclass(frozen=True)
class Written:
    """What carrying out the proposals did: tasks (or owner changes) made now, proposals
    whose task was made before (no call), and one line per write the CRM refused
    (pseudonym and code)."""

    made: int
    already: int
    failed: tuple[str, ...]
    run_id: str


def write_proposals(
    store: StateStore,
    stream: str,
    connector: Connector,
    coverage: Coverage,
    policy: Policy,
    as_of: date,
    *,
    pseudonym_key: bytes,
    actor: str = "crmtier-coverage",
) -> Written:
    """Upsert the proposal tasks crmtier has not made yet, and record those made."""
    tasks = proposals_plan(coverage, policy, as_of).tasks
    with store.begin() as conn:
        made_before = _made(conn, stream, [t.task.dedupe_key for t in tasks])
    todo = tuple(t for t in tasks if t.task.dedupe_key not in made_before)
    results = connector.apply(WritePlan(tasks=todo)) if todo else []
    by_key = {r.key: r for r in results if r.kind == "task"}
    run_id = new_run_id()
    made = {k for k, r in by_key.items() if r.ok}
    done = [t for t in todo if t.task.dedupe_key in made]
    keys = store.audit_keys  # before the transaction: reading them takes one of its own
    with store.begin() as conn:
        save_side_effects(conn, stream, [_effect(t, run_id) for t in done])
        append(
            conn,
            [_audit(t, stream, policy, run_id, actor, pseudonym_key) for t in done],
            keys,
        )
    failed = tuple(
        _refused(t.customer_id, "proposal task", by_key.get(t.task.dedupe_key), pseudonym_key)
        for t in todo
        if t.task.dedupe_key not in made
    )
    return Written(len(done), len(tasks) - len(todo), failed, run_id)


def change_owners(
    store: StateStore,
    stream: str,
    connector: OwnerWrites,
    coverage: Coverage,
    policy: Policy,
    *,
    pseudonym_key: bytes,
    actor: str = "crmtier-coverage",
) -> Written:
    """Make each proposed RM the owner of their customer; audit each change made."""
    changes = [OwnerChange(p.customer_id, p.advisor_id) for p in coverage.proposals]
    results = connector.change_owners(changes) if changes else []
    by_id = {r.key: r for r in results}
    run_id = new_run_id()
    changed = {k for k, r in by_id.items() if r.ok}
    done = [p for p in coverage.proposals if p.customer_id in changed]
    entries = [
        AuditEntry(
            stream=stream,
            customer_ref=pseudonym(p.customer_id, pseudonym_key),
            event="owner_change",
            old={"owner": p.current_owner},
            new={"owner": p.advisor_id, "tier": p.tier, "rule": RULE},
            reason_codes=[],
            policy_version=policy.version,
            input_hash="",
            trigger="manual",
            actor=actor,
            run_id=run_id,
        )
        for p in done
    ]
    keys = store.audit_keys
    with store.begin() as conn:
        append(conn, entries, keys)
    failed = tuple(
        _refused(p.customer_id, "owner change", by_id.get(p.customer_id), pseudonym_key)
        for p in coverage.proposals
        if p.customer_id not in changed
    )
    return Written(len(done), 0, failed, run_id)


def _made(conn: sa.Connection, stream: str, keys: Sequence[str]) -> set[str]:
    """Which of these task keys crmtier has on record as made (open or closed: a closed
    proposal was answered, and the same proposal is not asked again this month)."""
    made: set[str] = set()
    for start in range(0, len(keys), _CHUNK):
        made.update(
            conn.execute(
                sa.select(side_effects.c.key).where(
                    side_effects.c.stream == stream,
                    side_effects.c.kind == "task",
                    side_effects.c.key.in_(keys[start : start + _CHUNK]),
                )
            ).scalars()
        )
    return made


def _effect(t: TaskUpsert, run_id: str) -> dict[str, object]:
    return {
        "kind": "task",
        "key": t.task.dedupe_key,
        "customer_id": t.customer_id,
        "campaign": None,
        "rule": RULE,
        "active": True,
        "run_id": run_id,
    }


def _audit(
    t: TaskUpsert, stream: str, policy: Policy, run_id: str, actor: str, key: bytes
) -> AuditEntry:
    return AuditEntry(
        stream=stream,
        customer_ref=pseudonym(t.customer_id, key),
        event="task",
        old=None,
        new={
            "rule": RULE,
            "priority": t.task.priority,
            "due": t.task.due.isoformat(),
            "queue": t.task.queue,
            "key": t.task.dedupe_key,
        },
        reason_codes=[],
        policy_version=policy.version,
        input_hash="",
        trigger="manual",
        actor=actor,
        run_id=run_id,
    )


def _refused(customer_id: str, what: str, result: WriteResult | None, key: bytes) -> str:
    code = "NO_ANSWER" if result is None else (result.error_code or "UNKNOWN")
    return f"customer {pseudonym(customer_id, key)}: {what} not written ({code})"
