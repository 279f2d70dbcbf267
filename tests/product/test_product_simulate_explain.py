"""``crmtier simulate`` and ``crmtier explain`` end to end: a sandbox CRM, a real sync, then
each command through the real CLI.

The simulation's figures are held to what a sync would actually do: after simulating a
candidate policy, the same candidate is made the active policy and ``sync --dry-run
--full`` plans the next run; its task, campaign and field totals must be exactly the
simulation's. Nothing is written by either command (the CRM's API usage shows no write).
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
    created,
    run,
    simulate,
    started,
    sync,
    with_policy,
)

from connectors.sandbox.base import Sandbox
from sync.store import StateStore


@pytest.fixture
def synced(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox of ``request.param`` seeded with 80 customers and synced once."""
    with started(request.param, 80, tmp_path, monkeypatch) as (sandbox, config):
        sync(config)
        yield sandbox, config


CRMS = [
    pytest.param("salesforce", marks=needs["salesforce"]),
    pytest.param("zoho", marks=needs["zoho"]),
    pytest.param("fxiaoke", marks=needs["fxiaoke"]),
]


@pytest.mark.parametrize("synced", CRMS, indirect=True)
def test_simulate_matches_the_sync_it_predicts(
    synced: tuple[Sandbox, Path], tmp_path: Path
) -> None:
    _, config = synced
    policy = tmp_path / "candidate.toml"
    policy.write_text(CANDIDATE, encoding="utf-8")
    out_json, out_html = tmp_path / "sim.json", tmp_path / "sim.html"
    writes_before = _writes(config)

    outputs = ("--output-json", str(out_json), "--output-html", str(out_html))
    result = simulate(config, policy, *outputs)
    assert result.exit_code == 0, result.output
    data = json.loads(out_json.read_text(encoding="utf-8"))

    # the active policy plans nothing on a book it just synced; the candidate moves people
    assert data["customers"] == 80
    assert data["api_calls"]["active"] == {}
    assert data["migration"]["value"]["moved"] > 0
    assert "aml" not in data["migration"] and "aml" not in data["movers_over_one_step"]
    value = data["migration"]["value"]
    cells = dict(zip(value["levels"], value["counts"], strict=True))
    multi = sum(
        n
        for row, counts in cells.items()
        for col, n in zip(value["levels"], counts, strict=True)
        if {row, col} <= {"private", "wealth", "affluent", "mass"}
        and abs(
            ["private", "wealth", "affluent", "mass"].index(row)
            - ["private", "wealth", "affluent", "mass"].index(col)
        )
        > 1
    )
    assert data["movers_over_one_step"]["value"]["count"] == multi > 0
    assert len(data["movers_over_one_step"]["value"]["crm_ids"]) == multi
    html = out_html.read_text(encoding="utf-8")
    assert 'data-table="simulate-value"' in html and "<script" not in html
    assert _writes(config) == writes_before  # simulate wrote nothing

    # the sync under the candidate plans exactly what the simulation said
    totals, waiting = assert_sync_plans_as_simulated(with_policy(config, policy), data)
    # and of those, the ones the budgets and caps let the run make now, and the ones waiting
    made = created(totals, "task")
    budgeted = {
        rule: (n["candidate_now"], n["candidate_waiting"])
        for rule, n in data["tasks"].items()
        if n["candidate_created"]
    }
    assert budgeted == {
        rule: (made.get(rule, [0, 0])[0], waiting.get(rule, 0)) for rule in budgeted
    }
    assert any(w for _, w in budgeted.values())  # the candidate outruns a budget

    restricted = simulate(config, policy, "--show-restricted", "--output-json", str(out_json))
    assert restricted.exit_code == 0, restricted.output
    assert "aml" in json.loads(out_json.read_text(encoding="utf-8"))["migration"]


def _writes(config: Path) -> int:
    """Audit rows in the store: every CRM write crmtier makes is audited."""
    import tomllib

    url = tomllib.loads(config.read_text(encoding="utf-8"))["state"]["url"]
    store = StateStore.open(url)
    try:
        with store.begin() as conn:
            return int(conn.exec_driver_sql("select count(*) from audit").scalar() or 0)
    finally:
        store.close()


