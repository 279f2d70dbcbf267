"""Golden assessments: the decisions of seeded generated books, pinned.

The fixture was captured while the rules still had a second, plain-Python form that a test
held equal to the vectorised one on the same books (issue 18 item 1), so it records what
both agreed on; it keeps that equality tested now that only the vectorised form is left.
Per policy and customer it holds the tiers, the reason codes and a digest of the whole
Assessment as ``crmtier tier`` writes it, so a failure names the customer and what moved.

A deliberate change of a rule or of the output changes the fixture: rewrite it with
``python tests/core/test_core_golden.py`` and review its diff like code.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from core_support import AS_OF, generated_bank, policies

from tiering_core.engine import assess_batch

FIXTURE = Path(__file__).parent / "golden" / "assessments.json"
BOOK_SIZE, SEED = 600, 29


def snapshot() -> dict[str, list[list[Any]]]:
    """Per policy: one row per customer, in book order."""
    book = generated_bank(BOOK_SIZE, seed=SEED, dirty=True)
    out = {}
    for name, policy in sorted(policies().items()):
        out[name] = [
            [
                a.id,
                hashlib.sha256(a.model_dump_json().encode()).hexdigest()[:16],
                a.status,
                a.value_tier,
                a.needs_tier,
                a.credit_risk,
                a.aml_risk,
                a.ops_risk,
                " ".join(r.code for r in a.reasons),
                " ".join(sorted({i.code + ":" + i.field for i in a.dq_issues})),
            ]
            for a in assess_batch(book, policy, AS_OF)
        ]
    return out


@pytest.mark.parametrize("name", ["default", "fico", "variant"])
def test_assessments_match_the_golden_fixture(name: str) -> None:
    expected = json.loads(FIXTURE.read_text(encoding="utf-8"))[name]
    actual = snapshot()[name]
    assert len(actual) == len(expected)
    moved = [(e, a) for e, a in zip(expected, actual, strict=True) if e != a]
    assert not moved, f"{len(moved)} customers differ; first: {moved[0]}"


def test_the_golden_book_exercises_every_branch() -> None:
    """The book is only a good witness if it reaches the rules' rarer branches."""
    rows = [
        row for table in json.loads(FIXTURE.read_text(encoding="utf-8")).values() for row in table
    ]
    codes = {code for row in rows for code in row[8].split()}
    assert {
        "VAL_HELD_BUFFER", "VAL_HELD_GRACE", "VAL_DOWNGRADE", "VAL_UPGRADE", "VAL_LIFT_PROFIT",
        "VAL_CORP_BALANCE", "VAL_CORP_SMALL", "AML_SANCTIONS", "AML_PEP", "CRD_SCORE_LOW",
        "CRD_DTI_HIGH", "CRD_LOAN_CLASS_HIGH", "OPS_FRAUD_VICTIM", "CONSENT_NO_MARKETING",
        "VAL_NO_AUM",
    } <= codes  # fmt: skip
    issues = {issue for row in rows for issue in row[9].split()}
    assert {"DQ_NO_FX:currency", "DQ_UNKNOWN_ENUM:previous.value_tier"} & issues


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    tables = (
        f"{json.dumps(name)}: [\n" + ",\n".join(json.dumps(row) for row in rows) + "\n]"
        for name, rows in snapshot().items()
    )
    FIXTURE.write_text("{\n" + ",\n".join(tables) + "\n}\n", encoding="utf-8")
