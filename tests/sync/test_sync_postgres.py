"""`crmtier sync` with its state in PostgreSQL (the production store), end to end.

The store lives in a schema created for this test (``search_path`` in the URL) and dropped
afterwards; the second run must make no write call and the audit chain must verify.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.sync.conftest import PG_URL, Harness, _set_keys, pg_schema, start_sandbox

pytestmark = pytest.mark.postgres


def test_sync_with_postgresql_state(tmp_path: Path) -> None:
    with pg_schema() as name:
        sandbox = start_sandbox("salesforce", tmp_path / "sf", 150)
        try:
            harness = Harness(sandbox, tmp_path / "sf")
            url = f"{PG_URL}?options=-csearch_path%3D{name}"
            harness.config.write_text(_set_keys(harness.text, "state", {"url": url}), "utf-8")
            first = harness.run()
            assert first.returncode == 0, first.stderr[-2000:]
            assert first.report is not None and first.report["counts"]["written"] > 0
            calls = sandbox.write_calls()
            second = harness.run()
            assert second.returncode == 0, second.stderr[-2000:]
            assert sandbox.write_calls() == calls
            verify = harness.audit_verify()
            assert verify.returncode == 0, verify.stderr
            with sa.create_engine(url).connect() as conn:
                rows = conn.execute(sa.text("SELECT count(*) FROM customers")).scalar()
            assert rows == 150
        finally:
            sandbox.stop()
