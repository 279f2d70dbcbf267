"""``crmtier demo``: the whole product on a local sandbox, no configuration, no network.

Starts a sandbox CRM in-process (HTTPS on 127.0.0.1), seeds synthetic bank customers,
runs a full sync through the real connector, edits a few customers in the CRM and
delivers the changes through the webhook receiver and worker, runs the incremental sync,
prints a summary and writes the HTML report. Exits 1 with a one-line reason on failure.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click
from rich.console import Console

from connectors.errors import ConnectorError
from connectors.registry import kinds, plugin, plugins
from crmtier.demo.orchestrate import DemoError, run_demo
from crmtier.demo.summary import print_summary
from sync import jsonlog
from sync.errortext import error_text

#: where the report goes without --output-dir (relative to the working directory)
DEFAULT_REPORT = Path("crmtier-demo") / "report.html"


def default_crm() -> str:
    """The first CRM, by kind, whose demo runs at full speed (no ``demo_limit``)."""
    quick = [kind for kind, crm in plugins().items() if crm.demo_limit is None]
    return (quick or list(kinds()))[0]


@click.command(name="demo")
@click.option(
    "--crm",
    type=click.Choice(kinds()),
    default=default_crm(),
    show_default=True,
    help="Which CRM's sandbox to run.",
)
@click.option(
    "--customers",
    type=click.IntRange(min=20, max=200_000),
    default=2000,
    show_default=True,
    help="How many synthetic customers to seed.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the sandbox data, crmtier.toml, state store and report here "
    f"(default: a temporary directory, removed; the report goes to ./{DEFAULT_REPORT}).",
)
def command(crm: str, customers: int, output_dir: Path | None) -> None:
    """Run the whole product on a local sandbox: sync, webhooks, report."""
    jsonlog.configure("ERROR")
    logging.getLogger("uvicorn").setLevel(logging.CRITICAL)
    out = Console()
    err = Console(stderr=True)
    report_path = (output_dir / "report.html") if output_dir else Path.cwd() / DEFAULT_REPORT
    limit = plugin(crm).demo_limit
    if limit is not None and customers > limit.customers:
        err.print(
            f"note: {limit.why}: {customers:,} customers take minutes "
            f"(--customers {limit.customers} for a quick look)"
        )
    try:
        with err.status("crmtier demo") as status:
            result = run_demo(
                crm,
                customers,
                output_dir,
                report_path=report_path.resolve(),
                say=lambda text: status.update(f"crmtier demo: {text}"),
            )
    except (DemoError, ConnectorError, OSError) as exc:
        click.echo(f"crmtier demo: failed: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:  # the one-line reason, whatever broke
        click.echo(f"crmtier demo: failed: {error_text(exc)}", err=True)
        sys.exit(1)
    print_summary(out, result)
