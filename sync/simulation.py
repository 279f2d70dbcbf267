"""A candidate policy against the active one over the whole book, writing nothing.

Two stages, so a book of a million customers fits in a minute on one core:

1. **Every customer, vectorised.** Each chunk of stored customers is laid out as columns
   and evaluated under both policies (``tiering_core.engine.evaluate``, the batch core).
   The migration matrices and the multi-step moves come from these arrays alone.
2. **Only the customers the change touches, through the sync's own code.** A customer
   whose evaluation is identical under both policies (every level, score, reason with its
   threshold and weight, and data-quality finding), when the two policies also act alike
   (same strategy, service levels and AML review periods), gets the same actions from
   either policy and so the same plan: it adds nothing to the change's cost. So does one
   assessed on the simulated day (a customer assessed on another day is decided: its review
   dates and grace periods may move under either policy). The rest are
   decided under both policies (``decide_batch``) and planned with the sync's planner
   (``sync.planner.plan_customer``) against the CRM values and the tasks and memberships
   the store knows, and counted with the dry run's totals (``sync.preview.PlanTotals``) and
   the connector's minimum-call arithmetic. The numbers are the ones a sync would produce.

With households on in either policy, each chunk is evaluated with the other members of its
customers' households after it, and the links among them, as the state store recorded them
(``sync.household_store.Near``): a household's sum needs every
member, and the chunks follow CRM id order, not households. Only the chunk's own rows are
counted (``Evaluation.head``), and a customer decided and planned is decided beside its
households' members, as the sync decides it.

One thing differs for every customer whenever the policy changes: its version. When the
write-back maps ``policy_version`` (or ``explanation``, which names the version), a
customer decided alike still gets that field rewritten; it is counted as such (a field
update each) without deciding it again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt

from connectors.contract import Capabilities
from connectors.mapping import WritebackConfig
from sync import jsontext
from sync.explanation import EXPLANATION
from sync.household_store import HouseholdSource, Near
from sync.inputs import StoredChunk, StoredCustomer
from sync.planner import CustomerPlan, Known, action_kinds, plan_customer
from sync.preview import PlanTotals
from sync.simulation_diff import acts_alike, differs, lays_out_alike
from sync.stored_columns import columns_of
from sync.taskbudget import Budget, TaskLimit, split, task_limits
from sync.written_values import same_value
from tiering_core.collector import collector_paused
from tiering_core.engine import Evaluation, decide_batch, evaluate
from tiering_core.models import TaskAction
from tiering_core.policy import Policy
from tiering_core.rules.base import (
    AML_LEVELS,
    NEEDS_TIERS,
    RISK_LEVELS,
    VALUE_TIERS,
)

#: dimension -> (Evaluation attribute, vocabulary, ordered levels a "step" is counted on)
LADDERS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "value": ("value_tier", VALUE_TIERS, ("private", "wealth", "affluent", "mass")),
    "needs": ("needs_tier", NEEDS_TIERS, ("professional", "advanced", "basic")),
    "credit": ("credit_risk", RISK_LEVELS, ("low", "medium", "high")),
    "aml": ("aml_risk", AML_LEVELS, ("low", "medium", "high", "prohibited")),
    "ops": ("ops_risk", RISK_LEVELS, ("low", "medium", "high")),
}
#: dimensions shown only to whoever may see AML ratings (``sync.disclosure``)
RESTRICTED_DIMENSIONS = frozenset({"aml"})
SERVICE_LEVEL = "service_level"
#: how many CRM ids of multi-step movers a result keeps per dimension (the count is exact)
MOVERS_KEPT = 1000


@dataclass
class Forecast:
    """What the next run would admit of the tasks a simulation plans (``sync.taskbudget``):
    the bounded rules' tasks are collected as planned, then admitted in the run's order
    (priority, due date, ids) against the rule budgets and the owners' open tasks
    (``open``, as the store has them now): ``admitted`` would be made now, ``deferred``
    would wait for later runs."""

    limits: Mapping[str, TaskLimit]
    open: Mapping[tuple[str, str], int] = field(default_factory=dict)
    planned: list[tuple[str, Sequence[TaskAction]]] = field(default_factory=list)

    def add(self, customer_id: str, tasks: Sequence[TaskAction]) -> None:
        bounded = [t for t in tasks if t.rule in self.limits]
        if bounded:
            self.planned.append((customer_id, bounded))

    def outcome(self) -> tuple[Counter[str], Counter[str]]:
        """(admitted, deferred) task counts by bounded rule."""
        budget = Budget(self.limits, open=Counter(self.open))
        admitted, _ = split(budget, self.planned)
        made = Counter(t.rule for tasks in admitted.values() for t in tasks)
        return made, budget.deferred


@dataclass
class Matrix:
    """Customers by (active level, candidate level) of one dimension."""

    levels: tuple[str, ...]
    cells: npt.NDArray[np.int64]

    @classmethod
    def empty(cls, levels: tuple[str, ...]) -> Matrix:
        return cls(levels, np.zeros((len(levels), len(levels)), dtype=np.int64))

    def add(self, old: npt.NDArray[Any], new: npt.NDArray[Any]) -> None:
        k = len(self.levels)
        flat = old.astype(np.int64) * k + new.astype(np.int64)
        self.cells += np.bincount(flat, minlength=k * k).reshape(k, k)

    @property
    def moved(self) -> int:
        return int(self.cells.sum() - np.trace(self.cells))

    def as_json(self) -> dict[str, Any]:
        """Rows: active level; columns: candidate level; empty levels left out."""
        used = [i for i in range(len(self.levels)) if self.cells[i].any() or self.cells[:, i].any()]
        return {
            "levels": [self.levels[i] for i in used],
            "counts": [[int(self.cells[i, j]) for j in used] for i in used],
            "moved": self.moved,
        }


@dataclass
class PlanSide:
    """One policy's plans for the customers the change touches: totals and call count."""

    totals: PlanTotals = field(default_factory=PlanTotals)
    items: Counter[str] = field(default_factory=Counter)
    groups: dict[str, set[tuple[str, bool]]] = field(default_factory=dict)
    customers: int = 0  # with anything to write
    #: the policy's task budgets and caps over the planned tasks (None: none bounded)
    forecast: Forecast | None = None
    #: by bounded rule, after ``finish``: made by the next run / waiting for later runs
    within_budget: Counter[str] = field(default_factory=Counter)
    waiting: Counter[str] = field(default_factory=Counter)

    def add(
        self,
        assessment: Any,
        plan: CustomerPlan,
        writeback: WritebackConfig,
        caps: Capabilities,
    ) -> None:
        self.totals.add(assessment, plan, writeback)
        self._count(plan, caps)
        if self.forecast is not None and plan.tasks:
            self.forecast.add(plan.customer_id, plan.tasks)

    def finish(self) -> None:
        if self.forecast is not None:
            self.within_budget, self.waiting = self.forecast.outcome()

    def add_version_only(self, fields: Sequence[str]) -> None:
        """A customer decided alike whose only writes name the new policy version (the
        version itself, the explanation that ends with it): one update."""
        for name in fields:
            self.totals.counts["field", name, "created"] += 1
        self.items["field_update"] += 1
        self.customers += 1

    def _count(self, plan: CustomerPlan, caps: Capabilities) -> None:
        if not plan:
            return
        self.customers += 1
        if plan.fields:
            self.items["field_update"] += 1
        self.items["task"] += len(plan.tasks)
        self.items["task_close"] += len(plan.closures)
        for change in plan.memberships:
            self.items["membership"] += 1
            if "membership" in caps.per_customer_kinds:
                key = (plan.customer_id, change.member)
                self.groups.setdefault("membership", set()).add(key)

    def calls(self, caps: Capabilities) -> dict[str, int]:
        groups = {kind: len(keys) for kind, keys in self.groups.items()}
        calls = caps.minimum_calls(0, {k: n for k, n in self.items.items() if n}, groups)
        calls.pop("read", None)
        return calls


