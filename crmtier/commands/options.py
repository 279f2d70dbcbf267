"""The options and the bad-configuration exit that the commands reading crmtier.toml share.

Written once so ``--config`` and ``--log-level`` read (and ``--help`` shows) the same in
every command, and a configuration or policy that cannot be used ends every command the
same way: one line ``crmtier COMMAND: reason`` on stderr, exit status 2, never a traceback
(README.md, "Commands"). A state store that cannot be reached or used ends every command
in ``crmtier.cli`` (``crmtier.store_failures``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import click

from connectors.errors import ConfigError
from tiering_core.policy import PolicyError

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="crmtier.toml",
)

#: a level logging does not know is a usage error (exit 2, one line), not a traceback;
#: every level it names stays accepted (``serve --log-level CRITICAL`` started before)
LOG_LEVELS = click.Choice(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], case_sensitive=False)

log_level_option = click.option("--log-level", default="INFO", show_default=True, type=LOG_LEVELS)


class BadConfiguration(click.ClickException):
    """The config or a policy cannot be used: exit 2, as every command does."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        ctx = click.get_current_context(silent=True)  # gone by the time click shows it
        self.command = f"crmtier {ctx.info_name}" if ctx is not None else "crmtier"

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"{self.command}: {self.format_message()}", file=file, err=True)


@contextmanager
def config_errors() -> Iterator[None]:
    """Inside: a ``ConfigError`` (crmtier.toml, the CRM settings) or ``PolicyError`` ends
    the command as ``BadConfiguration``."""
    try:
        yield
    except (ConfigError, PolicyError) as exc:
        raise BadConfiguration(str(exc)) from None
