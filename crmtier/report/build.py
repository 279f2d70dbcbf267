"""Compose the report for a ``crmtier.toml``: state store + (optionally) a CRM read.

Shared by ``crmtier report`` and ``crmtier demo`` so both produce the same page from the
same sources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

from connectors.contract import Connector
from crmtier.config import CrmtierConfig
from crmtier.report.collect import collect, feedback_by_tier, value_tiers
from crmtier.report.coverage import CoverageReport, coverage_report
from crmtier.report.model import FeedbackRow, ReportData
from crmtier.report.render import render
from sync.coverage import Roster, propose
from sync.store import StateStore
from tiering_core.models import CustomerProfile
from tiering_core.policy import Policy, load_policy


def _profiles(connector: Connector) -> Iterator[CustomerProfile]:
    for page in connector.read_changed(None):
        for record in page.records:
            yield record.profile


def read_feedback(
    config: CrmtierConfig, store: StateStore, connector: Connector
) -> tuple[list[FeedbackRow], int]:
    """Feedback per stored value tier from one full read of the CRM; returns the rows and
    the API calls the read cost (shown in the report, so the cost is never hidden)."""
    policy = load_policy(config.policy_path())
    before = connector.api_usage().total
    rows = feedback_by_tier(
        _profiles(connector),
        value_tiers(store, config.stream),
        detractor_nps_max=policy.feedback.detractor_nps_max,
    )
    return rows, connector.api_usage().total - before


def read_coverage(
    config: CrmtierConfig, connector: Connector, roster: Roster, as_of: date
) -> tuple[CoverageReport, int]:
    """Advisor coverage of the whole book from one full read of the CRM (owners are CRM
    data the state store does not keep); returns the section and the API calls it cost."""
    policy = load_policy(config.policy_path())
    before = connector.api_usage().total
    coverage, _ = propose(connector.read_changed(None), roster, policy, as_of)
    return coverage_report(coverage), connector.api_usage().total - before


def waiver_notes(policy: Policy) -> list[str]:
    """One line per regulatory floor the policy waives, with its reason: a reader of the
    report must not miss that decisions were made under a waiver."""
    return [
        f"Policy {policy.version} waives the regulatory floor {floor!r}: {reason}"
        for floor, reason in sorted(policy.regulatory.waivers.items())
    ]


def build_report(
    config: CrmtierConfig,
    *,
    run_id: str | None = None,
    migration_runs: Sequence[str] | None = None,
    with_feedback: bool = False,
    notes: Sequence[str] = (),
    coverage_roster: Roster | None = None,
    as_of: date | None = None,
) -> ReportData:
    """``coverage_roster``: add the advisor-coverage section, from a full read of the
    CRM with this RM roster, as of ``as_of`` (default: today)."""
    store = config.open_state_store()
    try:
        feedback = None
        coverage = None
        extra: list[str] = []
        if with_feedback:
            connector = config.connector()
            try:
                feedback, calls = read_feedback(config, store, connector)
            finally:
                connector.close()
            extra.append(
                f"Satisfaction figures were read from the CRM for this report "
                f"({calls} API call{'s' if calls != 1 else ''})."
            )
        if coverage_roster is not None:
            connector = config.connector()
            try:
                day = as_of or date.today()
                coverage, calls = read_coverage(config, connector, coverage_roster, day)
            finally:
                connector.close()
            extra += [
                f"Advisor coverage was read from the CRM for this report "
                f"({calls} API call{'s' if calls != 1 else ''}).",
                *coverage_roster.problems,
            ]
        data = collect(
            store,
            crm=config.kind,
            stream=config.stream,
            run_id=run_id,
            migration_runs=migration_runs,
            feedback=feedback,
            notes=[*notes, *waiver_notes(load_policy(config.policy_path())), *extra],
        )
        return data if coverage is None else replace(data, coverage=coverage)
    finally:
        store.close()


def write_report(data: ReportData, output: Path) -> int:
    """Write the page atomically (a half-written report is never left behind); returns
    its size in bytes."""
    html = render(data).encode("utf-8")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_bytes(html)
    tmp.replace(output)
    return len(html)
