"""``crmtier simulate`` and ``crmtier explain`` with households on (issue 21 §1), end to end
on the Salesforce sandbox: a couple whose summed AUM reaches the private floor is synced
with households on, then each command decides from the household links the store recorded,
with no CRM call.

- simulate of the active policy under another name moves nobody (before the store kept
  links, every lifted member showed as a phantom downgrade);
- simulate of a candidate with households off shows the lifted members moving down;
- simulate of a candidate with lower floors and households on plans exactly what a dry run
  of the sync under that candidate plans (the figures are the sync's own);
- explain of a lifted member names its household in the ``HOUSEHOLD_AUM`` reason and never
  the other member or its amounts; its committed tiers are what explain decides again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from product_crms import needs
from test_product_simulate_explain import CANDIDATE, _created, _simulated, _with_policy, run

from connectors.sandbox.base import Sandbox, open_sandbox
from crmtier.config import load_config

AS_OF = "2026-12-06"
ON = "[households]\nenabled = true\n"
PRIVATE_FLOOR = 6_000_000
OWN, OTHER = 3_400_000, 2_900_000  # apart: wealth; together 630万, private
pytestmark = needs["salesforce"]


def _couple(config: Path) -> tuple[str, str, str]:
    """Two individuals who make up one household on their own: (household, a, b)."""
    connector = load_config(config).connector()
    try:
        records = {r.profile.id: r for page in connector.read_changed(None) for r in page.records}
        links = connector.household_links(sorted(records), [])  # type: ignore[attr-defined]
    finally:
        connector.close()
    per_customer: dict[str, set[str]] = {}
    members: dict[str, set[str]] = {}
    for lk in links:
        per_customer.setdefault(lk.customer_id, set()).add(lk.household_id)
        members.setdefault(lk.household_id, set()).add(lk.customer_id)
    for hid, people in sorted(members.items()):
        if len(people) == 2 and all(
            len(per_customer[m]) == 1 and records[m].profile.kind == "individual" for m in people
        ):
            a, b = sorted(people)
            return hid, a, b
    raise AssertionError("no couple in the seeded households")


def _set_aum(sandbox: Sandbox, cid: str, amount: int) -> None:
    sandbox.edit_customer(
        cid,
        {
            "assets.deposits": amount,
            "assets.investments": 0,
            "assets.insurance": 0,
            "aum_avg_3m": amount,
        },
    )


@pytest.fixture
def synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Sandbox, Path, tuple[str, str, str]]]:
    """A sandbox of 80 customers, one couple lifted into private banking by its household,
    synced once with households on; the config's policy file switches them on."""
    sandbox = open_sandbox("salesforce", data_dir=tmp_path / "salesforce")
    sandbox.seed(80)
    sandbox.start()
    try:
        text, env = sandbox.crmtier_config()
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        plain = tmp_path / "crmtier.toml"
        plain.write_text(text, encoding="utf-8")
        policy = tmp_path / "households.toml"
        policy.write_text(ON, encoding="utf-8")
        config = _with_policy(plain, policy)
        couple = _couple(config)
        _set_aum(sandbox, couple[1], OWN)
        _set_aum(sandbox, couple[2], OTHER)
        result = run("sync", "--config", str(config), "--as-of", AS_OF, "--quiet")
        assert result.exit_code == 0, result.output
        for cid in couple[1:]:
            written = sandbox.written(cid)
            assert written["value_tier"] == "private", written
            assert f"HOUSEHOLD_AUM Household {couple[0]} " in str(written["reasons"])
        yield sandbox, config, couple
    finally:
        sandbox.stop()


def _under(config: Path, policy: Path) -> Path:
    """``config`` with ``policy`` as its policy file."""
    text = re.sub(r'\[policy\]\nfile = "[^"]*"\n', "", config.read_text(encoding="utf-8"))
    out = config.with_name(f"{policy.stem}-crmtier.toml")
    out.write_text(f'{text}\n[policy]\nfile = "{policy}"\n', encoding="utf-8")
    return out


