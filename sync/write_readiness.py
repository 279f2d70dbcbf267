"""What the enabled write kinds need in the CRM, checked before a sync or a server starts.

A run writes tier fields first, then tasks and campaign memberships. A prerequisite the
CRM lacks for one of the later kinds (a Zoho grant without ``ZohoCRM.coql.READ``, which
every task write's key look-up needs) would otherwise stop the run at its first task
write, after fields and memberships were written: a half-done run, repeated at every
start. Anything configured that cannot be carried out is an error at load time, so
``crmtier sync``, ``crmtier serve`` and ``crmtier worker`` call ``require`` when they build
their engine (``crmtier.commands.sync.make_engine``), before any read or write: a failed
line is a ``ConfigError`` of one line (the command exits 2) naming what is missing, for
which write kind, and its fix or the ``[writeback]`` switch that turns the kind off.

Only the kinds the configuration enables are asked for, and what a kind switched off must
still do: with ``[writeback] tasks = false`` the sales tasks crmtier made while tasks
were on (or may have made: ``side_effects.in_doubt``) are still closed on a sanctions hit
(``planner.closures_of``), and closing needs the rights making did; so do memberships
crmtier made, removed with ``campaign_memberships = false`` (``planner.
withdrawn_memberships``), each in a campaign the config must still map. Only while the
store holds none of a kind are its prerequisites skipped (no call). The checks are the
connector's
(``connectors.contract.WritePrerequisites``, at most one cheap call each), the same lines
``crmtier doctor`` prints; a connector without the capability has none to check.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.contract import Connector, SchemaCheck, WriteKind, WritePrerequisites
from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from sync.state import Withdrawable

#: The store's ``Withdrawable`` for the kinds switched off: (tasks, memberships) asked.
HeldReader = Callable[[bool, bool], Withdrawable]

#: Each gated write kind: how the one-line refusal names it, and the switch that turns it
#: off. A task closure is not one of its own: it comes with tasks (it withdraws a task
#: crmtier made, on the same CRM object), so the task prerequisites are the closure's too.
_KINDS: dict[WriteKind, tuple[str, str]] = {
    "task": ("tasks are on", "tasks = false"),
    "membership": ("campaign memberships are on", "campaign_memberships = false"),
}


def enabled_kinds(writeback: WritebackConfig, *, only_fields: bool = False) -> list[WriteKind]:
    """The gated write kinds (``_KINDS``) a run under ``writeback`` can make: tasks (their
    closures with them) while ``tasks`` is on, memberships while ``campaign_memberships``
    is on and a campaign is configured; none for a run that writes fields only
    (``crmtier sync --only fields``)."""
    if only_fields:
        return []
    kinds: list[WriteKind] = []
    if writeback.tasks:
        kinds.append("task")
    if writeback.campaign_memberships and writeback.campaigns:
        kinds.append("membership")
    return kinds


def readiness(connector: Connector, kinds: list[WriteKind]) -> list[tuple[WriteKind, SchemaCheck]]:
    """Each prerequisite line of ``kinds``, with the kind it is for (the connector's
    ``write_checks``, one kind at a time so each line names its kind); nothing, and no
    call, when no kind is enabled or the connector has no prerequisites."""
    if not isinstance(connector, WritePrerequisites):
        return []
    asked = [kind for kind in _KINDS if kind in kinds]
    return [(kind, check) for kind in asked for check in connector.write_checks([kind])]


def require(
    connector: Connector,
    writeback: WritebackConfig,
    *,
    only_fields: bool = False,
    held: HeldReader | None = None,
) -> None:
    """``readiness`` as a start-up gate: the first failed line is a ``ConfigError`` of one
    line, never a run that stops at the first write of that kind. ``held`` reads what the
    store holds for a kind that is off (``require_withdrawals``)."""
    kinds = enabled_kinds(writeback, only_fields=only_fields)
    require_kinds(connector, kinds)
    if held is not None:
        require_withdrawals(connector, writeback, kinds, held, only_fields=only_fields)


def require_withdrawals(
    connector: Connector,
    writeback: WritebackConfig,
    kinds: list[WriteKind],
    held: HeldReader,
    *,
    only_fields: bool = False,
) -> None:
    """What a kind that is off must still do, while the store holds any of it: close the
    open sales tasks crmtier made (the task prerequisites: a closure looks the task up as
    a write does), remove the memberships crmtier made (the membership prerequisites, and
    a CRM id for each campaign holding some). A failed line is a ``ConfigError`` of one
    line; the switch is no fix (it is off already), so none is offered."""
    tasks_off, members_off = "task" not in kinds, "membership" not in kinds
    if not (tasks_off or members_off):
        return
    store = held(tasks_off, members_off)
    off = "this run writes fields only" if only_fields else "{} are off"
    if store.sales_tasks:
        what = (
            f"{off.format('tasks')} but {store.sales_tasks} sales tasks crmtier made are still "
            "open: closing them on a sanctions hit needs"
        )
        _refuse_failed(connector, "task_close", what)
    if not store.memberships:
        return
    count = sum(store.memberships.values())
    what = (
        f"{off.format('campaign memberships')} but {count} campaign memberships crmtier made "
        "are still held: removing them on a sanctions hit needs"
    )
    for campaign in sorted(store.memberships):
        if campaign not in writeback.campaigns and not writeback.is_off("campaigns", campaign):
            raise ConfigError(
                f"{what} the CRM id of campaign {campaign}: map it in [writeback.campaigns]"
            )
    _refuse_failed(connector, "membership", what)


def _refuse_failed(connector: Connector, kind: WriteKind, what: str) -> None:
    if not isinstance(connector, WritePrerequisites):
        return
    for check in connector.write_checks([kind]):
        if not check.ok and check.severity == "error":
            raise ConfigError(f"{what} {check.name}: {check.detail}: {check.fix}")


def require_kinds(connector: Connector, kinds: list[WriteKind]) -> None:
    """``require`` for the write kinds a command makes itself (``crmtier coverage --write``
    makes tasks only)."""
    for kind, check in readiness(connector, kinds):
        if check.ok or check.severity != "error":
            continue
        what, switch = _KINDS[kind]
        other = "" if switch in check.fix else f" (or set {switch} in [writeback])"
        raise ConfigError(f"{what}, but {check.name}: {check.detail}: {check.fix}{other}")
