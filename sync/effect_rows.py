"""A written task, task closure or membership change as the recorder keeps it: its
``side_effects`` row, its audit event and value, and its label in the run's counts."""

from __future__ import annotations

from sync.audit import AuditEvent
from sync.outbox import OutboxItem
from sync.records import Json
from sync.runs import side_effect_label


def effect_row(
    item: OutboxItem, run_id: str, absent: bool = False
) -> tuple[dict[str, Json], AuditEvent, dict[str, Json]]:
    """The ``side_effects`` row of a written item (``sync.state.save_side_effects``), and
    its audit row's event and new value. ``absent``: the CRM answered a closure of the
    task without holding it (``WriteResult.absent``); a task in doubt then stays in doubt,
    as its unanswered making may still land after that look-up, and the next closure of
    the restricted customer's tasks looks for it again."""
    payload = item.payload
    rule = payload.get("rule") if item.kind in ("task", "task_close") else None
    doubt: bool | None = None  # answered: made or closed, no longer in doubt
    event: AuditEvent
    new: dict[str, Json]
    campaign: str | None = None
    if item.kind == "task":
        active, event = True, "task"
        new = {
            "rule": rule,
            "priority": payload.get("priority"),
            "due": payload.get("due"),
            "queue": payload.get("queue"),
            "key": item.key,
        }
    elif item.kind == "task_close":  # the task stays on record, closed: active false
        active, event = False, "task_closed"
        new = {"rule": rule, "key": item.key, "closed": True}
        if payload.get("in_doubt"):  # its making never answered: the CRM may not have held it
            new["in_doubt"] = True
            doubt = True if stays_in_doubt(item, absent) else None
    else:
        campaign, active, event = payload["campaign"], bool(payload["member"]), "campaign"
        new = {"campaign": campaign, "member": active, "key": item.key}
    row: dict[str, Json] = {
        "kind": "membership" if item.kind == "membership" else "task",
        "key": item.key,
        "customer_id": item.customer_id,
        "campaign": campaign,
        "rule": rule,
        "active": active,
        "in_doubt": doubt,
        "run_id": run_id,
    }
    return row, event, new


def stays_in_doubt(item: OutboxItem, absent: bool) -> bool:
    """A closure of a task in doubt (its making went unanswered) that found no task under
    its key (``absent``): the making may still land after that look-up, so the task stays
    in doubt on record, and, as any task a call of which went unanswered, keeps its place
    on its owner's cap (``sync.answer_batch``) until a closure finds it or its due date
    passes: freed at that answer, a task the CRM may yet hold let its owner past the cap."""
    return item.kind == "task_close" and absent and bool(item.payload.get("in_doubt"))


def effect_label(item: OutboxItem) -> str:
    """The ``side_effect_label`` of a written task, closure or membership item."""
    if item.kind == "membership":
        return side_effect_label("membership", item.payload["campaign"], item.payload["member"])
    return side_effect_label(item.kind, str(item.payload.get("rule") or "unknown"))
