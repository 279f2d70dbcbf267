"""``crmtier doctor``'s withdrawal lines: with ``[writeback] tasks`` or
``campaign_memberships`` off, a sanctions hit still closes the sales tasks and removes the
memberships crmtier made while they were on (docs/policy.md, *Switching tasks or
memberships off*), and ``crmtier sync``, ``serve`` and ``worker`` refuse to start while
the state store holds any and what withdrawing them needs is missing
(``sync.write_readiness.require_withdrawals``), or while a campaign without its CRM id
(switched off on its own, ``key = false``, or no longer named) holds members crmtier made,
whatever the switches. The doctor prints the same lines, one a
kind (``write_readiness.withdrawal_checks``), so an admin sees the refusal coming; a kind
that is on has its own lines (the connector's), and a store that holds none of a kind
prints nothing for it."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from connectors.contract import Connector, SchemaCheck
from crmtier.commands.doctor_lines import error
from crmtier.config import CrmtierConfig
from crmtier.store_failures import parsed_url
from sync import write_readiness
from sync.schema import side_effects
from sync.state import Withdrawable, withdrawable
from sync.store_engine import create_engine

NAME = "withdrawals"


def check_withdrawals(connector: Connector, config: CrmtierConfig) -> list[SchemaCheck]:
    """``write_readiness.withdrawal_checks`` of the config's switches over its state store;
    nothing when the store does not exist yet (it holds nothing)."""
    writeback = config.writeback_config()
    kinds = write_readiness.enabled_kinds(writeback)
    url = config.state_url().get_secret_value()
    parsed = parsed_url(url)
    if parsed is None:  # a miswritten URL: the state store line says why
        return []
    db = parsed.database
    file = parsed.get_backend_name() == "sqlite" and db not in (None, "", ":memory:")
    if file and not Path(str(db)).exists():
        return []  # no store yet (the state store line says so): nothing made
    try:
        engine = create_engine(url)
        try:
            with engine.connect() as conn:
                if not sa.inspect(conn).has_table(side_effects.name):
                    return []
                held = withdrawable(conn, config.stream, tasks=True)
        finally:
            engine.dispose()
    except Exception as exc:  # the state store line says why; never print the URL
        detail = f"could not count what crmtier made: {type(exc).__name__}"
        return [error(NAME, detail, "fix the state store")]

    def read(tasks: bool) -> Withdrawable:
        return Withdrawable(held.sales_tasks if tasks else 0, held.memberships)

    return write_readiness.withdrawal_checks(connector, writeback, kinds, read)
