"""Fill a ``ReportData`` from the sync state store (and, optionally, the CRM's feedback).

The sync layer owns the tables (``sync/schema.py``); this module only reads them:

* tier distributions and value × risk cross-tables from the committed per-customer tiers
  (``customers.tiers``: what was last written to the CRM);
* the from → to value-tier migration from the hash-chained audit trail (``tier_change``
  rows of the chosen runs);
* DQ issues by kind and API usage from one run's record (``runs.counts``/``api_calls``);
* each run's reason (its recorded error, the records it skipped and why) and the open dead
  letters by CRM record id and error code, so a run that read 200 and wrote 0 reads as
  what it was (all unchanged, deferred by a quota pause, dead-lettered), never as loss.

The state store keeps no customer inputs (docs/targets.md S5), so CSAT/NPS and complaints by
tier need the customers' feedback fields: ``feedback_by_tier`` aggregates them from
profiles the caller read from the CRM, joined to the stored value tier by CRM id, and only
the aggregate per tier reaches the report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from crmtier.report.households import household_report
from crmtier.report.model import (
    ApiUse,
    DeadLetterRow,
    Distribution,
    FeedbackRow,
    Matrix,
    ReportData,
    RunRow,
    ordered_levels,
)
from sync import outbox
from sync.disclosure import ALWAYS_RESTRICTED
from sync.schema import audit, customers, runs, side_effects
from sync.store import StateStore
from tiering_core.models import CustomerProfile

DIMENSIONS = ("value_tier", "needs_tier", "credit_risk", "aml_risk", "ops_risk", "status")
RISK_DIMENSIONS = ("credit_risk", "aml_risk", "ops_risk")
_RISK_TITLES = {"credit_risk": "credit risk", "aml_risk": "AML risk", "ops_risk": "ops risk"}
NEW = "new"  # the "from" of a customer rated for the first time
#: open dead letters the report lists one by one (all of them: ``crmtier sync --dead-letters``)
DEAD_LETTERS_LISTED = 100
#: statuses whose run row must say why
_EXPLAINED = frozenset({"failed", "paused_quota", "completed_with_errors"})


@dataclass(frozen=True)
class StoredRun:
    """One run row, decoded."""

    row: Mapping[str, Any]

    @property
    def id(self) -> str:
        return str(self.row["id"])

    @property
    def counts(self) -> Mapping[str, Any]:
        return self.row["counts"] or {}

    @property
    def api_calls(self) -> Mapping[str, int]:
        return {k: int(v) for k, v in (self.row["api_calls"] or {}).items()}

    @property
    def minimum_calls(self) -> int | None:
        """The fewest calls the run's work needed (docs/targets.md P1), as the run computed it
        with its CRM's call shape; None for runs recorded before runs kept it."""
        stored = self.row.get("min_calls")
        return None if stored is None else sum(int(v) for v in stored.values())

    def as_row(self) -> RunRow:
        c = self.counts
        return RunRow(
            run_id=self.id,
            trigger=str(self.row["trigger"]),
            status=str(self.row["status"]),
            started_at=str(self.row["started_at"])[:19].replace("T", " "),
            finished_at=(
                str(self.row["finished_at"])[:19].replace("T", " ")
                if self.row["finished_at"]
                else None
            ),
            read=int(c.get("read", 0)),
            written=int(c.get("written", 0)),
            unchanged=int(c.get("unchanged", 0)),
            dead_lettered=int(c.get("dead_lettered", 0)),
            dry_run=bool(self.row["dry_run"]),
            skipped=sum(int(n) for n in (c.get("skipped") or {}).values()),
            reason=self.reason,
        )

    @property
    def reason(self) -> str | None:
        """Why the run ended as it did, in the words it recorded: its error, then what it
        skipped by cause; a failed or paused run with neither says so."""
        parts = [str(self.row["error"])] if self.row.get("error") else []
        skipped = {k: int(n) for k, n in (self.counts.get("skipped") or {}).items() if n}
        if skipped:
            parts.append("skipped: " + ", ".join(f"{n} {k}" for k, n in sorted(skipped.items())))
        if not parts and self.row["status"] in _EXPLAINED:
            parts.append("no reason was recorded")
        return "; ".join(parts) or None


def streams(conn: sa.Connection) -> list[str]:
    """Streams that have per-customer state."""
    return sorted(conn.execute(sa.select(customers.c.stream).distinct()).scalars())


def load_runs(conn: sa.Connection, stream: str, limit: int = 200) -> list[StoredRun]:
    """Runs of ``stream``, newest first."""
    query = (
        sa.select(runs)
        .where(runs.c.stream == stream)
        .order_by(runs.c.started_at.desc(), runs.c.id.desc())
        .limit(limit)
    )
    return [StoredRun(dict(r._mapping)) for r in conn.execute(query)]


