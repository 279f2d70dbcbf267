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
from connectors.errors import ConfigError
from crmtier.commands.doctor_lines import error
from crmtier.config import CrmtierConfig
from crmtier.store_failures import STORE_READ_ERRORS, opening, parsed_url, unreadable
from sync import write_readiness
from sync.schema import side_effects
from sync.state import Withdrawable, withdrawable
from sync.store_engine import create_engine

NAME = "withdrawals"
#: the doctor's state store line opened the store before (which brings its tables up to
#: date): tables still unlike this crmtier's are a newer one's, or that line's failure
STORE_SCHEMA_FIX = (
    "the store's tables are not this crmtier's: see the state store line, and upgrade "
    "crmtier if a newer one wrote them"
)


def check_withdrawals(connector: Connector, config: CrmtierConfig) -> list[SchemaCheck]:
    """``write_readiness.withdrawal_checks`` of the config's switches over its state store;
    nothing when the store does not exist yet (it holds nothing)."""
    writeback = config.writeback_config()
    kinds = write_readiness.enabled_kinds(writeback)
    try:
        url = config.state_url().get_secret_value()
    except ConfigError:  # its variable unset: the state store line says so
        return []
    parsed = parsed_url(url)
    if parsed is None:  # a miswritten URL: the state store line says why
        return []
    db = parsed.database
    file = parsed.get_backend_name() == "sqlite" and db not in (None, "", ":memory:")
    if file and not Path(str(db)).exists():
        return []  # no store yet (the state store line says so): nothing made
    try:
        with opening(url):
            engine = create_engine(url)
            try:
                with engine.connect() as conn:
                    if not sa.inspect(conn).has_table(side_effects.name):
                        return []
                    held = withdrawable(conn, config.stream, tasks=True)
            finally:
                engine.dispose()
    except STORE_READ_ERRORS as exc:  # anything else is a bug: its traceback
        why = unreadable(exc, url, STORE_SCHEMA_FIX)
        return [error(NAME, f"could not count what crmtier made: {why.detail}", why.fix)]

    def read(tasks: bool) -> Withdrawable:
        return Withdrawable(held.sales_tasks if tasks else 0, held.memberships)

    return write_readiness.withdrawal_checks(connector, writeback, kinds, read)
