"""The sync run's planner: from a page's records to decisions and write plans.

For each customer of a page: skip it when it is only our own write coming back
(``settled``); else assess it with its committed ``previous`` (a batch, one by one only if
the batch fails), apply the pre-decision adjustments, plan the fewest writes
(``sync.planner.plan_wants``) with what may already have reached the CRM
(``in_doubt``), admit tasks within the task budgets, and build the ``PendingDecision``
that becomes the customer's committed state once the writes are answered.

Hooks: a pre-decision adjustment (say, an approved tier override) is one more entry in
the engine's ``adjustments``; a computed write-back field is a ``set_field`` action such
an adjustment adds, which ``desired_fields`` then plans and ``decide`` records like any
other field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple, Protocol

from connectors.contract import CrmRecord
from connectors.mapping import WritebackConfig
from sync import taskbudget
from sync.decided import Decided, DecisionRows
from sync.overrides import note_unread_audit, override_trail
from sync.planner import (
    CustomerPlan,
    Doubt,
    Known,
    countered,
    desired_fields,
    fields_only,
    plan_wants,
    tiers_of,
)
from sync.preview import PlanTotals
from sync.recorder import Recorder
from sync.records import Json, Outcome, PageTasks, PendingDecision, Planned, Skip
from sync.runs import side_effect_label
from sync.settings import RunOptions
from sync.state import CustomerState
from sync.taskbudget import Budget, TaskLimit
from sync.written_values import changed_fields, jsonable, same_value
from tiering_core.decision_columns import DecisionColumns
from tiering_core.models import AssessmentData, CustomerProfile
from tiering_core.row_reasons import codes_of
from tiering_core.rules.household import HouseholdLinks

log = logging.getLogger(__name__)


class AssessFn(Protocol):
    """Assesses a batch of profiles (policy and as-of date bound by the caller);
    ``households``, when given, links the batch's customers to their households
    (``tiering_core.rules.household``). Called without it when the run reads none."""

    def __call__(
        self, profiles: Sequence[CustomerProfile], /, households: HouseholdLinks | None = ...
    ) -> Sequence[AssessmentData]: ...


class AssessedPage(NamedTuple):
    """A page's assessed records and their decisions, in the same order."""

    records: list[CrmRecord]
    decided: Decided


#: what crmtier knows of a customer it has no state for (shared: ``Known`` is frozen)
_NOTHING_KNOWN = Known()
#: the household links over a batch's customer ids (``sync.households.HouseholdPage``)
LinksFor = Callable[[Sequence[str]], HouseholdLinks]
#: a customer as read and as assessed
Assessed = tuple[CrmRecord, AssessmentData]
#: changes a page's assessments before anything is planned from them (same length, order)
Adjustment = Callable[[list[Assessed]], list[Assessed]]
#: a customer's membership and task writes that may have reached the CRM (None: none)
InDoubt = Callable[[str], Doubt | None]


