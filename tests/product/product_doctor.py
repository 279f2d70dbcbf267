"""What the ``crmtier doctor`` tests share: the started-sandbox factory's type, running the
command, and the config edit that maps an input to a field the org does not have."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from connectors.sandbox.base import Sandbox
from crmtier.cli import cli

#: the ``org`` fixture: ``org(crm, edit)`` -> (started sandbox, crmtier.toml, its secrets)
Setup = Callable[..., tuple[Sandbox, Path, dict[str, str]]]


def doctor(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", "--config", str(path), *args], env={"COLUMNS": "250"})


def csat_to_missing_field(text: str) -> str:
    """Map ``feedback.csat`` to ``Satisfaction__c``, an Account field the sandbox lacks
    (an input field: doctor must leave creating it to the bank)."""
    return text.replace('"feedback.csat" = "CSAT__c"', '"feedback.csat" = "Satisfaction__c"')
