"""Preferred channel end to end (issue 21 §3) on each CRM's sandbox: `crmtier sync` reads
the branch-transaction input, writes ``preferred_channel`` back as the engine decides it,
words the contact tasks by channel, and keeps opted-out customers out of marketing
campaigns whatever their channel."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from connectors.sandbox.base import Sandbox
from connectors.sandbox.generator import SyntheticCustomer, generate
from connectors.sandbox.zoho import zoho_customer_id
from tests.sync.conftest import Harness, available_crms, start_sandbox
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile
from tiering_core.policy import load_policy
from tiering_core.rules.channel import CONTACT

OPENINGS = tuple(v.lower() for k, v in CONTACT.items() if k is not None)


def _says_how(subject: str) -> bool:
    return any(opening in subject.lower() for opening in OPENINGS)


CUSTOMERS = 240
AS_OF = datetime.now(UTC).date()


@pytest.fixture(params=available_crms())
def harness(request: pytest.FixtureRequest, tmp_path: Path) -> Harness:
    sandbox = start_sandbox(request.param, tmp_path / "sandbox", CUSTOMERS)
    request.addfinalizer(sandbox.stop)
    return Harness(sandbox, tmp_path / "sandbox")


def crm_id(sb: Sandbox, c: SyntheticCustomer) -> str:
    """The sandbox's record id of generated customer ``c``."""
    if sb.crm == "salesforce":
        return str(sb.customer_id(c.index))  # type: ignore[attr-defined]
    if sb.crm == "zoho":
        return zoho_customer_id(c.index)
    return c.id


def expected(sb: Sandbox, as_of: date) -> dict[str, str]:
    """The channel the engine decides for each clean generated customer, by CRM id."""
    book = [c for c in generate(CUSTOMERS) if not c.dirty]
    profiles = [CustomerProfile.model_validate({"id": c.id, **c.profile}) for c in book]
    decided = decide_batch(profiles, load_policy(), as_of, kinds=frozenset())
    return {crm_id(sb, c): str(d["preferred_channel"]) for c, d in zip(book, decided, strict=True)}


def test_preferred_channel_is_written_back_and_drives_tasks(harness: Harness) -> None:
    sb = harness.sandbox
    run = harness.run("--as-of", AS_OF.isoformat())
    assert run.returncode == 0, (run.report, run.stderr[-2000:])
    want = expected(sb, AS_OF)
    written = {cid: sb.written(cid).get("preferred_channel") for cid in want}
    # with households on, a member its household lifts is served as the lifted tier is
    # (``expected`` decides each customer alone): a private one by RM visit
    lifted = {c for c in want if "HOUSEHOLD_AUM" in str(sb.written(c).get("reasons") or "")}
    for cid in lifted:
        if sb.written(cid).get("value_tier") == "private":
            assert written.pop(cid) == "rm_visit", cid
        want.pop(cid)
    assert {c: w for c, w in written.items() if c in want} == want
    assert {"branch", "digital", "rm_visit"} <= set(Counter(written.values()))
    contact = [t for t in sb.tasks() if t.customer_id in want and _says_how(t.subject)]
    assert contact  # advisory and service-recovery tasks say how to reach the customer
    for task in contact:
        assert CONTACT[want[task.customer_id]].lower() in task.subject.lower()  # type: ignore[index]
    opted_out = {
        crm_id(sb, c) for c in generate(CUSTOMERS) if c.profile["consent"]["marketing_opt_out"]
    }
    policy = load_policy()
    marketing = {k for k, c in policy.strategy.campaigns.items() if c.marketing}
    assert opted_out and not {
        (cid, key) for cid, key in sb.memberships() if cid in opted_out and key in marketing
    }