class PagePlanner:
    """Assesses and plans the pages of one run."""

    def __init__(
        self,
        assess: AssessFn,
        writeback: WritebackConfig,
        recorder: Recorder,
        options: RunOptions,
        *,
        policy_version: str | None,
        task_limits: dict[str, TaskLimit],
        adjustments: Sequence[Adjustment] = (),
        source_events: dict[str, str] | None = None,
    ) -> None:
        self.assess_fn = assess
        # what the plans write: a fields-only run leaves tasks and memberships out, while
        # its decisions still record every field the full config writes back
        self.full_writeback = writeback
        self.writeback = writeback
        if options.only_fields:
            self.writeback = writeback.model_copy(
                update={"tasks": False, "campaign_memberships": False}
            )
        self.recorder = recorder
        self.counts = recorder.counts
        self.options = options
        self.policy_version = policy_version
        self.task_limits = task_limits
        self.adjustments = tuple(adjustments)
        self.source_events = source_events or {}
        # tasks beyond budgets wait (sync.taskbudget); customers revisited for them
        self.budget = Budget(task_limits) if task_limits else None
        self.revisit: set[str] = set()
        #: a dry run's decisions, which it never records (``settled``): input hash, tiers;
        #: only of customers decided ahead of the stream that it may still read
        #: (``sync.reader.Reader.unread``), until it reads them (``passed``)
        self.previewed: dict[str, tuple[str, dict[str, str]]] = {}
        self.totals = PlanTotals()  # a dry run's, per field/rule/campaign

    def settled(
        self, record: CrmRecord, state: CustomerState | None, digest: str, repeated: bool = False
    ) -> bool:
        """True when the record needs no new decision: it came back only because of our own
        write (same inputs and policy as last assessed, same day, and the CRM shows what we
        last wrote), or this run has decided it already on these inputs. Such a record is
        unchanged without assessing it again: an assessment may depend on ``previous``
        (an "upgraded from" reason), and assessed against the decision this very run made,
        it would erase that decision's reason. The caller counts it with
        ``count_settled`` once it knows no household change of the page pulls it back in.

        A full run, and a customer whose waiting tasks the run revisits, assess every
        customer once: settled only by this run's own decision, which stands while its
        writes are outstanding (the record, read before they land, need not show them) and
        once they are answered if the CRM still shows them. A customer whose inputs
        changed since, or whose decision's writes died, is decided again.
        ``repeated``: this very version of the record was admitted and decided from by a
        committed page before (``sync.claims``; not one only admitted, by a run that died
        or stopped before its commit), so the committed decision, if on the same inputs
        today, was made from it; the record, read before that decision's writes went out,
        need not show them. A dry run records no decision: what it planned earlier stands
        instead (``previewed``), on the same inputs."""
        cid = record.profile.id
        if cid in self.previewed:
            return self.previewed[cid][0] == digest
        if self.policy_version is None or state is None:
            return False
        day = self.options.day()
        decision = self.recorder.decisions.get(cid)
        if decision is not None:
            pending = decision.pending
            return (
                decision.this_run
                and not decision.dead
                and pending is not None
                and pending.input_hash == digest
                and pending.assessed_at == day
            )
        if state.pending is not None:
            return False
        if state.run_id != self.recorder.run_id and (self.options.full or cid in self.revisit):
            return False
        return (
            state.input_hash == digest
            and state.assessed_at == day
            and (
                repeated
                or all(
                    same_value(value, record.current.get(name))
                    for name, value in (state.fields or {}).items()
                )
            )
        )

    def previewed_as(
        self, plans: Sequence[Planned], hashes: Mapping[str, str], ahead: Collection[str]
    ) -> None:
        """Keep what a dry run planned (it records no decision) for the customers decided
        ahead of the stream (``ahead``: fetched by id, or beside a page for its
        households, that the stream may still read, ``sync.reader.Reader.unread``): the
        stream's read of such a customer on the same inputs is settled by it
        (``settled``, ``count_settled``), and takes it out (``passed``). A customer the
        stream will not read (unchanged since the bookmark, read on an earlier page, or
        on this one) is not kept, so the map holds at most the customers fetched ahead
        of the stream and not yet read by it: the households' members of the pages
        between, never the whole run's, and nothing once the stream has read on."""
        for planned in plans:
            cid = planned.customer_id
            if cid in ahead:
                self.previewed[cid] = (hashes[cid], tiers_of(planned.summary))

    def passed(self, ids: Iterable[str]) -> None:
        """The stream has read these customers: what a dry run planned for them ahead of
        it has served (``settled``), and goes."""
        if self.previewed:
            for cid in ids:
                self.previewed.pop(cid, None)

    def count_settled(self, cid: str, state: CustomerState | None) -> None:
        """Count a settled customer (``settled``) unchanged, at the tiers it holds. One this
        run decided keeps the outcome of that decision (written, when its writes land)."""
        self.counts.unchanged += 1
        decision = self.recorder.decisions.get(cid)
        if cid in self.previewed:
            tiers: Mapping[str, str] | None = self.previewed[cid][1]
        elif decision and decision.pending:
            tiers = decision.pending.tiers
        else:
            tiers = state.tiers if state else None
        self.counts.tiers[(tiers or {}).get("value_tier", "unrated")] += 1
        decided_here = decision is not None or cid in self.previewed
        if not decided_here and state is not None and state.run_id != self.recorder.run_id:
            self.recorder.outcome(cid, Outcome.UNCHANGED)

    def assess(
        self,
        records: list[CrmRecord],
        states: dict[str, CustomerState],
        links_for: LinksFor | None = None,
    ) -> AssessedPage:
        """The records' assessments with their committed ``previous``, adjusted; a record
        the assessment refuses is skipped (counted, logged by pseudonym), not the batch.
        ``links_for``: the batch's household links (none: no household lifts anyone). A
        record assessed alone after the batch failed is assessed with its own links only,
        its household's other members not beside it."""
        profiles = []
        for record in records:
            state = states.get(record.profile.id)
            previous = state.previous() if state else None
            profile = record.profile
            if previous is not None or profile.previous is not None:
                profile = profile.model_copy(update={"previous": previous})
            profiles.append(profile)
        decided: Decided
        try:
            decided = self._assess(profiles, links_for)
            if len(decided) != len(records):
                raise ValueError("the assessment lost or added customers")
            kept = records
        except Exception:
            kept, rows = [], DecisionRows()
            for record, profile in zip(records, profiles, strict=True):
                try:
                    rows.append(self._assess([profile], links_for)[0])
                    kept.append(record)
                except Exception as exc:
                    self.counts.skipped[Skip.ASSESS_ERROR] += 1
                    self.recorder.outcome(record.profile.id, Outcome.ASSESS_ERROR)
                    log.warning(
                        "could not assess customer",
                        extra={
                            "customer": self.recorder.ref(record.profile.id),
                            "error": type(exc).__name__,
                        },
                    )
            decided = rows
        if self.adjustments:  # adjustments change whole decisions
            pairs = list(zip(kept, decided, strict=True))
            for adjust in self.adjustments:
                pairs = adjust(pairs)
            kept, decided = [r for r, _ in pairs], DecisionRows(a for _, a in pairs)
        self.counts.tiered += len(kept)
        counts = self.counts
        for tier in decided.value_tier:
            counts.tiers[tier] += 1
        for i, record in enumerate(kept):
            for issue in decided.dq_issues(i):
                counts.dq_issues[issue["code"]] += 1
            for dq in record.dq_issues:
                counts.dq_issues[dq.code] += 1
                note_unread_audit(dq, record.profile.id, self.recorder.ref)
        return AssessedPage(kept, decided)

    def _assess(self, profiles: list[CustomerProfile], links_for: LinksFor | None) -> Decided:
        if links_for is None:
            decided = self.assess_fn(profiles)
        else:
            decided = self.assess_fn(profiles, households=links_for([p.id for p in profiles]))
        return decided if isinstance(decided, DecisionColumns) else DecisionRows(decided)

    def plan(
        self, assessed: AssessedPage, states: dict[str, CustomerState], in_doubt: InDoubt
    ) -> list[Planned]:
        """Each customer's plan, read from the page's decision columns: its desired fields
        (the mapped fields' values of every customer in one pass), its tasks and
        memberships (``Decided.wants``, none made for a run writing fields alone), the
        withdrawals of a restricted customer's sales tasks and memberships crmtier holds
        (in every run, whatever the switches: ``planner.closures_of``), and the decision
        kept of it (``summaries``: without actions, reasons kept as codes until read). No
        customer's whole decision is made here: only where someone reads it (a dry run's
        ``preview``, the explanation field's reasons). A run writing fields alone reads the
        page's wants only when one of its customers holds something to withdraw."""
        out = []
        writeback, decided = self.writeback, assessed.decided
        alone = fields_only(writeback)
        values = decided.field_rows(writeback.fields)
        summaries = decided.summaries()
        wants = None if alone else decided.wants()
        for i, record in enumerate(assessed.records):
            cid = record.profile.id
            summary = summaries[i]
            desired = desired_fields(summary, writeback, values[i])
            state = states.get(cid)
            known = state.known() if state else _NOTHING_KNOWN
            doubt = in_doubt(cid)
            if doubt is not None:
                tasks = {**known.tasks_in_doubt, **doubt.tasks}  # on record, and this run's
                members = {**known.in_doubt, **doubt.memberships}  # alike
                known = replace(known, in_doubt=members, tasks_in_doubt=tasks)
            if alone and not known.holds:  # the usual customer of a fields-only run
                plan = CustomerPlan(cid, changed_fields(desired, record.current))
            else:
                if wants is None:
                    wants = decided.wants()
                plan = plan_wants(wants[i], record.current, known, writeback, desired)
            if doubt is not None and doubt.fields:  # a field write of it on its way
                plan = countered(plan, desired, doubt.fields)
            out.append(Planned(record, summary, plan, desired, decided, i))
        return out

    def bounded(self, plans: list[Planned]) -> tuple[list[Planned], PageTasks | None]:
        """The page's plans with only the tasks the budgets admit, and what the commit
        records of the budgets."""
        if self.budget is None or not self.writeback.tasks:
            return plans, None
        admitted, waiting = taskbudget.split(
            self.budget, [(p.customer_id, p.plan.tasks) for p in plans if p.plan.tasks]
        )
        out = [
            replace(p, plan=replace(p.plan, tasks=tuple(admitted.get(p.customer_id, ()))))
            if p.plan.tasks
            else p
            for p in plans
        ]
        limits = self.task_limits
        bounded = {cid: [t for t in tasks if t.rule in limits] for cid, tasks in admitted.items()}
        return out, PageTasks([p.customer_id for p in plans], bounded, waiting)

    def count_planned(self, plans: list[Planned]) -> None:
        planned = self.counts.planned
        for p in plans:
            for task in p.plan.tasks:
                planned[side_effect_label("task", task.rule)] += 1
            for closure in p.plan.closures:
                planned[side_effect_label("task_close", closure.rule)] += 1
            for change in p.plan.memberships:
                planned[side_effect_label("membership", change.campaign, change.member)] += 1

    def decide(self, planned: Planned, digest: str) -> PendingDecision:
        """The decision the customer's state will hold once its writes are done."""
        assessment = planned.summary
        return PendingDecision(
            tiers=tiers_of(assessment),
            fields=jsonable(planned.desired),
            assessed_at=self.options.day(),
            below_floor_since=assessment["below_floor_since"],
            reason_codes=codes_of(assessment["reasons"]),
            policy_version=assessment["policy_version"],
            input_hash=digest,
            run_id=self.recorder.run_id,
            trigger=self.options.trigger,
            source_event_id=self.source_events.get(planned.customer_id),
            override=override_trail(planned.record.profile, assessment),
        )

    def preview(self, plans: list[Planned]) -> list[tuple[str, str, dict[str, Json]]]:
        """A dry run: count and list what would be written (customer, kind, detail)."""
        lines: list[tuple[str, str, dict[str, Json]]] = []
        for p in plans:
            cid, plan = p.customer_id, p.plan
            self.totals.add(p.assessment, plan, self.full_writeback)
            if not plan:
                self.counts.unchanged += 1
                self.recorder.outcome(cid, Outcome.UNCHANGED)
                continue
            self.counts.written += 1
            self.recorder.outcome(cid, Outcome.WOULD_WRITE)
            for name, value in plan.fields.items():
                old = p.record.current.get(name)
                lines.append((cid, "field_update", {"field": name, "old": old, "new": value}))
            for task in plan.tasks:
                lines.append((cid, "task", {"rule": task.rule, "due": task.due.isoformat()}))
            for change in plan.memberships:
                detail = {"campaign": change.campaign, "member": change.member}
                lines.append((cid, "membership", detail))
            for closure in plan.closures:
                lines.append((cid, "task_close", {"rule": closure.rule}))
        return lines