def focus_run(all_runs: Sequence[StoredRun], run_id: str | None = None) -> StoredRun | None:
    """The run whose DQ issues and API usage the report shows: ``run_id`` if given, else
    the newest finished, non-dry run that read something."""
    for run in all_runs:
        if run_id is not None:
            if run.id == run_id or run.id.startswith(run_id):
                return run
            continue
        if run.row["finished_at"] and not run.row["dry_run"] and run.counts.get("read"):
            return run
    return None


def _tier_rows(conn: sa.Connection, stream: str) -> list[tuple[str, Mapping[str, str]]]:
    """Customers with committed tiers (a JSON ``null`` counts as none: SQLAlchemy's JSON
    type may store ``None`` that way, and ``IS NOT NULL`` would let it through)."""
    query = sa.select(customers.c.customer_id, customers.c.tiers).where(
        customers.c.stream == stream, customers.c.tiers.is_not(None)
    )
    return [(str(cid), tiers) for cid, tiers in conn.execute(query) if tiers]


def distributions(tiers: Iterable[Mapping[str, str]]) -> list[Distribution]:
    counters: dict[str, Counter[str]] = {d: Counter() for d in DIMENSIONS}
    for row in tiers:
        for dim in DIMENSIONS:
            if row.get(dim) is not None:
                counters[dim][str(row[dim])] += 1
    return [
        Distribution(dim, {lvl: counters[dim][lvl] for lvl in ordered_levels(dim, list(c))})
        for dim, c in counters.items()
    ]


def value_risk(
    tiers: Sequence[Mapping[str, str]], dimensions: Sequence[str] = RISK_DIMENSIONS
) -> list[Matrix]:
    """Value tier (rows) against each risk dimension (columns)."""
    out = []
    values = ordered_levels("value_tier", [str(t.get("value_tier")) for t in tiers])
    for dim in dimensions:
        cells: Counter[tuple[str, str]] = Counter(
            (str(t.get("value_tier")), str(t.get(dim))) for t in tiers
        )
        out.append(
            Matrix(
                title=f"Value tier × {_RISK_TITLES[dim]}",
                row_label="value",
                col_label=_RISK_TITLES[dim],
                rows=values,
                cols=ordered_levels(dim, [c for _, c in cells]),
                cells=dict(cells),
            )
        )
    return out


def migration(conn: sa.Connection, stream: str, run_ids: Sequence[str]) -> Matrix | None:
    """Value-tier moves (old → new) recorded in the audit trail by these runs. A customer
    rated for the first time moves from ``new``; changes in other dimensions only are not
    counted (the value tier stayed)."""
    if not run_ids:
        return None
    query = sa.select(audit.c.old, audit.c.new).where(
        audit.c.stream == stream, audit.c.event == "tier_change", audit.c.run_id.in_(run_ids)
    )
    cells: Counter[tuple[str, str]] = Counter()
    for old, new in conn.execute(query):
        before = str((old or {}).get("value_tier") or NEW)
        after = str((new or {}).get("value_tier") or "unrated")
        if before != after:
            cells[(before, after)] += 1
    found = {f for f, _ in cells}
    levels = (NEW, *ordered_levels("value_tier", list(found - {NEW})))
    rows = [lvl for lvl in levels if lvl in found]
    return Matrix(
        title="Value tier: from → to",
        row_label="from",
        col_label="to",
        rows=rows,
        cols=ordered_levels("value_tier", [t for _, t in cells]),
        cells=dict(cells),
    )


def last_changing_run(conn: sa.Connection, stream: str) -> str | None:
    """The newest run that changed any customer's value tier, by its audit rows."""
    query = (
        sa.select(audit.c.run_id, audit.c.old, audit.c.new)
        .where(audit.c.stream == stream, audit.c.event == "tier_change")
        .order_by(audit.c.seq.desc())
    )
    for run_id, old, new in conn.execute(query):
        if (old or {}).get("value_tier") != (new or {}).get("value_tier"):
            return str(run_id)
    return None


def side_effect_counts(conn: sa.Connection, stream: str) -> dict[str, int]:
    query = (
        sa.select(side_effects.c.kind, side_effects.c.campaign, sa.func.count())
        .where(side_effects.c.stream == stream, side_effects.c.active.is_(True))
        .group_by(side_effects.c.kind, side_effects.c.campaign)
    )
    out: dict[str, int] = {}
    for kind, campaign, n in conn.execute(query):
        label = "tasks" if kind == "task" else f"campaign {campaign}"
        out[label] = out.get(label, 0) + int(n)
    return out


