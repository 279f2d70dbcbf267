"""The ``crmtier`` command line.

Each command lives in its own module under ``crmtier/commands/`` and is imported only when
it runs, so ``crmtier tier`` does not pay for importing the CRM SDKs or the web stack, and a
broken optional piece cannot take the whole CLI down. Every command exits non-zero with a
one-line reason on bad input (``click.UsageError``/``click.ClickException``), or on a
state store it cannot reach or use (``LazyGroup.invoke``), and never prints a secret.
"""

from __future__ import annotations

import gc
import importlib
from types import ModuleType
from typing import Any

import click

from tiering_core.collector import collector_paused

#: command name -> (module under crmtier.commands, one-line help shown by ``crmtier --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Run the whole product on a local sandbox: sync, webhooks, report."),
    "tier": ("tier", "Assess customers from a JSON Lines or CSV file."),
    "sync": ("sync", "Pull changed customers from the CRM, re-tier, write back."),
    "serve": ("serve", "Webhook receiver + worker + scheduled sync in one process."),
    "worker": (
        "worker",
        "Run task-engine jobs (webhook batches, full re-tier pages) from a PostgreSQL store.",
    ),
    "sandbox": ("sandbox", "Run a local HTTPS emulator of a CRM crmtier supports."),
    "doctor": ("doctor", "Check (and with --fix, set up) a CRM org for crmtier."),
    "report": ("report", "Write the self-contained HTML tiering report."),
    "audit": ("audit", "Inspect and verify the hash-chained audit trail."),
    "policy": ("policy", "Validate or show a tiering policy."),
    "simulate": ("simulate", "Compare a candidate policy with the active one; write nothing."),
    "explain": ("explain", "Why a customer has its tiers: inputs, rules, tasks, campaigns."),
    "calibrate": ("calibrate", "Propose policy thresholds from history (never applied)."),
    "coverage": (
        "coverage",
        "Propose RMs for uncovered private/wealth customers; --write carries them out.",
    ),
}


class LazyGroup(click.Group):
    #: ``main`` (the console script) sets it: the process is the command's own, so what
    #: its modules build on import may be frozen out of the collector (``load_frozen``)
    own_process = False

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[cmd_name]
        name = f"crmtier.commands.{module_name}"
        module = load_frozen(name) if self.own_process else importlib.import_module(name)
        command: click.Command = module.command
        return command

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; a state store it cannot reach or use ends it with one line
        naming the store and the exit status README.md documents
        (``crmtier.store_failures``), the same in every command and never a traceback.
        Imported only then: ``crmtier tier`` loads no database library."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise  # how click ends a command: its status, its line
        except Exception as exc:
            from crmtier.store_failures import failure

            found = failure(exc)
            if found is None:
                raise
            click.echo(f"crmtier {ctx.invoked_subcommand}: {found.line}", err=True)
            ctx.exit(found.exit_code)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crmtier")
def cli() -> None:
    """crmtier: bank customer tiering (value, needs, risk) inside your CRM."""


def load_frozen(name: str) -> ModuleType:
    """Import a command's module with the cyclic garbage collector paused, then freeze what
    the import left (``gc.freeze``: kept out of every later collection).

    Importing a command builds some 180,000 tracked objects (classes, functions, pydantic
    schemas, SQLAlchemy tables) that live as long as the process. Left to the collector,
    the import runs hundreds of passes over them, and every later pass of the oldest
    generation walks them all again; measured (docs/operations.md, "Start-up"), that was
    about a quarter of ``crmtier tier`` on a 10-line file and of a ``crmtier sync`` that
    finds nothing to do. Freezing is what Python's documentation of ``gc.freeze`` suggests
    for long-lived start-up objects; the few cycles the import leaves behind stay
    allocated (no change in peak RSS, measured). Only the console script does this
    (``main``): a process that merely calls ``cli``, such as a test, keeps its collector
    as it was."""
    with collector_paused():
        module = importlib.import_module(name)
        gc.freeze()
    return module


def main(argv: list[str] | None = None) -> Any:
    """The ``crmtier`` console script (and ``python -m crmtier``)."""
    cli.own_process = True
    return cli.main(args=argv, prog_name="crmtier")
