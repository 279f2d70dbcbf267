"""What a re-tier's page unit did (``UnitResult``), kept as it goes so that its worker's
death loses none of it (``sync.retier``).

The result is saved whole at the unit's commit (with the page) and when it is done; in
between, each transaction recording answers (``Recorder.on_record``) appends one row to
``retier_unit_answers``: what the recording changed, not the whole result again. Saving
the whole result each time rewrote every outcome so far in every recording, a unit of
2,000 customers recorded one answer at a time (FXiaoke writes one record a call) writing
about 2 MB per recording by its end: quadratic. A row holds

* the counts, the API calls and the items of the write tally as they stand (a few dozen
  numbers, however large the unit: the last row's are the unit's);
* the outcomes of that recording's customers alone;
* the per-customer groups of the write tally only when the tally moved since the commit
  (it does not today: a unit tallies its writes as it plans its page).

A unit that ends (``sync.retier_units.set_status``) folds its rows into its result and
deletes them: done with its whole result in hand, they are dropped; marked done by the
attempt that finds its worker died (``sync.retier_died``), or given up, its stored result
and its rows make the result of every answer it recorded, as the whole result saved each
time would have been. Nothing is kept before the commit: an attempt that dies before it
is run again from the start, and the commit saves that attempt's own whole result.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from sync.records import Json
from sync.runs import RunCounts
from sync.schema import metadata
from sync.writepool import SentTally

if TYPE_CHECKING:
    from sync.retier_units import UnitRef

retier_unit_answers = sa.Table(
    "retier_unit_answers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(64), nullable=False),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("recorded", sa.JSON, nullable=False),
    sa.Index("retier_unit_answers_unit", "run_id", "seq"),
)


@dataclass(frozen=True)
class UnitResult:
    """What a unit did, for its coordinator to add up."""

    counts: RunCounts
    outcomes: dict[str, str]
    api_calls: dict[str, int]
    tally_items: dict[str, int]
    tally_groups: dict[str, list[tuple[str, bool]]]

    def to_json(self) -> dict[str, Json]:
        return {
            "counts": self.counts.as_json(),
            "outcomes": self.outcomes,
            "api_calls": self.api_calls,
            "tally_items": self.tally_items,
            "tally_groups": _groups_json(self.tally_groups),
        }

    @classmethod
    def from_json(cls, data: dict[str, Json]) -> UnitResult:
        return cls(
            counts_from_json(data["counts"]),
            dict(data["outcomes"]),
            dict(data["api_calls"]),
            dict(data["tally_items"]),
            _groups_from_json(data["tally_groups"]),
        )

    @classmethod
    def of(
        cls, counts: RunCounts, outcomes: Mapping[str, str], calls: dict[str, int], tally: SentTally
    ) -> UnitResult:
        return cls(counts, dict(outcomes), calls, dict(tally.items), _groups(tally))


def _groups(tally: SentTally) -> dict[str, list[tuple[str, bool]]]:
    return {kind: sorted(keys) for kind, keys in tally.groups.items()}


def _groups_json(groups: dict[str, list[tuple[str, bool]]]) -> dict[str, Json]:
    return {k: [list(g) for g in v] for k, v in groups.items()}


def _groups_from_json(data: dict[str, Json]) -> dict[str, list[tuple[str, bool]]]:
    return {k: [(str(c), bool(m)) for c, m in v] for k, v in data.items()}


def counts_from_json(data: dict[str, Json]) -> RunCounts:
    """``RunCounts.as_json`` read back."""
    counts = RunCounts()
    for f in fields(RunCounts):
        value = data.get(f.name)
        if value is not None:
            setattr(counts, f.name, Counter(value) if isinstance(value, dict) else int(value))
    return counts


def add_counts(into: RunCounts, more: RunCounts) -> None:
    """Add ``more`` into ``into``, field by field."""
    for f in fields(RunCounts):
        mine, theirs = getattr(into, f.name), getattr(more, f.name)
        if isinstance(mine, Counter):
            mine.update(theirs)
        else:
            setattr(into, f.name, mine + theirs)


def keep_recorded(
    conn: sa.Connection,
    ref: UnitRef,
    counts: RunCounts,
    outcomes: Mapping[str, str],
    calls: dict[str, int],
    tally: SentTally,
    *,
    tally_moved: bool,
) -> None:
    """One recording of a committed unit, in its transaction: the unit's ``counts``,
    ``calls`` and tally items so far, the recording's own ``outcomes``, and the tally's
    groups only if ``tally_moved`` since the unit's commit."""
    recorded: dict[str, Json] = {
        "counts": counts.as_json(),
        "outcomes": dict(outcomes),
        "api_calls": calls,
        "tally_items": dict(tally.items),
    }
    if tally_moved:
        recorded["tally_groups"] = _groups_json(_groups(tally))
    conn.execute(
        retier_unit_answers.insert().values(run_id=ref.run_id, seq=ref.seq, recorded=recorded)
    )


def with_recorded(conn: sa.Connection, ref: UnitRef, result: Json) -> Json:
    """The unit's stored ``result`` (JSON; None before its commit, when nothing is kept)
    with its recordings since, in order: the result saving it whole at each recording
    would have left."""
    if not isinstance(result, dict):
        return result
    query = (
        sa.select(retier_unit_answers.c.recorded)
        .where(retier_unit_answers.c.run_id == ref.run_id, retier_unit_answers.c.seq == ref.seq)
        .order_by(retier_unit_answers.c.id)
    )
    combined: dict[str, Any] = dict(result)
    for recorded in conn.execute(query).scalars():
        outcomes = {**combined["outcomes"], **recorded["outcomes"]}
        combined.update(recorded)  # the rest as it stood then; the groups if they moved
        combined["outcomes"] = outcomes
    return combined


def drop_recorded(conn: sa.Connection, ref: UnitRef) -> None:
    """The unit's recordings, once its result has them."""
    conn.execute(
        retier_unit_answers.delete().where(
            retier_unit_answers.c.run_id == ref.run_id, retier_unit_answers.c.seq == ref.seq
        )
    )
