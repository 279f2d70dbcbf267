"""A Zoho reasons field made shorter than the reasons crmtier writes (by hand, after
``doctor`` warned) fails only the customers whose reasons it cannot hold: each such
customer's write is dead-lettered once, by pseudonym, with a reason naming the output,
the field and both lengths (never the text), and every other customer is written. It
was a ``ConfigError`` that stopped the whole run at the first such customer, and, the
write kept queued for the next run, every later run too."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa

from crmtier.commands.sync import open_engine
from crmtier.config import load_config
from sync import schema
from sync.engine import RunOptions
from tests.sync.conftest import Harness, available_crms, start_sandbox
from tiering_core.privacy import pseudonym

SHORT = 220  # a hand-made field: the generated book's reasons run 190 to 255, some fit


@pytest.mark.skipif("zoho" not in available_crms(), reason="no Zoho sandbox")
def test_reasons_too_long_for_the_zoho_field_fail_their_customer_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sandbox = start_sandbox("zoho", tmp_path / "sandbox", 30)
    try:
        harness = Harness(sandbox, tmp_path / "sandbox")
        for key, value in harness.env.items():
            if key.startswith("CRMTIER_"):
                monkeypatch.setenv(key, value)
        with open_engine(load_config(harness.config), as_of=date(2026, 1, 15)) as engine:
            connector = engine.connector
            fields = connector.schema(connector.module)  # type: ignore[attr-defined]
            fields["Tier_Reasons"] = replace(fields["Tier_Reasons"], length=SHORT)
            report = engine.run(RunOptions(full=True, actor="test"))
            with engine.store.begin() as conn:
                letters = conn.execute(sa.select(schema.dead_letters)).mappings().all()
            key = engine.key
        assert report.status != "failed" and not report.config_error, report.error
        assert letters, "no customer's reasons outgrew the short field"
        assert len(letters) < 30
        for letter in letters:
            assert letter["error_code"] == "TEXT_TOO_LONG"
            assert "writeback.fields.reasons -> Zoho" in letter["reason"]
            assert f"at most {SHORT} characters" in letter["reason"]
        refs = {letter["pseudonym"] for letter in letters}
        ids = sandbox.customer_ids()
        lettered = [cid for cid in ids if pseudonym(cid, key) in refs]
        assert len(lettered) == len(letters)  # one letter a customer, named by pseudonym
        for cid in ids:  # the others were written; a lettered one's tier fields were not
            assert bool(sandbox.written(cid).get("value_tier")) == (cid not in lettered)
    finally:
        sandbox.stop()