def _simulate(config: Path, policy_text: str, out: Path) -> tuple[dict, str]:
    policy = out.with_suffix(".toml")
    policy.write_text(policy_text, encoding="utf-8")
    args = ["simulate", "--config", str(config), "--policy", str(policy), "--as-of", AS_OF]
    result = run(*args, "--output-json", str(out))
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text(encoding="utf-8")), result.stderr


def test_simulate_decides_households_from_the_stored_links(
    synced: tuple[Sandbox, Path, tuple[str, str, str]], tmp_path: Path
) -> None:
    _, config, _ = synced
    same, notice = _simulate(config, f'name = "renamed"\n{ON}', tmp_path / "same.json")
    assert "households are switched on" not in notice  # a full sync recorded every link
    assert same["customers"] == 80
    assert same["migration"]["value"]["moved"] == 0  # no phantom moves

    # households off, and no grace period to hold the members they lifted: a and b fall
    off_text = "[households]\nenabled = false\n[value]\ngrace_days = 0\n"
    off, _ = _simulate(config, off_text, tmp_path / "off.json")
    value = off["migration"]["value"]
    cells = dict(zip(value["levels"], value["counts"], strict=True))
    assert cells["private"][value["levels"].index("wealth")] >= 2, value
    grace, _ = _simulate(config, f"[value]\ngrace_days = 0\n{ON}", tmp_path / "grace.json")
    assert grace["migration"]["value"]["moved"] == 0  # the fall is the households' alone


def test_simulate_with_households_matches_the_sync_it_predicts(
    synced: tuple[Sandbox, Path, tuple[str, str, str]], tmp_path: Path
) -> None:
    _, config, _ = synced
    candidate_text = f"{CANDIDATE}\n{ON}"
    data, _ = _simulate(config, candidate_text, tmp_path / "candidate.json")
    assert data["migration"]["value"]["moved"] > 0
    policy = tmp_path / "candidate.toml"
    dry = run(
        "sync",
        "--config",
        str(_under(config, policy)),
        "--dry-run",
        "--full",
        "--as-of",
        AS_OF,
        "--json",
    )
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output.strip().splitlines()[-1])
    totals = report["totals"]
    waiting = report["counts"]["tasks_deferred"]
    for group, sim_group in (("task", "tasks"), ("campaign", "campaigns"), ("field", "fields")):
        expected = {
            k: v
            for k, v in _created(totals, group).items()
            if k not in ("aml_risk", "edd_required", "edd_review")
        }
        if group == "task":
            for rule, n in waiting.items():
                expected.setdefault(rule, [0, 0])[0] += n
        assert _simulated(data, sim_group) == expected, group


def test_explain_names_the_household_never_another_member(
    synced: tuple[Sandbox, Path, tuple[str, str, str]],
) -> None:
    _, config, (household, a, b) = synced
    result = run("explain", "--config", str(config), "--json", a)
    assert result.exit_code == 0, result.output
    assert "households are switched on" not in result.stderr
    data = json.loads(result.output)
    assert data["tiers"]["value_tier"] == "private"
    assert "note" not in data  # the committed tiers are what explain decides again
    [lift] = [r for r in data["rules"] if r["code"] == "HOUSEHOLD_AUM"]
    assert lift["value"] == household and lift["threshold"] == PRIVATE_FLOOR
    assert household in lift["text"]
    assert [h["household"] for h in data["households"]] == [household]
    # the other member, its amount and the household's sum are nowhere in it
    for hidden in (b, str(OTHER), f"{OTHER:,}", str(OWN + OTHER), f"{OWN + OTHER:,}"):
        assert hidden not in result.output, hidden
    text = run("explain", "--config", str(config), a)
    assert text.exit_code == 0 and household in text.output