@dataclass
class Simulation:
    """Everything ``crmtier simulate`` reports (restricted parts included; callers hide)."""

    active_version: str
    candidate_version: str
    as_of: date
    customers: int = 0
    decided: int = 0  # customers the change touches, decided under both policies
    matrices: dict[str, Matrix] = field(default_factory=dict)
    movers: dict[str, list[str]] = field(default_factory=dict)  # CRM ids, > 1 step
    mover_counts: Counter[str] = field(default_factory=Counter)
    active: PlanSide = field(default_factory=PlanSide)
    candidate: PlanSide = field(default_factory=PlanSide)
    reads: dict[str, int] = field(default_factory=dict)  # read calls, --from-crm only
    #: tasks already waiting for a budget in the store, by rule (``sync.taskbudget``)
    waiting_now: dict[str, int] = field(default_factory=dict)


class Simulator:
    """Feeds chunks of stored customers through both policies; ``result`` holds the sums."""

    def __init__(
        self,
        active: Policy,
        candidate: Policy,
        as_of: date,
        writeback: WritebackConfig,
        caps: Capabilities,
        known: Any,
        open_tasks: Mapping[tuple[str, str], int] | None = None,
        households: HouseholdSource | None = None,
    ) -> None:
        """``known(ids)`` returns the tasks and memberships crmtier made, by customer id
        (``Known``), for the few customers planned; ``open_tasks`` the open tasks per
        (rule, owner) now (``sync.taskbudget.load_open``), which the owners' caps count;
        ``households`` the recorded household links and members (None: each customer
        decided alone, as when neither policy reads households)."""
        self.policies = (active, candidate)
        self.households = households
        self.as_of = as_of
        self.writeback = writeback
        self.caps = caps
        self.known = known
        self.kinds = action_kinds(writeback)
        self.alike = acts_alike(active, candidate)
        self.same_layout = lays_out_alike(active, candidate)
        # the fields that name the policy version, rewritten when only it changes
        self.version_fields = tuple(
            name
            for name in ("policy_version", EXPLANATION)
            if name in writeback.fields and active.version != candidate.version
        )
        # The committed fields as crmtier writes them (compact JSON) when they name the
        # active version: found in the stored text, the customer needs the new version
        # without decoding the rest (a quoted key cannot occur inside a JSON string, where
        # quotes are escaped; any other text is decoded and compared).
        self.active_version_text = f'"policy_version":{jsontext.dumps(active.version)}'
        self.result = Simulation(active.version, candidate.version, as_of)
        sides = (self.result.active, self.result.candidate)
        for policy, side in zip(self.policies, sides, strict=True):
            limits = task_limits(policy)
            if limits and writeback.tasks:
                side.forecast = Forecast(limits, dict(open_tasks or {}))
        for name, (_, vocabulary, _) in LADDERS.items():
            self.result.matrices[name] = Matrix.empty(vocabulary)
        levels = sorted(
            {
                *active.service_levels.model_dump().values(),
                *candidate.service_levels.model_dump().values(),
            }
        )
        self.result.matrices[SERVICE_LEVEL] = Matrix.empty(tuple(levels))

    def add(self, chunk: StoredChunk | list[StoredCustomer]) -> None:
        if not isinstance(chunk, StoredChunk):
            chunk = StoredChunk.of(chunk)
        n = len(chunk)
        if not n:
            return
        active, candidate = self.policies
        near = Near.of(chunk, self.households)
        # Straight from the stored JSON, unvalidated: see sync.stored_columns.columns_of.
        cols = columns_of(near.chunk, active)
        ev_a = evaluate(cols, active, self.as_of, near.links(active)).head(n)
        if not self.same_layout:
            cols = columns_of(near.chunk, candidate)
        ev_c = evaluate(cols, candidate, self.as_of, near.links(candidate)).head(n)
        day = self.as_of.isoformat()
        self.result.customers += n
        self._migrations(ev_a, ev_c, chunk.ids)
        touched = np.ones(n, dtype=bool) if not self.alike else differs(ev_a, ev_c)
        # Assessed on another day: review dates, grace periods and task periods may move
        # under either policy, so the two plans must be made, not assumed alike.
        touched |= np.array([d != day for d in chunk.as_of], dtype=bool)
        self._plan(near, np.flatnonzero(touched).tolist())
        if self.version_fields:
            for i in np.flatnonzero(~touched).tolist():
                if not self._shows_version(chunk, i):
                    self.result.candidate.add_version_only(self.version_fields)

    def _shows_version(self, chunk: StoredChunk, i: int) -> bool:
        """Whether the CRM already shows the candidate's version for customer ``i``: its
        version field, or (that unmapped) its explanation, which ends with it."""
        version = self.policies[1].version
        if self.version_fields[0] == "policy_version":
            fields = chunk.fields[i]
            if isinstance(fields, str) and self.active_version_text in fields:
                return False  # it shows the active version, which is not the candidate's
            return same_value(version, chunk.crm_value(i, "policy_version"))
        return version in str(chunk.crm_value(i, EXPLANATION) or "")

    def _migrations(self, ev_a: Evaluation, ev_c: Evaluation, ids: Sequence[str]) -> None:
        r = self.result
        for name, (attr, vocabulary, ladder) in LADDERS.items():
            old, new = getattr(ev_a, attr), getattr(ev_c, attr)
            r.matrices[name].add(old, new)
            rank = np.array([ladder.index(v) if v in ladder else -1 for v in vocabulary])
            ro, rn = rank[old], rank[new]
            jump = (ro >= 0) & (rn >= 0) & (np.abs(ro - rn) > 1)
            hits = np.flatnonzero(jump).tolist()
            r.mover_counts[name] += len(hits)
            kept = r.movers.setdefault(name, [])
            kept += [ids[i] for i in hits[: max(0, MOVERS_KEPT - len(kept))]]
        sl = r.matrices[SERVICE_LEVEL]
        r.matrices[SERVICE_LEVEL].add(
            _service_levels(ev_a, self.policies[0], sl.levels),
            _service_levels(ev_c, self.policies[1], sl.levels),
        )

    def _plan(self, near: Near, rows: list[int]) -> None:
        """Decide and plan these rows of ``near``'s chunk under both policies, each beside
        the other members of its households."""
        if not rows:
            return
        batch = near.beside(rows)
        chunk = [near.chunk.customer(i) for i in batch]
        profiles = [c.assessed() for c in chunk]
        ids = [c.customer_id for c in chunk]
        planned = chunk[: len(rows)]
        self.result.decided += len(rows)
        known: Mapping[str, Known] = self.known([c.customer_id for c in planned])
        sides = (self.result.active, self.result.candidate)
        for policy, side in zip(self.policies, sides, strict=True):
            links = near.links(policy, ids)
            decisions = decide_batch(
                profiles, policy, self.as_of, kinds=self.kinds, households=links
            )
            for stored, assessment in zip(planned, decisions[: len(planned)], strict=True):
                plan = plan_customer(
                    assessment,
                    stored.crm_values(),
                    known.get(stored.customer_id, Known()),
                    self.writeback,
                )
                side.add(assessment, plan, self.writeback, self.caps)


def _service_levels(ev: Evaluation, policy: Policy, levels: tuple[str, ...]) -> Any:
    """Each customer's service level as an index into ``levels`` (as the engine assigns
    it: by value tier, the prohibited level over any tier)."""
    sl = policy.service_levels
    by_tier = np.array([levels.index(getattr(sl, t)) for t in VALUE_TIERS])
    codes = by_tier[ev.value_tier]
    prohibited = ev.aml_risk == AML_LEVELS.index("prohibited")
    return np.where(prohibited, levels.index(sl.prohibited), codes)


def simulate(
    chunks: Iterable[StoredChunk | list[StoredCustomer]], simulator: Simulator
) -> Simulation:
    """Feed every chunk through ``simulator``. The cyclic garbage collector is paused for
    the run: a chunk's objects (rows, dicts, decisions) are acyclic and freed by reference
    counting when the next chunk replaces them, and the collector's scans of them cost
    about a fifth of the run (bench/simulate.py)."""
    with collector_paused():
        for chunk in chunks:
            simulator.add(chunk)
    simulator.result.active.finish()
    simulator.result.candidate.finish()
    return simulator.result
