"""Closing (withdrawing) crmtier's Tasks in Zoho: which Status values mean closed, and the
closing writes with their re-check.

**Closed statuses.** Zoho's Tasks ``Status`` is a picklist each org may edit, and its field
metadata marks no value as closed ("Fields Meta Data", Zoho CRM API v2: a picklist value
has ``display_value``, ``actual_value`` and ``sequence_number``, no closed flag, unlike
Salesforce's ``TaskStatus.IsClosed``). So the closed values are ``crm.task_closed_statuses``
(default the standard picklist's ``Completed``); a closure writes the first, and a Task in
any of them is already closed. A configured value the org's picklist lacks is a
``ConfigError`` before any write (``require_closed_statuses``), a ``crmtier doctor`` line
and a start-up refusal (``checks.py``), the default too: an org that renamed ``Completed``
must not start and meet it at its first closure, a sanctions hit; never a closure that
writes a value Zoho refuses or leaves open a Task the org counts as closed.

**What the checks cost.** The Tasks field metadata is one call a connector
(``ZohoConnector.schema``): the start gate's closed-status line reads it (``checks.
write_checks``; in ``doctor``, the key field's line), and a plan with closures checks the
statuses against that read once, before its first write; ``close_tasks`` is handed the
answer rather than checking again. So a run costs one metadata read for them, whatever
its closure plans. zcrmsdk reads the Tasks metadata once more (with the Contacts and
Accounts its lookups point to) at the first Tasks write, for its own record conversion,
into its resource directory: the SDK's cache, not one crmtier reads. A picklist the org
edits after crmtier's read is not seen by the plan's check until the process restarts
(docs/admin-setup.md says so).

**The re-check.** A closure looks its keys up (``task_keys.look_up``, shared with the
plan's tasks before any write) and closes by record id. A key the look-up did not find may
be one whose insert was still under way: a task whose making went unanswered (a timeout)
that Zoho stores after all, or a process that made it while its claim on the customer was
being taken over. Those keys are looked up once more after the closing writes, and a Task
found open then is closed too. That costs one COQL query per 50 absent keys (a Task a
relationship manager deleted, one whose making went unanswered), none when every key is
found.
An insert landing after the re-check is still missed (the CRM has no conditional insert for
Tasks to order it against); docs/operations.md ("Task closures: what they cost") says when
that can happen.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from connectors.contract import TaskClose
from connectors.errors import ConfigError
from connectors.zoho.client_values import RowResult
from connectors.zoho.task_keys import QUOTABLE, TASK_MODULE, HeldTask, look_up, task_key_field

if TYPE_CHECKING:
    from connectors.zoho.connector import ZohoConnector

STATUS_FIELD = "Status"
SETTING = "crm.task_closed_statuses"


def unknown_statuses(connector: ZohoConnector) -> tuple[list[str], tuple[str, ...]]:
    """The configured closed statuses the org's Tasks ``Status`` picklist lacks, and the
    values it has (from the Tasks field metadata, read once a connector)."""
    field = connector.schema(TASK_MODULE).get(STATUS_FIELD)
    values = field.picklist if field is not None else ()
    return [s for s in connector.config.task_closed_statuses if s not in values], values


def unknown_text(unknown: Sequence[str], values: Sequence[str]) -> str:
    listed = ", ".join(values) or "none"
    return f"Zoho Tasks.{STATUS_FIELD} has no value {', '.join(map(repr, unknown))} ({listed})"


def require_closed_statuses(connector: ZohoConnector) -> tuple[str, ...]:
    """``crm.task_closed_statuses`` once the org's picklist holds every one of them."""
    unknown, values = unknown_statuses(connector)
    if unknown:
        raise ConfigError(
            f"{SETTING}: {unknown_text(unknown, values)}; name the org's closed values or add "
            "them in Setup > Modules and Fields > Tasks"
        )
    return connector.config.task_closed_statuses


def close_tasks(
    connector: ZohoConnector,
    closes: Sequence[TaskClose],
    held: Mapping[str, HeldTask],
    statuses: tuple[str, ...],
    trigger: Sequence[str],
) -> tuple[dict[str, RowResult], set[str]]:
    """Each open Task of ``closes`` set to the first closed status by Update Records (``PUT
    /crm/v2/Tasks``, by record id, a write batch a call), the Status alone, so the subject,
    owner and notes the relationship manager sees stay as they were; then the keys the
    look-up did not find looked up again and closed the same way. A key with no answer
    here has nothing to close (absent, or its Task already closed); the second value
    names the keys absent at the re-check too. Cost: ceil(open tasks / write batch)
    updates, plus ceil(absent keys / 50) COQL queries. ``statuses``: the closed statuses
    ``require_closed_statuses`` answered for this plan, before its first write."""
    keys = sorted({c.dedupe_key for c in closes if QUOTABLE.fullmatch(c.dedupe_key)})
    done = _close(connector, {k: held[k] for k in keys if k in held}, statuses, trigger)
    absent = {k for k in keys if k not in held}
    if absent:
        late = look_up(connector, task_key_field(connector), sorted(absent))
        done.update(_close(connector, late, statuses, trigger))
        absent -= set(late)
    return done, absent


def _close(
    connector: ZohoConnector,
    found: Mapping[str, HeldTask],
    statuses: tuple[str, ...],
    trigger: Sequence[str],
) -> dict[str, RowResult]:
    open_keys = sorted(k for k, task in found.items() if task.status not in statuses)
    batch = connector.config.write_batch
    done: dict[str, RowResult] = {}
    for start in range(0, len(open_keys), batch):
        chunk = open_keys[start : start + batch]
        rows = [{"id": found[k].id, STATUS_FIELD: statuses[0]} for k in chunk]
        answers = connector.client.update(TASK_MODULE, rows, trigger)
        done.update(zip(chunk, answers, strict=True))
    return done
