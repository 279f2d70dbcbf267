"""The ``crmtier`` command line.

Each command lives in its own module under ``crmtier/commands/`` and is imported only when
it runs, so ``crmtier tier`` does not pay for importing the CRM SDKs or the web stack, and a
broken optional piece cannot take the whole CLI down. Every command exits non-zero with a
one-line reason on bad input (``click.UsageError``/``click.ClickException``) and never
prints a secret.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

#: command name -> (module under crmtier.commands, one-line help shown by ``crmtier --help``)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "Run the whole product on a local sandbox: sync, webhooks, report."),
    "tier": ("tier", "Assess customers from a JSON Lines or CSV file."),
    "sync": ("sync", "Pull changed customers from the CRM, re-tier, write back."),
    "serve": ("serve", "Webhook receiver + worker + scheduled sync in one process."),
    "worker": ("worker", "Run task-engine jobs (webhook batches) from a PostgreSQL store."),
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
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[cmd_name]
        module = importlib.import_module(f"crmtier.commands.{module_name}")
        command: click.Command = module.command
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="crmtier")
def cli() -> None:
    """crmtier: bank customer tiering (value, needs, risk) inside your CRM."""


def main(argv: list[str] | None = None) -> Any:
    return cli.main(args=argv, prog_name="crmtier")
