"""``crmtier coverage``: which relationship manager should take each private or wealth
customer who has none, under the RMs' capacities (issue 21 §2). Writes nothing.

One full read of the CRM (owners are CRM data), the tiers decided under the active policy,
then ``tiering_core.coverage.plan`` with the roster of ``--roster`` (a TOML file whose
``[coverage.advisors]`` table gives each RM's capacity, docs/policy.md "Advisor
coverage"). Prints coverage per tier, every RM's load against capacity and the proposals
(CRM record ids and RM user ids only), as text or JSON. The sync writes the proposal
tasks; this command is the manager's preview.

Exit status: 0 done, 1 the CRM failed, 2 bad configuration or roster.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import click

from connectors.errors import ConfigError, ConnectorError
from crmtier.config import load_config
from sync import jsonlog
from sync.coverage import RosterError, propose, roster_from_file
from tiering_core.policy import PolicyError, load_policy


@click.command(name="coverage")
@click.option(
    "--config", "config_path", type=click.Path(path_type=Path), required=True, help="crmtier.toml"
)
@click.option(
    "--roster",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="TOML file with [coverage.advisors]: RM user id = capacity (private-equivalents).",
)
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Assessment date (default today).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def command(config_path: Path, roster: Path, as_of: datetime | None, as_json: bool) -> None:
    """Propose RMs for uncovered customers within capacity; write nothing."""
    jsonlog.configure("ERROR")
    day = as_of.date() if as_of is not None else date.today()
    try:
        config = load_config(config_path)
        policy = load_policy(config.policy_path())
        advisors = roster_from_file(roster)
        connector = config.connector()
        try:
            coverage, _ = propose(connector.read_changed(None), advisors, policy, day)
            calls = connector.api_usage().total
        finally:
            connector.close()
    except (ConfigError, PolicyError, RosterError) as exc:
        click.echo(f"crmtier coverage: {exc}", err=True)
        sys.exit(2)
    except (ConnectorError, OSError) as exc:
        click.echo(f"crmtier coverage: {exc}", err=True)
        sys.exit(1)
    if as_json:
        out = {
            "as_of": day.isoformat(),
            "needing": coverage.needing,
            "covered": coverage.covered,
            "books": [asdict(b) for b in coverage.books],
            "proposals": [asdict(p) for p in coverage.proposals],
            "waiting": [c.id for c in coverage.waiting],
            "roster_problems": list(advisors.problems),
            "api_calls": calls,
        }
        click.echo(json.dumps(out, ensure_ascii=False, sort_keys=True))
        return
    for problem in advisors.problems:
        click.echo(f"roster: {problem}", err=True)
    for tier, n in coverage.needing.items():
        click.echo(f"{tier}: {n} customer(s), {coverage.covered[tier]} covered or proposed")
    for b in coverage.books:
        click.echo(f"RM {b.advisor_id}: {b.clients} client(s), load {b.load:g} of {b.capacity:g}")
    for p in coverage.proposals:
        click.echo(f"propose {p.advisor_id} for {p.customer_id} ({p.tier})")
    click.echo(f"{len(coverage.waiting)} waiting for an RM; {calls} API call(s)")
