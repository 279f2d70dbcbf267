"""The report's numbers, collected from a real state store after real syncs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from product_synced import started

from connectors.sandbox.base import Sandbox
from crmtier.cli import cli
from crmtier.commands.serve import Parts, open_parts
from crmtier.config import load_config
from crmtier.report.build import build_report
from crmtier.report.collect import collect
from crmtier.report.render import render
from sync.schema import customers

CUSTOMERS = 40


@pytest.fixture
def synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, Path]]:
    with started("salesforce", CUSTOMERS, tmp_path, monkeypatch) as opened:
        yield opened


def ids_in_crm(sandbox: Sandbox) -> list[str]:
    return [sandbox.customer_id(i) for i in range(CUSTOMERS)]  # type: ignore[attr-defined]


def _parts(path: Path) -> Parts:
    return open_parts(load_config(path))


def test_numbers_match_the_runs(synced: tuple[Sandbox, Path]) -> None:
    sandbox, path = synced
    parts = _parts(path)
    try:
        first = parts.engine.run()
        ids = sorted(
            parts.connector.fetch([sandbox.customer_id(i) for i in range(3)]),  # type: ignore[attr-defined]
            key=lambda r: r.profile.id,
        )
        for record in ids:
            sandbox.edit_customer(
                record.profile.id,
                {
                    "assets.deposits": 9_000_000,
                    "assets.investments": 0,
                    "assets.insurance": 0,
                    "aum_avg_3m": None,
                },
            )
        second = parts.engine.run()
        data = collect(
            parts.store, crm="salesforce", stream=parts.engine.stream, run_id=first.run_id[:10]
        )
    finally:
        parts.close()
    value = next(d for d in data.distributions if d.dimension == "value_tier")
    assert value.total == data.customers == CUSTOMERS
    assert value.counts["private"] >= 3
    assert all(d.total == CUSTOMERS for d in data.distributions)
    assert all(m.total == CUSTOMERS for m in data.value_risk)
    # the newest run that moved a value tier is the second one: only the edited customers
    assert data.migration is not None
    moved = data.migration.total
    assert 1 <= moved <= 3
    assert {to for (_, to), n in data.migration.cells.items() if n} == {"private"}
    assert second.counts.changes and sum(second.counts.changes.values()) == moved
    # DQ and API usage are those of the run asked for; the minimum is the one it stored
    assert data.dq_issues == dict(first.counts.dq_issues)
    assert data.api is not None and data.api.calls == first.api_calls
    assert data.api.minimum == sum(first.min_calls.values())
    assert [r.run_id for r in data.runs][:2] == [second.run_id, first.run_id]
    # aggregate counts only: no customer id reaches the page (docs/data-handling.md)
    html = render(data)
    assert not [cid for cid in ids_in_crm(sandbox) if cid in html]


def test_feedback_by_tier_counts_every_rated_customer(synced: tuple[Sandbox, Path]) -> None:
    _, path = synced
    parts = _parts(path)
    try:
        parts.engine.run()
    finally:
        parts.close()
    data = build_report(load_config(path), with_feedback=True)
    assert data.feedback is not None
    assert sum(r.customers for r in data.feedback) == CUSTOMERS
    assert all(r.csat_mean is None or 1 <= r.csat_mean <= 5 for r in data.feedback)
    assert any("API call" in n for n in data.notes)


def test_report_command_writes_the_file(synced: tuple[Sandbox, Path], tmp_path: Path) -> None:
    _, path = synced
    runner = CliRunner()
    assert runner.invoke(cli, ["sync", "--config", str(path), "--quiet"]).exit_code == 0
    out = tmp_path / "r" / "report.html"
    result = runner.invoke(cli, ["report", "--config", str(path), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert f"{CUSTOMERS:,} customers" in result.output
    assert out.read_text("utf-8").startswith("<!DOCTYPE html>")


def test_report_command_bad_config_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["report", "--config", str(tmp_path / "none.toml"), "--output", str(tmp_path / "r.html")],
    )
    assert result.exit_code == 2  # bad configuration, as in every command
    assert result.output.strip().count("\n") == 0 and "not found" in result.output
    assert not (tmp_path / "r.html").exists()


PG_URL = "postgresql+psycopg://postgres@127.0.0.1/test"


@pytest.mark.postgres
def test_report_from_a_postgresql_state_store(synced: tuple[Sandbox, Path]) -> None:
    import uuid

    import sqlalchemy as sa

    _, path = synced
    admin = sa.create_engine(PG_URL)
    try:
        with admin.begin() as conn:
            schema = f"crmtier_report_{uuid.uuid4().hex[:10]}"
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError:
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    try:
        url = f"{PG_URL}?options=-csearch_path%3D{schema}"
        text = path.read_text("utf-8")
        start = text.index("[state]")
        end = text.index("\n\n", start)
        path.write_text(f'{text[:start]}[state]\nurl = "{url}"{text[end:]}', encoding="utf-8")
        assert load_config(path).state.url == url
        parts = _parts(path)
        try:
            assert parts.store.engine.dialect.name == "postgresql"
            parts.engine.run()
        finally:
            parts.close()
        data = build_report(load_config(path))
        assert data.customers == CUSTOMERS
        assert data.migration is not None and data.migration.total == CUSTOMERS
        assert data.api is not None and data.api.minimum
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_runs_say_why_dead_letters_by_crm_id_and_aml_apart(
    synced: tuple[Sandbox, Path],
) -> None:
    """A paused run that read 200 and wrote 0 says why (deferred, not lost); open dead
    letters are listed by CRM id and error code; AML is only in the restricted section."""
    import re

    from sync import outbox, runs
    from sync.outbox import OutboxItem
    from sync.runs import RunCounts

    _, path = synced
    parts = _parts(path)
    try:
        parts.engine.run()
        stream = parts.engine.stream
        counts = RunCounts(read=200)
        counts.skipped["deferred_to_next_run"] = 200
        with parts.store.begin() as conn:
            runs.start(
                conn,
                "p" * 32,
                stream,
                trigger="sync",
                dry_run=False,
                owner="test",
                ttl=timedelta(minutes=1),
            )
            runs.finish(
                conn,
                "p" * 32,
                "paused_quota",
                counts,
                {"query": 1},
                "Salesforce REQUEST_LIMIT_EXCEEDED: resumes next run",
            )
            cids = [
                str(c)
                for c in conn.execute(
                    sa.select(customers.c.customer_id).order_by(customers.c.customer_id).limit(2)
                ).scalars()
            ]
            for cid, code in zip(cids, ("INVALID_FIELD", "UNABLE_TO_LOCK_ROW"), strict=True):
                item = OutboxItem(0, cid, "field_update", cid, {}, 5, "r", "sync")
                outbox.dead_letter(
                    conn,
                    stream,
                    item,
                    pseudonym="cust_x",
                    error_code=code,
                    reason="value 'secret' rejected",
                    run_id="p" * 32,
                )
        data = collect(parts.store, crm="salesforce", stream=stream)
    finally:
        parts.close()
    paused = next(r for r in data.runs if r.run_id == "p" * 32)
    assert (paused.read, paused.written, paused.skipped) == (200, 0, 200)
    assert paused.reason == (
        "Salesforce REQUEST_LIMIT_EXCEEDED: resumes next run; skipped: 200 deferred_to_next_run"
    )
    assert [(d.crm_id, d.error_code) for d in data.dead_letters] == [
        (cids[0], "INVALID_FIELD"),
        (cids[1], "UNABLE_TO_LOCK_ROW"),
    ]
    assert data.dead_letters_open == 2
    assert "aml_risk" not in {d.dimension for d in data.distributions}
    assert all("AML" not in m.col_label for m in data.value_risk)
    assert [getattr(r, "dimension", None) or r.title for r in data.restricted] == [
        "aml_risk",
        "Value tier × AML risk",
    ]

    html = render(data)
    sections = dict(re.findall(r'<section id="([a-z-]+)">(.*?)</section>', html))
    assert "skipped: 200 deferred_to_next_run" in sections["runs"]
    assert cids[0] in sections["dead-letters"] and "UNABLE_TO_LOCK_ROW" in sections["dead-letters"]
    assert "secret" not in html  # the CRM's words may quote a value: not in the report
    assert "dist-aml_risk" in sections["restricted"]
    assert not [s for name, s in sections.items() if name != "restricted" and "AML" in s]
