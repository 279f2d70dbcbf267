"""What the ``crmtier doctor`` tests share: the started-sandbox factory's type, running the
command, the config edit that maps an input to a field the org does not have, and the
check that doctor says what the start gate's refusal said."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner, Result

from connectors.sandbox.base import Sandbox
from crmtier.cli import cli
from crmtier.commands.doctor_withdrawals import check_withdrawals
from crmtier.config import load_config

#: the ``org`` fixture: ``org(crm, edit)`` -> (started sandbox, crmtier.toml, its secrets)
Setup = Callable[..., tuple[Sandbox, Path, dict[str, str]]]


def doctor(path: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["doctor", "--config", str(path), *args], env={"COLUMNS": "250"})


def csat_to_missing_field(text: str) -> str:
    """Map ``feedback.csat`` to ``Satisfaction__c``, an Account field the sandbox lacks
    (an input field: doctor must leave creating it to the bank)."""
    return text.replace('"feedback.csat" = "CSAT__c"', '"feedback.csat" = "Satisfaction__c"')


def doctor_says_the_refusal(path: Path, name: str, line: str) -> None:
    """``crmtier doctor`` over ``path`` gives the start gate's refusal ``line`` as its one
    failed withdrawal line ``name`` (its detail and fix, word for word), an error."""
    config = load_config(path)
    connector = config.connector()
    try:
        [held] = check_withdrawals(connector, config)
    finally:
        connector.close()
    assert held.name == name and not held.ok
    assert f"crmtier sync: {held.detail}: {held.fix}" == line
    checked = doctor(path)
    assert checked.exit_code == 1 and name in checked.output, checked.output
