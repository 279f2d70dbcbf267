"""``crmtier report``: write the self-contained HTML tiering report of a sync stream."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from connectors.errors import ConfigError, ConnectorError
from crmtier.commands.options import config_option
from crmtier.config import load_config
from crmtier.report.build import build_report, write_report
from crmtier.report.links import discover
from sync import jsonlog
from sync.coverage import RosterError, roster_from_file


@click.command(name="report")
@config_option
@click.option(
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the HTML file.",
)
@click.option(
    "--run",
    "run_id",
    help="Run (id or prefix) whose DQ issues and API usage to "
    "show; default: the newest finished run that read records.",
)
@click.option(
    "--feedback/--no-feedback",
    default=False,
    show_default=True,
    help="Read CSAT/NPS and complaints from the CRM (one full read, API calls "
    "counted in the report) to show satisfaction by tier.",
)
@click.option(
    "--coverage",
    "roster",
    type=click.Path(path_type=Path, dir_okay=False),
    help="RM roster TOML ([coverage.advisors]): add advisor coverage (one full CRM read).",
)
@click.option(
    "--link",
    "links",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="A simulate, calibrate or explain output to link (repeatable); the newest ones in "
    "the report's directory are linked anyway.",
)
def command(
    config_path: Path,
    output: Path,
    run_id: str | None,
    feedback: bool,
    roster: Path | None,
    links: tuple[Path, ...],
) -> None:
    """Write the HTML report: tiers, migration, value × risk, DQ, API usage, feedback,
    and links to the simulate, calibrate and explain outputs next to it.

    The file has no scripts and loads nothing from the network: it opens the same on an
    air-gapped workstation. It holds aggregate counts only, never a customer.
    """
    jsonlog.configure("ERROR")  # retries and progress are noise here; failures are reported
    found, problems = discover(output.parent, links, skip=[output])
    for problem in problems:
        click.echo(f"crmtier report: {problem}", err=True)
    try:
        config = load_config(config_path)
        advisors = roster_from_file(roster) if roster is not None else None
        data = build_report(config, run_id=run_id, with_feedback=feedback, coverage_roster=advisors)
        data = replace(data, linked=[f.row(output.parent) for f in found])
        size = write_report(data, output)
    except (ConfigError, ConnectorError, OSError, RosterError) as exc:
        click.echo(f"crmtier report: {exc}", err=True)
        bad = isinstance(exc, ConfigError | RosterError)
        sys.exit(2 if bad else 1)  # 2: bad configuration (the state store: crmtier.cli)
    click.echo(
        f"report written: {output} ({size / 1024:.0f} KiB, {data.customers:,} customers, "
        f"{len(found)} simulate/calibrate/explain output(s) linked)"
    )