def feedback_by_tier(
    profiles: Iterable[CustomerProfile],
    value_tiers: Mapping[str, str],
    *,
    detractor_nps_max: float,
) -> list[FeedbackRow]:
    """CSAT, NPS and complaints aggregated per stored value tier. Customers without a
    stored tier are left out (they have not been rated yet)."""
    acc: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for profile in profiles:
        tier = value_tiers.get(profile.id)
        if tier is None:
            continue
        a = acc[tier]
        a["customers"] += 1
        fb = profile.feedback
        if fb is None:
            continue
        if fb.csat is not None:
            a["csat_n"] += 1
            a["csat_sum"] += fb.csat
        if fb.nps is not None:
            a["nps_n"] += 1
            a["nps_sum"] += fb.nps
            a["detractors"] += fb.nps <= detractor_nps_max
        a["open"] += fb.open_complaints or 0
        a["c12"] += fb.complaints_12m or 0
    return [
        FeedbackRow(
            tier=tier,
            customers=int(a["customers"]),
            csat_answers=int(a["csat_n"]),
            csat_mean=round(a["csat_sum"] / a["csat_n"], 2) if a["csat_n"] else None,
            nps_answers=int(a["nps_n"]),
            nps_mean=round(a["nps_sum"] / a["nps_n"], 1) if a["nps_n"] else None,
            detractors=int(a["detractors"]),
            open_complaints=int(a["open"]),
            complaints_12m=int(a["c12"]),
        )
        for tier in ordered_levels("value_tier", list(acc))
        if (a := acc[tier])["customers"]
    ]


def stored_tiers(store: StateStore, stream: str) -> dict[str, Mapping[str, str]]:
    """CRM id → the tiers last written to the CRM."""
    with store.engine.connect() as conn:
        return dict(_tier_rows(conn, stream))


def open_dead_letters(conn: sa.Connection, stream: str) -> tuple[list[DeadLetterRow], int]:
    """The oldest ``DEAD_LETTERS_LISTED`` open dead letters, and how many are open. The
    CRM's own message is left out: it may quote the rejected value."""
    rows = outbox.list_dead_letters(conn, stream)
    listed = [
        DeadLetterRow(
            str(r["customer_id"]),
            str(r["kind"]),
            str(r["error_code"]),
            int(r["attempts"]),
            str(r["last_at"])[:19].replace("T", " "),
        )
        for r in rows[:DEAD_LETTERS_LISTED]
    ]
    return listed, len(rows)


def value_tiers(store: StateStore, stream: str) -> dict[str, str]:
    """CRM id → stored value tier (for joining feedback read from the CRM)."""
    return {cid: str(t.get("value_tier")) for cid, t in stored_tiers(store, stream).items()}


def collect(
    store: StateStore,
    *,
    crm: str,
    stream: str,
    run_id: str | None = None,
    migration_runs: Sequence[str] | None = None,
    feedback: Sequence[FeedbackRow] | None = None,
    notes: Sequence[str] = (),
) -> ReportData:
    """Everything the report shows about ``stream``. ``run_id`` picks the run for DQ issues
    and API usage (default: the newest finished run that read records); ``migration_runs``
    the runs whose value-tier moves are shown (default: the newest run that moved one)."""
    with store.engine.connect() as conn:
        tier_rows = [t for _, t in _tier_rows(conn, stream)]
        all_runs = load_runs(conn, stream)
        focus = focus_run(all_runs, run_id)
        if migration_runs is None:
            changing = last_changing_run(conn, stream)
            migration_runs = [changing] if changing else []
            scope = f"run {changing[:12]}" if changing else "no run"
        else:
            scope = f"{len(migration_runs)} selected run(s)"
        moves = migration(conn, stream, migration_runs)
        effects = side_effect_counts(conn, stream)
        letters, letters_open = open_dead_letters(conn, stream)
    dists = distributions(tier_rows)
    restricted = ALWAYS_RESTRICTED
    api = None
    dq: dict[str, int] = {}
    if focus is not None:
        dq = {k: int(v) for k, v in (focus.counts.get("dq_issues") or {}).items()}
        api = ApiUse(calls=focus.api_calls, minimum=focus.minimum_calls)
    return ReportData(
        title=f"crmtier tiering report — {crm}",
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        crm=crm,
        stream=stream,
        policy_version=_policy_version(store, stream),
        customers=len(tier_rows),
        distributions=[d for d in dists if d.dimension not in restricted],
        migration=moves,
        value_risk=value_risk(tier_rows, [d for d in RISK_DIMENSIONS if d not in restricted]),
        dq_issues=dq,
        api=api,
        feedback=feedback,
        runs=[r.as_row() for r in all_runs[:10]],
        focus=focus.as_row() if focus is not None else None,
        migration_scope=scope,
        side_effects=effects,
        notes=list(notes),
        dead_letters=letters,
        dead_letters_open=letters_open,
        households=household_report(tier_rows),
        restricted=[
            *(d for d in dists if d.dimension in restricted),
            *value_risk(tier_rows, [d for d in RISK_DIMENSIONS if d in restricted]),
        ],
    )


def _policy_version(store: StateStore, stream: str) -> str | None:
    """The policy of the newest audited decision (the run table does not record it)."""
    query = (
        sa.select(audit.c.policy_version)
        .where(audit.c.stream == stream)
        .order_by(audit.c.seq.desc())
        .limit(1)
    )
    with store.engine.connect() as conn:
        value = conn.execute(query).scalar()
    return None if value is None else str(value)
