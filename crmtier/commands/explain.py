"""``crmtier explain``: why one customer has its tiers, tasks and campaigns.

Takes a CRM record id or the customer's pseudonym (as logs and the audit trail name it);
rebuilds the decision from the inputs the last sync stored and the committed hysteresis
state under the active policy (``crmtier/explain.py``), and prints it in English or
Chinese, or as JSON. Restricted parts only with ``--show-restricted``. Writes nothing.

Exit status: 0 done, 1 the customer is unknown to the store, 2 bad configuration.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa
from rich.table import Table

from crmtier.commands.listing import stdout_console
from crmtier.commands.options import config_errors, config_option
from crmtier.commands.simulate import households_notice
from crmtier.config import load_config
from crmtier.explain import Beside, ExplainContext, explain
from crmtier.explain_labels import LABELS, column, label
from sync.disclosure import Disclosure
from sync.household_store import StoredHouseholds
from sync.inputs import ensure_table, iter_stored
from sync.planner import Known
from sync.schema import customers
from sync.state import load_states
from sync.store import StateStore
from tiering_core.policy import load_policy


def _resolve(store: StateStore, stream: str, customer: str) -> str | None:
    """The CRM id of ``customer``, given as a CRM id or a pseudonym."""
    with store.begin() as conn:
        found = conn.execute(
            sa.select(customers.c.customer_id).where(
                customers.c.stream == stream,
                sa.or_(customers.c.customer_id == customer, customers.c.pseudonym == customer),
            )
        ).scalar()
    return None if found is None else str(found)


def _beside(store: StateStore, stream: str, crm_id: str) -> Beside:
    """The customer's households as the store recorded them, with the other members'
    stored inputs (no CRM call)."""
    households = StoredHouseholds(store, stream)
    links = households.near([crm_id])
    others = sorted({lk.customer_id for lk in links} - {crm_id})
    members = [m for part in iter_stored(store, stream, ids=others) for m in part] if others else []
    return Beside(members, links)


def _print(data: dict[str, Any], lang: str) -> None:
    console = stdout_console()
    head = Table(title=LABELS["customer"][1 if lang == "zh" else 0], show_header=False)
    head.add_row(column("crm_id", lang), data["customer"]["crm_id"])
    head.add_row(column("pseudonym", lang), data["customer"]["pseudonym"])
    head.add_row(label("policy", lang), data["policy_version"])
    head.add_row(label("as_of", lang), data["as_of"])
    head.add_row(label("tiers", lang), ", ".join(f"{k}={v}" for k, v in data["tiers"].items()))
    head.add_row(column("service_level", lang), str(data["service_level"]))
    if "households" in data:
        named = (f"{h['household']} ({h['role']})" for h in data["households"])
        head.add_row(label("households", lang), ", ".join(named) or "-")
    if "crm_explanation" in data:
        head.add_row(label("crm_explanation", lang), data["crm_explanation"])
    if "note" in data:
        head.add_row("!", data["note"])
    console.print(head)
    for key, columns in (
        ("inputs", ("input", "value", "crm_field")),
        ("rules", ("code", "text", "value", "threshold", "policy_key")),
        ("tasks", ("rule", "why", "policy_key")),
        ("campaigns", ("campaign", "member", "why")),
    ):
        table = Table(title=label(key, lang))
        for name in columns:
            table.add_column(column(name, lang), overflow="fold")
        for row in data[key]:
            table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
        console.print(table)
    hyst = Table(title=label("hysteresis", lang), show_header=False)
    for k, v in data["hysteresis"].items():
        hyst.add_row(k, "" if v is None else str(v))
    console.print(hyst)


@click.command(name="explain")
@config_option
@click.argument("customer")
@click.option(
    "--lang",
    type=click.Choice(["en", "zh"]),
    default="en",
    show_default=True,
    help="Language of the labels and the reasons.",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Decide as of this day (default: the day of the last assessment).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as JSON.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the explanation as JSON here (crmtier report links it when it is in "
    "the report's directory).",
)
@click.option(
    "--show-restricted",
    is_flag=True,
    help="Include the AML rating, its inputs and reasons, and the EDD task.",
)
def command(
    config_path: Path,
    customer: str,
    lang: str,
    as_of: Any,
    as_json: bool,
    output: Path | None,
    show_restricted: bool,
) -> None:
    """Explain CUSTOMER (a CRM record id or a pseudonym): the inputs and the CRM field
    each came from, each rule that fired with its threshold and policy key, the
    hysteresis state, why each task and campaign was or was not made, and the policy
    version. When [writeback.fields] maps "explanation", also the short text every sync
    writes to that CRM field. Writes nothing to the CRM itself."""
    with config_errors():
        config = load_config(config_path)
        policy = load_policy(config.policy_path())
        store = config.open_state_store()
    try:
        ensure_table(store)
        households_notice(store, config.stream, "explain", policy)
        crm_id = _resolve(store, config.stream, customer)
        stored = (
            next(iter(iter_stored(store, config.stream, ids=[crm_id])), [None])[0]
            if crm_id
            else None
        )
        if stored is None:
            raise click.ClickException(
                f"{customer}: no assessed inputs stored for this customer in "
                f"{config.stream} (unknown id or pseudonym, or not synced since crmtier "
                "kept inputs: run crmtier sync --full)"
            )
        with store.begin() as conn:
            state = load_states(conn, config.stream, [stored.customer_id]).get(stored.customer_id)
        beside = (
            _beside(store, config.stream, stored.customer_id) if policy.households.enabled else None
        )
    finally:
        store.close()
    writeback = config.writeback_config()
    ctx = ExplainContext(
        policy,
        config.field_mapping(),
        writeback,
        Disclosure.of(writeback.restricted, show_restricted),
        lang,
    )
    day = as_of.date() if as_of else date.fromisoformat(stored.as_of)
    data = explain(stored, state.known() if state else Known(), ctx, day, beside)
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text + "\n", encoding="utf-8")
    if as_json:
        click.echo(text)
    else:
        _print(data, lang)
