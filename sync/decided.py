"""A page's decisions as the sync's planner reads them (``sync.planning.PagePlanner``):
the batch's decision columns as they are (``tiering_core.decision_columns``), or whole
decisions one by one (``DecisionRows``) when a customer was assessed alone after its batch
failed, or an adjustment changed the page. One protocol, so the planner reads either the
same way and the columns are never turned into rows for it."""

from __future__ import annotations

from collections.abc import Container, Iterator, Sequence
from typing import Any, Protocol

from sync.planner import field_values
from tiering_core.models import AssessmentData
from tiering_core.wants import Wants, wants_of


class Decided(Protocol):
    """A page's decisions as the planner reads them: ``DecisionColumns`` (a batch decided
    as one) or ``DecisionRows`` (decisions one by one, or adjusted)."""

    @property
    def value_tier(self) -> Sequence[str]: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[AssessmentData]: ...

    def __getitem__(self, i: int, /) -> AssessmentData: ...

    def summaries(self) -> list[AssessmentData]: ...

    def field_rows(self, names: Container[str]) -> list[dict[str, Any]]: ...

    def dq_issues(self, i: int) -> list[dict[str, Any]]: ...

    def wants(self) -> list[Wants]: ...


class DecisionRows(list[AssessmentData]):
    """Whole decisions as ``Decided``: what a customer assessed alone, or an adjusted page,
    hands the planner."""

    @property
    def value_tier(self) -> list[str]:
        return [d["value_tier"] for d in self]

    def summaries(self) -> list[AssessmentData]:
        return list(self)

    def field_rows(self, names: Container[str]) -> list[dict[str, Any]]:
        return [
            {name: value for name, value in field_values(d).items() if name in names} for d in self
        ]

    def dq_issues(self, i: int) -> list[dict[str, Any]]:
        return list(self[i]["dq_issues"])

    def wants(self) -> list[Wants]:
        return [wants_of(d) for d in self]
