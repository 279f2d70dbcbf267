"""``crmtier sandbox``: run a local HTTPS emulator of a CRM (its connector plugin's sandbox).

Prints one JSON line on start (base URL, CA bundle, the CRM's own credential names, the
control-API token) so scripts can read it, and with ``--write-config`` writes a ready
``crmtier.toml`` whose secrets are ``env:`` references; their values are printed once, to
stderr, as ``export`` lines. Runs until SIGINT/SIGTERM.

This is the one command that prints credentials, on purpose: they are throwaway values the
sandbox generated for itself (a real CRM's secret never passes through it), and printing
them is how a script or an admin trying crmtier gets to use them (README "Commands").
"""

from __future__ import annotations

import json
import signal
import sys
import tempfile
import threading
from pathlib import Path
from types import FrameType

import click

from connectors.registry import default_mapping, kinds
from connectors.sandbox.base import open_sandbox


@click.command("sandbox")
@click.option("--crm", type=click.Choice(kinds()), required=True, help="Which CRM to emulate.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=0, show_default=True, help="Port (0: any free port).")
@click.option(
    "--customers",
    default=200,
    show_default=True,
    type=click.IntRange(min=0),
    help="Synthetic customers to seed when the data dir holds none.",
)
@click.option(
    "--seed", default=7, show_default=True, help="Generator seed (same seed, same customers)."
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the CA, credentials and records live (default: a new temporary directory).",
)
@click.option(
    "--write-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a crmtier.toml pointing at this sandbox.",
)
@click.option(
    "--latency",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds added to every API call.",
)
def command(
    crm: str,
    host: str,
    port: int,
    customers: int,
    seed: int,
    data_dir: Path | None,
    write_config: Path | None,
    latency: float,
) -> None:
    """Run a local HTTPS emulator of a CRM, seeded with synthetic bank customers.

    Prints the emulator's own throwaway credentials (JSON on stdout; with --write-config
    also as export lines on stderr): they open this local sandbox only, never a real CRM.
    """
    directory = data_dir or Path(tempfile.mkdtemp(prefix=f"crmtier-{crm}-"))
    try:
        sandbox = open_sandbox(crm, data_dir=directory, host=host, port=port, latency=latency)
    except OSError as exc:
        raise click.ClickException(
            f"cannot start the {crm} sandbox on {host}:{port}: {exc.strerror}"
        ) from None
    if sandbox.store.count(default_mapping(crm).mapping.object) == 0:
        sandbox.seed(customers, seed)
    sandbox.start()
    if write_config is not None:
        text, env = sandbox.crmtier_config()
        write_config.write_text(text, encoding="utf-8")
        click.echo(f"# wrote {write_config}; set these before running crmtier:", err=True)
        for name, value in env.items():
            click.echo(f"export {name}={value}", err=True)
    click.echo(json.dumps(sandbox.info().as_json()))
    sys.stdout.flush()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    stop.wait()
    sandbox.stop()
