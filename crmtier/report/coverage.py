"""The report's advisor-coverage section (issue 21 §2): per coverage tier how many
customers have a suitable relationship manager and how many wait for one, and every RM's
load against capacity, from one ``tiering_core.coverage.plan`` of the book.

Counts and RM user ids only (staff, not customers): the section names no customer, like
the rest of the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tiering_core.coverage import Book, Coverage


@dataclass(frozen=True)
class CoverageRow:
    tier: str
    customers: int
    covered: int  # a suitable owner, or a proposed RM
    proposed: int  # of the covered, those only proposed (waiting for the manager)
    waiting: int  # no RM could take them: capacity is short


@dataclass(frozen=True)
class CoverageReport:
    tiers: Sequence[CoverageRow]
    books: Sequence[Book]

    @property
    def waiting(self) -> int:
        return sum(r.waiting for r in self.tiers)


def coverage_report(coverage: Coverage) -> CoverageReport:
    """The section's figures from a coverage plan."""
    rows = [
        CoverageRow(
            tier,
            coverage.needing[tier],
            coverage.covered[tier],
            sum(p.tier == tier for p in coverage.proposals),
            sum(c.tier == tier for c in coverage.waiting),
        )
        for tier in coverage.needing
    ]
    return CoverageReport(rows, sorted(coverage.books, key=lambda b: (-b.load, b.advisor_id)))
