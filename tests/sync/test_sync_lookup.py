"""Looking things up after a sync, as an admin does: a dry run's totals and its plan with
AML values hidden, ``audit show`` and ``sync --dead-letters`` by CRM record id or by
pseudonym, as a table that a pipe does not cut short or as JSON Lines.

The sync runs are the real ``crmtier sync`` against the Salesforce sandbox over HTTPS; the
listings are the real commands (click's runner) over the store those runs left.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result

from crmtier.cli import cli
from sync import outbox, schema
from sync.store import StateStore
from tests.sync.conftest import CRMTIER, Harness, salesforce_harness

CUSTOMERS = 80
AS_OF = datetime.now(UTC).date().isoformat()


@pytest.fixture
def harness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    with salesforce_harness(tmp_path / "sandbox", monkeypatch, CUSTOMERS) as h:
        yield h


def crmtier(harness: Harness, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(harness.config)])


def json_lines(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def piped_sync(harness: Harness, *args: str) -> str:
    """``crmtier sync`` with stdout a pipe, as when its output goes to a file or grep."""
    import subprocess

    proc = subprocess.run(
        [CRMTIER, "sync", "--config", str(harness.config), "--as-of", AS_OF, *args],
        env=harness.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_dry_run_totals_per_field_rule_and_campaign(harness: Harness) -> None:
    dry = harness.run("--dry-run", "--show-restricted", "--as-of", AS_OF)
    assert dry.returncode == 0 and dry.report is not None, dry.stderr
    totals, preview = dry.report["totals"], dry.report["preview"]
    planned = Counter(
        (
            p["kind"],
            p["detail"].get("field") or p["detail"].get("rule") or p["detail"].get("campaign"),
        )
        for p in preview
    )
    # every assessed customer's value tier is either to be written or already right
    value = totals["field"]["value_tier"]
    assert value["created"] + value["unchanged"] == CUSTOMERS
    assert value["created"] == planned["field_update", "value_tier"] > 0
    for rule, by_outcome in totals["task"].items():
        assert by_outcome["created"] == planned["task", rule], rule
    for campaign, by_outcome in totals["campaign"].items():
        assert by_outcome["created"] + by_outcome["closed"] == planned["membership", campaign]
    assert totals["task"] and totals["campaign"]

    real = harness.run("--as-of", AS_OF)
    assert real.returncode == 0, real.stderr
    again = harness.run("--dry-run", "--full", "--as-of", AS_OF)
    assert again.report is not None
    for group in ("field", "task", "campaign"):
        for name, by_outcome in again.report["totals"][group].items():
            assert by_outcome["created"] == by_outcome["closed"] == 0, (group, name)
            assert by_outcome["unchanged"] > 0, (group, name)
    # what was created in the first dry run is now "unchanged", rule by rule
    assert {r: t["unchanged"] for r, t in again.report["totals"]["task"].items()} == {
        r: t["created"] for r, t in totals["task"].items()
    }


def test_dry_run_hides_aml_values_unless_asked(harness: Harness) -> None:
    hidden = harness.run("--dry-run", "--as-of", AS_OF)
    shown = harness.run("--dry-run", "--show-restricted", "--as-of", AS_OF)
    assert hidden.report is not None and shown.report is not None

    def aml(report: dict[str, Any]) -> set[Any]:
        return {
            p["detail"]["new"] for p in report["preview"] if p["detail"].get("field") == "aml_risk"
        }

    def rules(report: dict[str, Any]) -> set[str]:
        return {p["detail"]["rule"] for p in report["preview"] if p["kind"] == "task"}

    assert aml(hidden.report) == {"(restricted)"}
    assert aml(shown.report) >= {"low"} and "(restricted)" not in aml(shown.report)
    assert "edd_review" in rules(shown.report)
    assert "edd_review" not in rules(hidden.report)

    table = piped_sync(harness, "--dry-run")
    assert "dry run totals" in table and "value_tier" in table
    assert "aml_risk" in table and "new=(restricted)" in table
    for level in ("low", "medium", "high", "prohibited"):
        assert f"new={level}" not in table.split("aml_risk", 1)[1].split("\n", 1)[0]
    assert "edd_review" not in table.split("dry run totals")[0]
    # not cut to a terminal's width: every planned customer's full id is in the output
    assert all(p["customer_id"] in table for p in hidden.report["preview"])
    # ... and no value cut but those the product bounds itself (a reasons text longer than
    # the CRM field, cut with "…" by tiering_core/reasons_field.py, as households make more)
    bounded = {
        str(p["detail"].get("new"))
        for p in hidden.report["preview"]
        if str(p["detail"].get("new")).endswith("…")
    }
    cut = [line for line in table.splitlines() if "…" in line]
    assert all(any(value in line for value in bounded) for line in cut), cut[:3]


def _letter(conn: sa.Connection, stream: str, cid: str, ref: str) -> None:
    item = outbox.OutboxItem(0, cid, "field_update", cid, {}, 5, "r", "sync")
    outbox.dead_letter(
        conn,
        stream,
        item,
        pseudonym=ref,
        error_code="INVALID_FIELD",
        reason="no such column",
        run_id="run-1",
    )


def test_audit_and_dead_letters_by_crm_id_or_pseudonym(harness: Harness) -> None:
    assert harness.run("--as-of", AS_OF).returncode == 0
    store = StateStore.open(harness.state_url())
    try:
        with store.begin() as conn:
            known = conn.execute(
                sa.select(schema.customers.c.customer_id, schema.customers.c.pseudonym).order_by(
                    schema.customers.c.customer_id
                )
            ).all()
            (cid, ref), (other, other_ref) = known[0], known[1]
            _letter(conn, "salesforce:Account", cid, ref)
            _letter(conn, "salesforce:Account", other, other_ref)
    finally:
        store.close()

    by_id = json_lines(crmtier(harness, "audit", "show", "--customer", cid, "--format", "json"))
    by_ref = json_lines(crmtier(harness, "audit", "show", "--customer", ref, "--format", "json"))
    assert by_id == by_ref and by_id
    assert {(r["customer"], r["crm_id"]) for r in by_id} == {(ref, cid)}
    table = crmtier(harness, "audit", "show", "--customer", cid)
    assert cid in table.stdout and ref in table.stdout and "…" not in table.stdout

    letters = json_lines(crmtier(harness, "sync", "--dead-letters", "--format", "json"))
    assert {(r["crm_id"], r["error_code"]) for r in letters} == {
        (cid, "INVALID_FIELD"),
        (other, "INVALID_FIELD"),
    }
    for key in (cid, ref):
        mine = json_lines(crmtier(harness, "sync", "--dead-letters", "--customer", key, "--json"))
        assert [r["crm_id"] for r in mine] == [cid]
    listed = crmtier(harness, "sync", "--dead-letters")
    assert cid in listed.stdout and other in listed.stdout and "…" not in listed.stdout


def test_audit_show_hides_aml_unless_asked(harness: Harness) -> None:
    assert harness.run("--as-of", AS_OF).returncode == 0
    args = ("audit", "show", "--limit", "100000", "--format", "json")
    hidden = json_lines(crmtier(harness, *args))
    shown = json_lines(crmtier(harness, *args, "--show-restricted"))
    tiers_hidden = [r["new"] for r in hidden if r["event"] == "tier_change"]
    assert tiers_hidden and {t["aml_risk"] for t in tiers_hidden} == {"(restricted)"}
    assert {t["value_tier"] for t in tiers_hidden} - {"(restricted)"}
    assert not any(c.startswith("AML_") for r in hidden for c in r["reason_codes"].split(","))
    assert any(c.startswith("AML_") for r in shown for c in r["reason_codes"].split(","))
    edd = [r for r in shown if r["event"] == "task" and r["new"]["rule"] == "edd_review"]
    assert edd
    assert len(hidden) == len(shown) - len(edd)
