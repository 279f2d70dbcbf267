"""``crmtier simulate``: what a candidate policy would change, before it is switched on.

Runs the candidate policy and the active one side by side over the book the state store
last saw (``--from-crm``: over the CRM read afresh, one full read at the minimum calls) and
writes nothing to the CRM or the store. Reports the migration matrix of every dimension,
the tasks per rule and campaign joins and leaves the next sync would make under each, the
API calls that costs, and the customers whose tier moves more than one step (by CRM id).
With households on in either policy, each customer is decided beside the other members of
its households as the store recorded them (``sync.household_store``; with ``--from-crm``
too: the households are not read again). How the figures are computed:
``sync/simulation.py``; docs/simulate-explain.md.

Exit status: 0 done, 1 the CRM could not be read (``--from-crm``), 2 bad configuration,
policy or state store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from connectors.contract import Connector
from connectors.errors import ConfigError, ConnectorError
from connectors.registry import build_connector
from crmtier.commands.listing import stdout_console
from crmtier.commands.options import BadConfiguration, config_errors, config_option
from crmtier.config import CrmtierConfig, load_config
from sync.disclosure import Disclosure
from sync.household_store import StoredHouseholds, is_complete
from sync.inputs import StoredCustomer, ensure_table, iter_chunks, profile_text
from sync.planner import Known
from sync.simulation import (
    MOVERS_KEPT,
    RESTRICTED_DIMENSIONS,
    Simulation,
    Simulator,
    simulate,
)
from sync.state import CustomerState, load_states
from sync.store import StateStore
from sync.taskbudget import load_open, waiting_by_rule
from tiering_core.policy import Policy, PolicyError, load_policy
from tiering_core.privacy import pseudonym

#: Printed (to stderr) when a policy switches households on but the store's household links
#: are not known complete (``sync.household_store``): customers whose links were never read
#: are decided alone, so a household's lift may be missing; saying so is better than a
#: silently different answer.
HOUSEHOLDS_NOTICE = (
    "crmtier {command}: households are switched on in the policy, but the state store's "
    "household links are incomplete (no full sync with households on has read them all): "
    "a customer whose links were never read is decided alone here; to preview households "
    "before switching them on, run `crmtier sync --dry-run --full` with a config whose "
    "[policy] file turns them on (it reads them and writes nothing); a `crmtier sync "
    "--full` with households on records them"
)


def households_notice(store: StateStore, stream: str, command: str, *policies: Policy) -> None:
    """Print ``HOUSEHOLDS_NOTICE`` when a policy reads households and the links are not
    known complete."""
    if not any(p.households.enabled for p in policies):
        return
    with store.begin() as conn:
        complete = is_complete(conn, stream)
    if not complete:
        click.echo(HOUSEHOLDS_NOTICE.format(command=command), err=True)


#: customers per evaluated chunk: large enough for numpy, small enough for memory
CHUNK = 20_000


def _known(store: StateStore, stream: str) -> Any:
    def known(ids: list[str]) -> Mapping[str, Known]:
        with store.begin() as conn:
            states = load_states(conn, stream, ids)
        return {cid: state.known() for cid, state in states.items()}

    return known


def _from_crm(
    connector: Connector, store: StateStore, stream: str, key: bytes
) -> Iterator[list[StoredCustomer]]:
    """The CRM's customers read afresh, with the store's committed state for hysteresis;
    the CRM's write-back values are taken as read (they already show crmtier's writes)."""
    batch: list[StoredCustomer] = []
    for page in connector.read_changed(None):
        ids = [r.profile.id for r in page.records]
        with store.begin() as conn:
            states = load_states(conn, stream, ids)
        for record in page.records:
            cid = record.profile.id
            state = states.get(cid)
            state = (
                replace(state, fields=None) if state else CustomerState(cid, pseudonym(cid, key))
            )
            batch.append(
                StoredCustomer(
                    cid, state.pseudonym, profile_text(record.profile), record.current, "", state
                )
            )
        if len(batch) >= CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def report_json(
    sim: Simulation, disclosure: Disclosure, calls: tuple[dict[str, int], dict[str, int]]
) -> dict[str, Any]:
    """The simulation as JSON, with what ``disclosure`` hides left out (an AML matrix,
    AML movers, EDD tasks, restricted fields): the terminal, the file and the HTML page
    all show this one dict."""
    active_calls, candidate_calls = calls
    dims = {
        name: m.as_json()
        for name, m in sim.matrices.items()
        if disclosure.show or name not in RESTRICTED_DIMENSIONS
    }
    movers = {
        name: {"count": sim.mover_counts[name], "crm_ids": ids}
        for name, ids in sim.movers.items()
        if disclosure.show or name not in RESTRICTED_DIMENSIONS
    }

    def totals(group: str) -> dict[str, dict[str, int]]:
        a = sim.active.totals.as_json()[group]
        c = sim.candidate.totals.as_json()[group]
        out = {}
        for name in sorted({*a, *c}):
            if (group == "task" and disclosure.hides_rule(name)) or (
                group == "field" and not disclosure.show and name in disclosure.restricted
            ):
                continue
            ca, cc = a.get(name, {}), c.get(name, {})
            out[name] = {
                "active_created": ca.get("created", 0),
                "candidate_created": cc.get("created", 0),
                "active_closed": ca.get("closed", 0),
                "candidate_closed": cc.get("closed", 0),
            }
            if group == "task":
                out[name].update(_budgeted(sim, name, out[name]))
        return out

    return {
        "active_policy": sim.active_version,
        "candidate_policy": sim.candidate_version,
        "as_of": sim.as_of.isoformat(),
        "customers": sim.customers,
        "customers_decided_differently": sim.decided,
        "restricted_shown": disclosure.show,
        "migration": dims,
        "movers_over_one_step": movers,
        "tasks": totals("task"),
        "campaigns": totals("campaign"),
        "fields": totals("field"),
        "customers_with_writes": {
            "active": sim.active.customers,
            "candidate": sim.candidate.customers,
        },
        "api_calls": {
            "active": active_calls,
            "candidate": candidate_calls,
            "change": sum(candidate_calls.values()) - sum(active_calls.values()),
            "read": sim.reads,
        },
    }


def _budgeted(sim: Simulation, rule: str, row: dict[str, int]) -> dict[str, Any]:
    """Of the tasks a rule would create, how many the next run makes within the policy's
    budgets and per-owner caps, and how many wait for later runs (a rule without bounds:
    all now)."""
    out: dict[str, Any] = {}
    for name, side in (("active", sim.active), ("candidate", sim.candidate)):
        bounded = side.forecast is not None and rule in side.forecast.limits
        created = row[f"{name}_created"]
        out[f"{name}_now"] = side.within_budget[rule] if bounded else created
        out[f"{name}_waiting"] = side.waiting[rule] if bounded else 0
    out["waiting_in_store"] = sim.waiting_now.get(rule, 0)
    return out


def _terminal(console: Console, data: dict[str, Any]) -> None:
    head = Table(title="crmtier simulate", show_header=False)
    head.add_row("active policy", data["active_policy"])
    head.add_row("candidate policy", data["candidate_policy"])
    head.add_row("as of", data["as_of"])
    head.add_row(
        "customers",
        f"{data['customers']:,} ({data['customers_decided_differently']:,} decided "
        "differently or acted on differently)",
    )
    calls = data["api_calls"]
    head.add_row(
        "API calls",
        f"next sync with the candidate {sum(calls['candidate'].values()):,} "
        f"{calls['candidate']}, with the active {sum(calls['active'].values()):,}: "
        f"the change costs {calls['change']:+,}"
        + (f"; this simulation read the CRM with {calls['read']}" if calls["read"] else ""),
    )
    if not data["restricted_shown"]:
        head.add_row(
            "restricted", "AML migration, AML movers and EDD tasks hidden (--show-restricted)"
        )
    console.print(head)
    for name, m in data["migration"].items():
        table = Table(title=f"{name}: active (rows) -> candidate (columns), {m['moved']:,} move")
        table.add_column("")
        for level in m["levels"]:
            table.add_column(level, justify="right")
        for level, row in zip(m["levels"], m["counts"], strict=True):
            table.add_row(level, *(f"{n:,}" for n in row))
        console.print(table)
    for title, group in (
        ("tasks per rule", "tasks"),
        ("campaign joins / leaves", "campaigns"),
        ("field updates", "fields"),
    ):
        rows = data[group]
        if not rows:
            continue
        table = Table(title=f"{title} (next sync: active -> candidate)")
        budgeted = group == "tasks"
        columns = ["", "made/joined", "left"]
        if budgeted:
            columns[2:2] = ["within budget now", "waiting"]
        for column in columns:
            table.add_column(column, justify="right" if column else "left")
        for name, n in rows.items():
            cells = [
                name,
                f"{n['active_created']:,} -> {n['candidate_created']:,}",
                f"{n['active_closed']:,} -> {n['candidate_closed']:,}",
            ]
            if budgeted:
                cells[2:2] = [
                    f"{n['active_now']:,} -> {n['candidate_now']:,}",
                    f"{n['active_waiting']:,} -> {n['candidate_waiting']:,}",
                ]
            table.add_row(*cells)
        console.print(table)
    movers = data["movers_over_one_step"]
    for name, m in movers.items():
        if m["count"]:
            shown = ", ".join(m["crm_ids"][:20])
            more = m["count"] - min(20, len(m["crm_ids"]))
            console.print(
                f"{name}: {m['count']:,} move more than one step: {shown}"
                + (
                    f" … and {more:,} more (--output-json lists up to {MOVERS_KEPT:,})"
                    if more > 0
                    else ""
                )
            )


def _load(path: Path | None, what: str) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        raise BadConfiguration(f"{what}: {exc}") from None


@click.command(name="simulate")
@config_option
@click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The candidate policy (TOML, merged over the default like any policy).",
)
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Assess as of this day (default: today, UTC).",
)
@click.option(
    "--from-crm",
    is_flag=True,
    help="Read the CRM afresh (one full read) instead of the store's last view.",
)
@click.option(
    "--output-json",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the whole result as JSON here.",
)
@click.option(
    "--output-html",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the result as an HTML page in the report's style here.",
)
@click.option(
    "--show-restricted",
    is_flag=True,
    help="Include the AML migration, AML movers and EDD tasks (confidential).",
)
def command(
    config_path: Path,
    policy_path: Path,
    as_of: datetime | None,
    from_crm: bool,
    output_json: Path | None,
    output_html: Path | None,
    show_restricted: bool,
) -> None:
    """Run a candidate policy against the active one over the whole book; write nothing.

    Shows, per dimension, how many customers move from each level to each other, the
    tasks and campaign changes the next sync would make under either policy, the API
    calls that costs, and the customers whose tier moves more than one step.
    """
    with config_errors():
        config = load_config(config_path)
    active = _load(config.policy_path(), "active policy ([policy] path)")
    candidate = _load(policy_path, f"candidate policy {policy_path}")
    day = as_of.date() if as_of else datetime.now(UTC).date()
    writeback = config.writeback_config()
    with config_errors():
        store = config.open_state_store()
    try:
        ensure_table(store)
        households_notice(store, config.stream, "simulate", active, candidate)
        connector = build_connector(config.crm, config.field_mapping(), writeback)
        try:
            sim = _simulate(config, store, connector, active, candidate, day, from_crm)
        finally:
            connector.close()
        caps = connector.capabilities
    except ConfigError as exc:
        raise BadConfiguration(str(exc)) from None
    except ConnectorError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    disclosure = Disclosure.of(writeback.restricted, show_restricted)
    data = report_json(sim, disclosure, (sim.active.calls(caps), sim.candidate.calls(caps)))
    _terminal(stdout_console(), data)
    if output_json is not None:
        output_json.parent.mkdir(parents=True, exist_ok=True)
        output_json.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    if output_html is not None:
        from crmtier.report.simulation import write_simulation

        write_simulation(data, config.kind, output_html)
    if sim.customers == 0:
        click.echo(
            "No customer to simulate: the store holds no assessed inputs for "
            f"{config.stream} yet (run crmtier sync first, or pass --from-crm).",
            err=True,
        )


def _simulate(
    config: CrmtierConfig,
    store: StateStore,
    connector: Connector,
    active: Policy,
    candidate: Policy,
    day: date,
    from_crm: bool,
) -> Simulation:
    with store.begin() as conn:  # what the owners' caps count now, and what waits
        open_tasks = load_open(conn, config.stream, day, prune=False)
        waiting_now = waiting_by_rule(conn, config.stream)
    simulator = Simulator(
        active,
        candidate,
        day,
        config.writeback_config(),
        connector.capabilities,
        _known(store, config.stream),
        open_tasks,
        households=(
            StoredHouseholds(store, config.stream)
            if active.households.enabled or candidate.households.enabled
            else None
        ),
    )
    simulator.result.waiting_now = waiting_now
    if not from_crm:
        return simulate(iter_chunks(store, config.stream, chunk=CHUNK), simulator)
    before = dict(connector.api_usage().calls)
    key = config.pseudonym_key() or store.pseudonym_key()
    sim = simulate(_from_crm(connector, store, config.stream, key), simulator)
    after = connector.api_usage().calls
    sim.reads = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
    return sim