@pytest.mark.parametrize("synced", CRMS[:1], indirect=True)
def test_explain_by_id_and_pseudonym(synced: tuple[Sandbox, Path]) -> None:
    _, config = synced
    result = run("explain", "--config", str(config), "--json", "001000000000004AAA")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["customer"]["crm_id"] == "001000000000004AAA"
    assert data["tiers"]["aml_risk"] == "(restricted)"
    assert all(r["dimension"] != "aml" for r in data["rules"])
    assert all(not i["input"].startswith("aml.") for i in data["inputs"])
    assert data["policy_version"].startswith("default@")
    # every input mapped from a CRM field names it; every fired rule names its policy key
    mapped = [i for i in data["inputs"] if i["input"].startswith("assets.")]
    assert mapped and all(i["crm_field"] for i in mapped)
    assert all(r["policy_key"] for r in data["rules"])
    # the committed tiers are what explain decides again
    assert "note" not in data
    assert {t["rule"] for t in data["tasks"]} >= {"complaint", "upgrade_call"}
    assert "edd_review" not in {t["rule"] for t in data["tasks"]}

    by_pseudonym = run(
        "explain", "--config", str(config), "--json", "--lang", "zh", data["customer"]["pseudonym"]
    )
    assert by_pseudonym.exit_code == 0, by_pseudonym.output
    zh = json.loads(by_pseudonym.output)
    assert zh["customer"] == data["customer"]
    assert [r["code"] for r in zh["rules"]] == [r["code"] for r in data["rules"]]
    assert any("\u4e00" <= ch <= "\u9fff" for r in zh["rules"] for ch in r["text"])
    table = run("explain", "--config", str(config), "--lang", "zh", "001000000000004AAA")
    assert table.exit_code == 0, table.output
    words = " ".join(table.output.split())
    for english in ("crm_field", "policy_key", "threshold", "service_level", "pseudonym"):
        assert english not in words, english  # every header in Chinese, as --lang promises
    assert "CRM 字段" in words and "策略键" in words

    shown = json.loads(
        run(
            "explain", "--config", str(config), "--json", "--show-restricted", "001000000000004AAA"
        ).output
    )
    assert shown["tiers"]["aml_risk"] != "(restricted)"
    assert any(i["input"].startswith("aml.") for i in shown["inputs"])

    unknown = run("explain", "--config", str(config), "no-such-customer")
    assert unknown.exit_code == 1
    assert "no-such-customer: no assessed inputs stored" in unknown.output


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("simulate", ("--config", "--policy", "--as-of", "--from-crm", "--output-html")),
        ("explain", ("--config", "--lang", "--show-restricted", "--output")),
        ("calibrate", ("--target", "--output", "--report", "--sensitive")),
        ("report", ("--config", "--output", "--link")),
    ],
)
def test_help(name: str, options: tuple[str, ...]) -> None:
    result = run(name, "--help")
    assert result.exit_code == 0
    assert all(option in result.output for option in options)


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--policy", "missing-policy.toml"),
        ("explain", "001000000000004AAA"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    """As every command says it: ``crmtier NAME: reason`` (crmtier/commands/options.py)."""
    result = run(args[0], "--config", str(tmp_path / "absent.toml"), *args[1:])
    assert result.exit_code == 2
    assert "absent.toml" in result.output and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith(f"crmtier {args[0]}: "), result.output


@pytest.mark.parametrize("synced", CRMS[:1], indirect=True)
def test_the_report_links_the_simulation_and_explanation_written_beside_it(
    synced: tuple[Sandbox, Path], tmp_path: Path
) -> None:
    _, config = synced
    out = tmp_path / "reports"
    policy = tmp_path / "candidate.toml"
    policy.write_text(CANDIDATE, encoding="utf-8")
    json_out, html_out = out / "candidate.json", out / "candidate.html"
    outputs = ("--output-json", str(json_out), "--output-html", str(html_out))
    simulated = simulate(config, policy, *outputs)
    assert simulated.exit_code == 0, simulated.output
    explained = run(
        "explain", "--config", str(config), "--output", str(out / "why.json"), "001000000000004AAA"
    )
    assert explained.exit_code == 0, explained.output
    assert json.loads((out / "why.json").read_text("utf-8"))["customer"]["crm_id"]
    report = run("report", "--config", str(config), "--output", str(out / "report.html"))
    assert report.exit_code == 0, report.output
    assert "3 simulate/calibrate/explain output(s) linked" in report.output
    html = (out / "report.html").read_text("utf-8")
    for kind, name in (
        ("simulation", "candidate.json"),
        ("simulation page", "candidate.html"),
        ("explanation", "why.json"),
    ):
        assert f'<a href="{name}" data-link="{kind}">' in html


@pytest.mark.parametrize("synced", ["salesforce"], indirect=True)
def test_simulate_says_when_it_cannot_show_household_lifts(
    synced: tuple[Sandbox, Path], tmp_path: Path
) -> None:
    """A book synced with households off has no household links recorded: a candidate
    that switches them on gets a notice, not a silently different answer (with links
    recorded by a full sync with households on, it gets none:
    test_product_simulate_households)."""
    _, config = synced
    policy = tmp_path / "households.toml"
    policy.write_text("[households]\nenabled = true\n", encoding="utf-8")
    result = simulate(config, policy)
    assert result.exit_code == 0, result.output
    assert "households are switched on in the policy" in result.stderr
    quiet = tmp_path / "off.toml"
    quiet.write_text("[households]\nenabled = false\n", encoding="utf-8")
    result = simulate(config, quiet)
    assert "households are switched on" not in result.stderr
