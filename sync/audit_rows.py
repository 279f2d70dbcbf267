"""The audit rows a run writes: the columns every row of the run shares (stream, run,
trigger, actor) and the ones a decision or an outbox item adds. Kept apart from the
recorder, which decides *when* a row is written; this module says *what* it holds."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import cast

from sync.audit import AuditEntry, AuditEvent, Trigger
from sync.outbox import OutboxItem
from sync.records import Json, PendingDecision


@dataclass(frozen=True)
class AuditRows:
    """Makes a run's audit entries; ``ref`` is the run's keyed pseudonym of a customer (no
    customer id is stored in the trail)."""

    stream: str
    run_id: str
    trigger: Trigger
    actor: str
    ref: Callable[[str], str]

    def tier_change(
        self, cid: str, old: Mapping[str, str] | None, new: dict[str, str], pending: PendingDecision
    ) -> AuditEntry:
        """A decision's ``tier_change`` row."""
        return self.entry(cid, "tier_change", old, new, pending)

    def override(
        self, cid: str, recorded: Mapping[str, Json] | None, pending: PendingDecision
    ) -> AuditEntry:
        """A decision's ``override`` row (docs/overrides.md, "The audit trail"): ``old`` the
        customer's last one's value (``recorded``: ``customers.override``, None for none),
        ``new`` what the decision made of the override (``PendingDecision.override``; None:
        it ended). The caller writes it only when the two differ, and records ``new``."""
        return self.entry(cid, "override", recorded, pending.override, pending)

    def entry(
        self,
        customer_id: str,
        event: AuditEvent,
        old: Json,
        new: Json,
        pending: PendingDecision | None,
        *,
        item: OutboxItem | None = None,
    ) -> AuditEntry:
        """One row: the trigger and source event of the outbox item or the decision that
        caused it, else the run's."""
        trigger = (item.trigger if item else None) or (pending and pending.trigger) or self.trigger
        source = (item.source_event_id if item else None) or (
            pending.source_event_id if pending else None
        )
        return AuditEntry(
            stream=self.stream,
            customer_ref=self.ref(customer_id),
            event=event,
            old=old,
            new=new,
            reason_codes=list(pending.reason_codes) if pending else [],
            policy_version=str((pending and pending.policy_version) or "unknown"),
            input_hash=str((pending and pending.input_hash) or ""),
            trigger=cast(Trigger, trigger),
            actor=self.actor,
            run_id=self.run_id,
            source_event_id=source,
        )
