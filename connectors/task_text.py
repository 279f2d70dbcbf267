"""A follow-up task's text cut to the CRM's fields, never silently.

A task's Subject and Description are made by crmtier (a rule's words and a customer's
figures), and a CRM refuses a task whose text is longer than its field whole, so the
relationship manager would never get it: the text is cut to fit instead, and each batch
that cut logs one warning a field, with how many tasks and which rules, never the text
(it may name a customer's figures). Lengths are counted in UTF-16 code units
(``tiering_core.reasons_field.utf16_length``), as Salesforce counts them and never fewer
than a CRM that counts code points, so a cut text fits either (``fitted``, the cut the
reasons field's own ``cut`` makes before its ``…``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from connectors.contract import TaskUpsert
from tiering_core.reasons_field import fitted, utf16_length

__all__ = ["TaskTextLimits", "fitted", "report_cuts"]

#: Where each text of a task goes: its attribute (``subject``, ``description``) to the
#: CRM field's name and how many UTF-16 code units it holds.
TaskTextLimits = Mapping[str, tuple[str, int]]


def report_cuts(log: logging.Logger, tasks: Sequence[TaskUpsert], limits: TaskTextLimits) -> None:
    """One warning a task field the batch cut to fit: how many tasks, which rules, the
    field's length (never the text)."""
    for attr, (field, limit) in limits.items():
        cut = [u.task.rule for u in tasks if utf16_length(getattr(u.task, attr)) > limit]
        if cut:
            log.warning(
                "%d Task(s) of rule(s) %s: %s cut to the field's %d characters",
                len(cut),
                ", ".join(sorted(set(cut))),
                field,
                limit,
            )
