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
store holds none of a kind are its prerequisites skipped (no call). A campaign switched
off on its own (``[writeback.campaigns] key = false``) has no CRM id either, nor one the
config no longer names (the policy dropped it), whether memberships are on or off: while
the store holds members crmtier made in it, a sanctions hit could not remove them (and,
memberships on, the planner would stop the run at the first such customer, after field
writes), so the start is refused (``add = false`` keeps the id and adds no one). The
checks are the connector's (``connectors.contract.WritePrerequisites``, at most one cheap
call each), the same lines ``crmtier doctor`` prints; a connector without the capability
has none to check.
"""

from __future__ import annotations

from collections.abc import Callable

from connectors.contract import Connector, SchemaCheck, WriteKind, WritePrerequisites
from connectors.errors import ConfigError
from connectors.mapping import WritebackConfig
from sync.state import Withdrawable

#: The store's ``Withdrawable``: its memberships, and its sales tasks if asked (tasks off).
HeldReader = Callable[[bool], Withdrawable]

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
    """``withdrawal_checks`` as a start-up gate: the first failed line is a
    ``ConfigError`` of one line (its detail and fix); the switch is no fix (it is off
    already), so none is offered."""
    for check in withdrawal_checks(connector, writeback, kinds, held, only_fields=only_fields):
        if not check.ok:
            raise ConfigError(f"{check.detail}: {check.fix}")


#: The names of ``withdrawal_checks``' lines (``crmtier doctor`` prints them).
CLOSE_TASKS, REMOVE_MEMBERSHIPS = "sales tasks to close", "memberships to remove"


def withdrawal_checks(
    connector: Connector,
    writeback: WritebackConfig,
    kinds: list[WriteKind],
    held: HeldReader,
    *,
    only_fields: bool = False,
) -> list[SchemaCheck]:
    """What a kind that is off (not in ``kinds``) must still do, while the store holds any
    of it, one line a kind: close the open sales tasks crmtier made (the task
    prerequisites: a closure looks the task up as a write does), remove the memberships
    crmtier made (the membership prerequisites). No line for a kind that is on, or that
    the store holds none of. Then, kinds on or off, a failed line for each campaign without
    a CRM id that holds members crmtier made (``_campaigns_without_id``). The store's
    memberships are read at every start for that (one query): with memberships on, the
    planner would otherwise meet such a campaign mid-run, after field writes. A failed
    line's detail and fix make the gate's refusal (``require_withdrawals``)."""
    tasks_off, members_off = "task" not in kinds, "membership" not in kinds
    store = held(tasks_off)
    off = "this run writes fields only" if only_fields else "{} are off"
    lines = []
    if store.sales_tasks:
        what = (
            f"{off.format('tasks')} but {store.sales_tasks} sales tasks crmtier made are still "
            "open: closing them on a sanctions hit needs"
        )
        lines.append(_line(connector, CLOSE_TASKS, "task_close", what))
    if store.memberships and members_off:
        count = sum(store.memberships.values())
        what = (
            f"{off.format('campaign memberships')} but {count} campaign memberships crmtier "
            "made are still held: removing them on a sanctions hit needs"
        )
        lines.append(_line(connector, REMOVE_MEMBERSHIPS, "membership", what))
    return lines + _campaigns_without_id(writeback, store)


#: The names of the lines for a campaign without a CRM id that holds members crmtier made:
#: switched off on its own (``key = false``), or named nowhere in ``[writeback.campaigns]``
#: (a campaign the policy no longer has, or a key removed from the config).
SWITCHED_OFF_HELD, UNNAMED_HELD = "campaign switched off", "campaign not named"


def _campaigns_without_id(writeback: WritebackConfig, store: Withdrawable) -> list[SchemaCheck]:
    """A failed line for each campaign in which the store holds members crmtier made or
    may have made (in doubt) but which has no CRM id in ``[writeback.campaigns]``
    (switched off, or not named), whatever the switches: a sanctions hit could not remove
    them, and leaving a sanctioned customer in a marketing campaign in silence is what the
    gate exists to refuse (docs/policy.md, *Switching tasks or memberships off*; FATF
    Recommendation 6: without delay); with memberships on the planner meets one as it
    plans the customer, after the run wrote fields. The fix keeps (or gives back) the id
    and adds no one, which ``connectors.coverage`` accepts for a campaign the policy no
    longer has. crmtier has no command to forget a membership: one removed by hand in the
    CRM is still held, so that is no fix."""
    lines = []
    for campaign, count in sorted(store.memberships.items()):
        if not count or campaign in writeback.campaigns:
            continue
        members = "member" if count == 1 else "members"
        if writeback.is_off("campaigns", campaign):
            name, said = SWITCHED_OFF_HELD, f"{campaign} = false"
        else:
            name, said = UNNAMED_HELD, f"names no campaign {campaign}"
        detail = (
            f"[writeback.campaigns] {said} but crmtier holds {count} {members} there "
            "(made, or in doubt): a sanctions hit could not remove them"
        )
        fix = (
            "keep its CRM id so crmtier can, adding no one: "
            f'{campaign} = {{ id = "<CRM id>", add = false }}'
        )
        lines.append(SchemaCheck(name, False, detail, fix))
    return lines


def _line(connector: Connector, name: str, kind: WriteKind, what: str) -> SchemaCheck:
    """The first failed prerequisite of ``kind`` as a line named ``name``, or one that says
    what the withdrawal needs is in place (a connector without prerequisites has none)."""
    if isinstance(connector, WritePrerequisites):
        for check in connector.write_checks([kind]):
            if not check.ok and check.severity == "error":
                return SchemaCheck(name, False, f"{what} {check.name}: {check.detail}", check.fix)
    return SchemaCheck(name, True, what.removesuffix(" needs") + ": its prerequisites are met")


def require_kinds(connector: Connector, kinds: list[WriteKind]) -> None:
    """``require`` for the write kinds a command makes itself (``crmtier coverage --write``
    makes tasks only)."""
    for kind, check in readiness(connector, kinds):
        if check.ok or check.severity != "error":
            continue
        what, switch = _KINDS[kind]
        other = "" if switch in check.fix else f" (or set {switch} in [writeback])"
        raise ConfigError(f"{what}, but {check.name}: {check.detail}: {check.fix}{other}")
