"""``[writeback] tasks = false`` after crmtier made sales tasks: a sanctions hit still closes
them (docs/policy.md), and closing needs what making did (a Zoho closure looks its task up
by COQL, a Salesforce one by the External ID field on Task, an FXiaoke one reads the
follow-up object). So while the store holds open
or in-doubt sales tasks the start-up gate still asks for the task prerequisites
(``sync.write_readiness.require_withdrawals``), and a missing one refuses the start with one
line naming the open tasks; a store that holds none asks nothing of tasks. ``crmtier
doctor`` prints that line too (``crmtier.commands.doctor_withdrawals``). Each case makes
tasks with everything granted, then takes the prerequisite away in the running org (the
field deleted, the scope revoked) and turns tasks off.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from product_crms import needs
from product_org import start_org

from connectors.sandbox.base import Sandbox
from connectors.sandbox.fxiaoke_schema import FOLLOWUP
from crmtier.cli import cli
from crmtier.commands.doctor_withdrawals import check_withdrawals
from crmtier.config import load_config
from sync.write_readiness import CLOSE_TASKS
from tests.product.product_doctor import doctor_says_the_refusal


def _drop_task_key(sandbox: Any) -> None:
    del sandbox.org.schema["Task"].fields["Crmtier_Key__c"]


def _revoke_coql(sandbox: Any) -> None:
    sandbox.api.scopes = sandbox.api.scopes - {"ZohoCRM.coql.READ"}


def _drop_followup_object(sandbox: Any) -> None:
    del sandbox.objects[FOLLOWUP]


#: crm -> (how the org loses the prerequisite, what the one line says is missing)
LACKING: dict[str, tuple[Callable[[Any], None], str]] = {
    "salesforce": (_drop_task_key, "external id Task.Crmtier_Key__c"),
    "zoho": (_revoke_coql, "add the scope ZohoCRM.coql.READ"),
    "fxiaoke": (_drop_followup_object, f"create object {FOLLOWUP}"),
}


def _sync(path: Path) -> Result:
    return CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet"])


@pytest.mark.parametrize("crm", [pytest.param(crm, marks=needs[crm]) for crm in LACKING])
def test_tasks_off_with_open_sales_tasks_still_checks_what_closing_needs(
    crm: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Sandbox]
) -> None:
    lack, missing = LACKING[crm]
    sandbox, text, _ = start_org(crm, tmp_path / crm, monkeypatch, started)
    path = tmp_path / "crmtier.toml"
    path.write_text(text, encoding="utf-8")
    made = _sync(path)
    assert made.exit_code == 0, made.output
    assert any(t.open for t in sandbox.tasks())

    lack(sandbox)
    off = text.replace("\ntasks = true\n", "\ntasks = false\n")
    assert "\ntasks = false\n" in off
    path.write_text(off, encoding="utf-8")
    before = sandbox.write_calls()
    refused = _sync(path)
    assert refused.exit_code == 2, refused.output
    [line] = refused.stderr.splitlines()
    opened = re.match(
        r"crmtier sync: tasks are off but (\d+) sales tasks crmtier made are still open: "
        r"closing them on a sanctions hit needs ",
        line,
    )
    assert opened is not None and int(opened.group(1)) > 0, line
    assert missing in line and "tasks = false" not in line  # the switch is no fix
    assert sandbox.write_calls() == before

    doctor_says_the_refusal(path, CLOSE_TASKS, line)  # its detail and fix, an error

    # the same org and config over a store that holds no task: nothing to close, no check
    fresh = re.sub(r'\nurl = "sqlite:///[^"]*"\n', f'\nurl = "sqlite:///{tmp_path}/new.db"\n', off)
    assert fresh != off
    path.write_text(fresh, encoding="utf-8")
    started_fresh = _sync(path)
    assert started_fresh.exit_code == 0, started_fresh.output
    config = load_config(path)
    connector = config.connector()
    try:
        assert check_withdrawals(connector, config) == []  # none held: no line
    finally:
        connector.close()
