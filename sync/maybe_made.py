"""Whether the CRM may already hold a task a run writes: one rule, one object per run.

Three parts of a run ask it, and must get the same answer. The write pool sends such a
task as one to look up before it is made (``TaskUpsert.resend``: a relationship manager's
changes to it are kept); the recorder does not take a refusal of such a task's write as
proof that the CRM holds nothing (its owner's cap place stays, ``AnswerBatch``); and the
dispatcher does not take such a task off its owner's cap when it supersedes it
(``Dispatcher.supersede``). Each of the pool and the recorder once carried its own
default (``item.attempts > 0``), a weaker copy that a run's dispatcher replaced after the
fact: a pool or recorder built without one silently judged by it (a dead run's task, or
one planned again while in doubt, refused at its first attempt, then left its owner's
cap while the CRM may hold it). So the run builds one ``MaybeMade`` (``sync.run_parts``)
and hands the same object to all three, which take it as a required argument.
"""

from __future__ import annotations

from sync.outbox import OutboxItem, may_have_landed


class MaybeMade:
    """A run's rule: a call of the item itself may have reached the CRM
    (``outbox.may_have_landed``: one went unanswered, or a run that died queued it), or
    the task was planned while a write of its key was in doubt (``planned_in_doubt``,
    which ``Dispatcher.enqueue`` and ``Dispatcher.recover`` fill: one in flight, retried
    or superseded, a task in doubt on record). A fault-free run has none: each task goes
    out as a first send, and so does a retry the CRM refused every time (it made nothing)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        #: runs whose adopted writes may have been in flight when they died
        self.died: set[str] = set()
        #: keys of tasks planned again while a write of theirs was in doubt
        self.planned_in_doubt: set[str] = set()

    def landed(self, item: OutboxItem) -> bool:
        """Whether a call of this item itself may have reached the CRM."""
        return may_have_landed(item, self.run_id, self.died)

    def __call__(self, item: OutboxItem) -> bool:
        return self.landed(item) or item.key in self.planned_in_doubt
