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
from collections.abc import Iterator
from pathlib import Path

import pytest
from product_crms import needs
from product_synced import (
    CANDIDATE,
    assert_sync_plans_as_simulated,
    run,
    simulate,
    started,
    sync,
    with_policy,
)

from connectors.sandbox.base import Sandbox
from crmtier.config import load_config

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
    with started("salesforce", 80, tmp_path, monkeypatch) as (sandbox, plain):
        policy = tmp_path / "households.toml"
        policy.write_text(ON, encoding="utf-8")
        config = with_policy(plain, policy)
        couple = _couple(config)
        _set_aum(sandbox, couple[1], OWN)
        _set_aum(sandbox, couple[2], OTHER)
        sync(config)
        for cid in couple[1:]:
            written = sandbox.written(cid)
            assert written["value_tier"] == "private", written
            assert f"HOUSEHOLD_AUM Household {couple[0]} " in str(written["reasons"])
        yield sandbox, config, couple


def _simulate(config: Path, policy_text: str, out: Path) -> tuple[dict, str]:
    policy = out.with_suffix(".toml")
    policy.write_text(policy_text, encoding="utf-8")
    result = simulate(config, policy, "--output-json", str(out))
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
    assert_sync_plans_as_simulated(with_policy(config, tmp_path / "candidate.toml"), data)


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


def test_the_documented_preview_before_switching_households_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/households.md, "Turning households on": on a book synced with households off,
    ``simulate`` of a households-on candidate decides everyone alone and its notice points
    to the preview that works, ``sync --dry-run --full`` under the candidate, which shows
    the couple lifted by its household and writes nothing."""
    with started("salesforce", 80, tmp_path, monkeypatch) as (sandbox, plain):
        policy = tmp_path / "households.toml"
        policy.write_text(ON, encoding="utf-8")
        candidate = with_policy(plain, policy)
        hid, a, b = _couple(candidate)
        _set_aum(sandbox, a, OWN)
        _set_aum(sandbox, b, OTHER)
        sync(plain)
        assert sandbox.written(a)["value_tier"] == "wealth"
        data, notice = _simulate(plain, ON, tmp_path / "sim.json")
        assert "decided alone" in notice and "sync --dry-run --full" in " ".join(notice.split())
        assert data["migration"]["value"]["moved"] == 0  # no links stored: nobody lifted
        dry = run("sync", "--config", str(candidate), "--dry-run", "--full", "--json")
        assert dry.exit_code == 0, dry.output
        assert f"HOUSEHOLD_AUM Household {hid} " in dry.output
        assert sandbox.written(a)["value_tier"] == "wealth"  # the preview wrote nothing
