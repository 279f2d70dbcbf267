"""A campaign switched off on its own (``[writeback.campaigns] key = false``) after crmtier
put customers in it: with no CRM id crmtier could not remove a sanctioned one, so while the
state store holds members crmtier made there ``crmtier sync`` refuses to start with one
line naming the campaign, how many it holds and the fix, and ``crmtier doctor`` prints the
same line (``sync.write_readiness``, docs/policy.md *Switching tasks or memberships off*).
The fix, ``key = { id = "...", add = false }``, starts, adds no one, and removes the member
a sanctions hit then finds; a store that holds none starts with ``false``. Against the
Salesforce sandbox, end to end.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from product_crms import needs
from product_org import start_org

from connectors.sandbox.base import Sandbox
from crmtier.cli import cli
from sync.write_readiness import SWITCHED_OFF_HELD, UNNAMED_HELD
from tests.product.product_doctor import doctor, doctor_says_the_refusal


def _sync(path: Path) -> Result:
    return CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet"])


def _set_campaign(text: str, key: str, value: str) -> str:
    """``text`` with the ``[writeback.campaigns]`` line of ``key`` set to ``value``."""
    changed, n = re.subn(rf'\n{key} = "[^"]*"\n', f"\n{key} = {value}\n", text)
    assert n == 1, key
    return changed


@needs["salesforce"]
def test_a_campaign_switched_off_while_it_holds_members_crmtier_made_refuses_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Sandbox]
) -> None:
    sandbox, text, _ = start_org("salesforce", tmp_path / "sf", monkeypatch, started)
    path = tmp_path / "crmtier.toml"
    path.write_text(text, encoding="utf-8")
    made = _sync(path)
    assert made.exit_code == 0, made.output
    [(key, count)] = Counter(c for _, c in sandbox.memberships()).most_common(1)
    campaign_id = re.search(rf'\n{key} = "([^"]+)"\n', text)
    assert campaign_id is not None

    off = _set_campaign(text, key, "false")
    path.write_text(off, encoding="utf-8")
    before = sandbox.write_calls()
    refused = _sync(path)
    assert refused.exit_code == 2, refused.output
    [line] = refused.stderr.splitlines()
    assert line == (
        f"crmtier sync: [writeback.campaigns] {key} = false but crmtier holds {count} "
        f"member{'s' if count > 1 else ''} there (made, or in doubt): a sanctions hit could "
        "not remove them: keep its CRM id so crmtier can, adding no one: "
        f'{key} = {{ id = "<CRM id>", add = false }}'
    )
    assert sandbox.write_calls() == before

    doctor_says_the_refusal(path, SWITCHED_OFF_HELD, line)

    # the fix: the id kept, no one added; a sanctions hit removes the member crmtier made
    kept = _set_campaign(text, key, f'{{ id = "{campaign_id.group(1)}", add = false }}')
    path.write_text(kept, encoding="utf-8")
    member, *others = sorted(cid for cid, c in sandbox.memberships() if c == key)
    sandbox.edit_customer(member, {"aml.sanctions_hit": True})
    withdrawn = _sync(path)
    assert withdrawn.exit_code == 0, withdrawn.output
    assert sorted(cid for cid, c in sandbox.memberships() if c == key) == others

    # the same org and config over a store that holds none: false starts
    fresh = re.sub(r'\nurl = "sqlite:///[^"]*"\n', f'\nurl = "sqlite:///{tmp_path}/new.db"\n', off)
    assert fresh != off
    path.write_text(fresh, encoding="utf-8")
    started_fresh = _sync(path)
    assert started_fresh.exit_code == 0, started_fresh.output


@needs["salesforce"]
def test_a_campaign_the_policy_dropped_while_it_holds_members_refuses_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, started: list[Sandbox]
) -> None:
    """Memberships on: a bank's policy adds ``spring_promo``, crmtier puts customers in it,
    then the policy drops it (and so must ``[writeback.campaigns]``: a key the policy does
    not know is refused at load). The store still holds those members: ``crmtier sync``
    refuses to start with one line, before any write, where the planner used to stop the
    run when it met the first such customer, after field writes; ``crmtier doctor`` prints
    the line. The fix the line names, ``spring_promo = { id = "...", add = false }``,
    loads, and a full sync removes every member crmtier made there (none qualifies any
    longer); then the key can go."""
    sandbox, text, _ = start_org("salesforce", tmp_path / "sf", monkeypatch, started)
    campaign_id = "701000000000008AAA"  # the org's survey_wealth campaign, switched off
    assert f'\nsurvey_wealth = "{campaign_id}"\n' in text
    policy = tmp_path / "bank_policy.toml"
    policy.write_text(
        '[strategy.campaigns.spring_promo]\ntiers = ["private", "wealth", "affluent", "mass"]\n',
        encoding="utf-8",
    )
    base = _set_campaign(text, "survey_wealth", "false") + f'\n[policy]\nfile = "{policy}"\n'
    path = tmp_path / "crmtier.toml"

    def with_promo(value: str) -> str:
        return base.replace(
            "\n[writeback.campaigns]\n", f"\n[writeback.campaigns]\nspring_promo = {value}\n"
        )

    path.write_text(with_promo(f'"{campaign_id}"'), encoding="utf-8")
    made = _sync(path)
    assert made.exit_code == 0, made.output
    count = sum(1 for _, c in sandbox.memberships() if c == "survey_wealth")
    assert count > 1

    policy.write_text('name = "bank_policy"\n', encoding="utf-8")  # spring_promo dropped
    path.write_text(base, encoding="utf-8")
    before = sandbox.write_calls()
    refused = _sync(path)
    assert refused.exit_code == 2, refused.output
    [line] = refused.stderr.splitlines()
    assert line == (
        f"crmtier sync: [writeback.campaigns] names no campaign spring_promo but crmtier "
        f"holds {count} members there (made, or in doubt): a sanctions hit could not remove "
        'them: keep its CRM id so crmtier can, adding no one: spring_promo = { id = "<CRM '
        'id>", add = false }'
    )
    assert sandbox.write_calls() == before
    checked = doctor(path)
    assert checked.exit_code == 1 and UNNAMED_HELD in checked.output, checked.output

    path.write_text(with_promo(f'{{ id = "{campaign_id}", add = false }}'), encoding="utf-8")
    removed = CliRunner().invoke(cli, ["sync", "--config", str(path), "--quiet", "--full"])
    assert removed.exit_code == 0, removed.output
    assert not [c for _, c in sandbox.memberships() if c == "survey_wealth"]
    path.write_text(base, encoding="utf-8")  # the store holds none there now: the key can go
    gone = _sync(path)
    assert gone.exit_code == 0, gone.output
