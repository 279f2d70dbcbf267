"""A batch's decisions as columns, each customer's decision dict made only when asked.

``decisions.decided`` names every decided output of a batch column-wise (a list per
output: tiers, scores, review dates, each customer's DQ issues, and the ``set_field``
values per field, the CRM's reasons field rendered for the whole batch) and keeps its
reasons as cells (``row_reasons.ReasonCells``: codes and values until a reason is read).
What a caller reads for every customer is read from these columns: the sync plans a
customer's tier-field writes from ``field_rows``, its tasks and memberships from
``wants`` (task actions of the task candidates alone, a membership key hashed only for
the campaigns a customer is a member of) and keeps its state (its reason codes among it)
from ``summaries``, without a reason dict for most customers, the 13 ``set_field`` action
dicts or the ten campaign actions a decision holds. ``row`` makes exactly the decision
dict (``AssessmentData``) the engine has always returned, with its actions, once per
customer and only for the customers a caller reads whole (an output line, a dry run's
preview); iterating or indexing the batch reads rows.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterator, Mapping, Sequence
from datetime import date
from functools import cached_property
from itertools import compress, repeat
from typing import TYPE_CHECKING, Any, cast, overload

from tiering_core.models import ActionKind, AssessmentData
from tiering_core.policy import Policy
from tiering_core.row_reasons import ReasonCells, RowReasons
from tiering_core.rules import override, strategy
from tiering_core.wants import Wants

if TYPE_CHECKING:
    from tiering_core.decisions import Household, Named


class DecisionColumns(Sequence[AssessmentData]):
    """One batch's decisions column by column (built by ``decisions.decided``)."""

    def __init__(
        self,
        *,
        ids: list[str],
        customers: Callable[[], list[strategy.Customer]],
        named: Named,
        service_level: list[str],
        cells: ReasonCells,
        issues: list[list[dict[str, Any]]],
        set_fields: Mapping[str, Sequence[Any]],
        households: list[Household],
        memberships: tuple[tuple[str, ...], list[list[bool]]],  # a list per campaign
        candidates: list[bool] | None,
        overrides: list[dict[str, Any] | None] | None,
        policy: Policy,
        as_of: date,
        kinds: frozenset[ActionKind],
    ) -> None:
        self.ids = ids
        self._customers = customers
        self.named = named
        self.service_level = service_level
        #: the batch's reasons as cells: codes and values until a reason is read
        self.cells = cells
        self.issues = issues
        #: field -> each customer's value as written, in the order a decision's
        #: ``set_field`` actions list them (empty when those actions were not asked for)
        self.set_fields = set_fields
        self.households = households
        self.memberships = memberships
        #: each customer whom the task rules may give a task (``strategy.task_candidates``);
        #: None when tasks were not asked for
        self.candidates = candidates
        self.overrides = overrides
        self.policy = policy
        self.as_of = as_of
        self.kinds = kinds
        self._rows: list[AssessmentData | None] = [None] * len(ids)
        self._fields = list(set_fields.items())
        self._kinds_but_tasks = kinds - {"task"}

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> AssessmentData: ...

    @overload
    def __getitem__(self, i: slice) -> list[AssessmentData]: ...

    def __getitem__(self, i: int | slice) -> AssessmentData | list[AssessmentData]:
        if isinstance(i, slice):
            return [self.row(j) for j in range(len(self))[i]]
        return self.row(i)

    def __iter__(self) -> Iterator[AssessmentData]:
        return map(self.row, range(len(self)))

    @cached_property
    def customers(self) -> list[strategy.Customer]:
        """Each customer as the task and campaign rules read it (made when first read:
        a decision made whole, an output line, a task candidate's ``wants``)."""
        return self._customers()

    @property
    def reasons(self) -> list[list[dict[str, Any]]]:
        """Each customer's reasons as plain data (made for the whole batch when first
        read: ``ReasonCells.rows``)."""
        return self.cells.rows

    @property
    def value_tier(self) -> Sequence[str]:
        """Each customer's value tier (what a run counts its customers by)."""
        return self.named.value_tier

    def field_values(self, i: int) -> dict[str, Any]:
        """Customer ``i``'s ``set_field`` values by field: what its ``set_field`` actions
        say, read from the columns."""
        return {name: column[i] for name, column in self.set_fields.items()}

    def field_rows(self, names: Container[str]) -> list[dict[str, Any]]:
        """Every customer's ``set_field`` values of the fields in ``names``, by field in
        action order (``field_values`` of each, those fields only): made in one C-level
        pass over the columns, not a Python step a customer."""
        chosen = [(name, c) for name, c in self.set_fields.items() if name in names]
        return _dicts(tuple(name for name, _ in chosen), [c for _, c in chosen], len(self))

    def dq_issues(self, i: int) -> list[dict[str, Any]]:
        """Customer ``i``'s data-quality issues (what a run counts), without its decision."""
        return self.issues[i]

    def plain(self, i: int) -> AssessmentData:
        """Customer ``i``'s decision without its actions (``actions`` empty): every other
        key as ``row`` has it, in the same order (a new dict each call); its reasons are
        made when first read (``RowReasons``: their codes are read from the cells)."""
        return self._decision(i, RowReasons(self.cells, i))

    def summaries(self) -> list[AssessmentData]:
        """Every customer's ``plain`` decision (what the sync keeps of a customer it
        writes tier fields for)."""
        return list(map(self.plain, range(len(self))))

    def _decision(self, i: int, reasons: Sequence[dict[str, Any]]) -> AssessmentData:
        """Customer ``i``'s decision with these reasons and no actions (one dict display:
        a third of the time of a dict zipped from keys and a row)."""
        n = self.named
        decision: dict[str, Any] = {  # AssessmentData, its values named from the codes
            "id": self.ids[i],
            "status": n.status[i],
            "value_tier": n.value_tier[i],
            "value_score": n.value_score[i],
            "needs_tier": n.needs_tier[i],
            "credit_risk": n.credit_risk[i],
            "aml_risk": n.aml_risk[i],
            "ops_risk": n.ops_risk[i],
            "edd_required": n.edd_required[i],
            "next_review": n.next_review[i],
            "service_level": self.service_level[i],
            "preferred_channel": n.preferred_channel[i],
            "reasons": reasons,
            "actions": (),
            "dq_issues": self.issues[i],
            "policy_version": self.policy.version,
            "below_floor_since": n.below_floor_since[i],
        }
        household = self.households[i]
        if household.read:  # the key only where households were read: otherwise as before
            decision["household_tier"] = household.tier
        own = n.qualified[i]
        if own is not None:  # the keys only where an override made them differ
            decision["qualified_value_tier"], decision["qualified_below_floor_since"] = own
        return cast("AssessmentData", decision)

    def row(self, i: int) -> AssessmentData:
        """Customer ``i``'s whole decision, its actions in kind order (made once; the
        same dict on every later call, as a list of decisions would hand it out). The
        task rules are asked only about a task candidate (``candidates``): the others
        get none from them."""
        made = self._rows[i]
        if made is not None:
            return made
        customer, why = self.customers[i], self.reasons[i]
        decision = self._decision(i, why)
        fields = tuple(
            [
                {"kind": "set_field", "field": name, "value": column[i]}
                for name, column in self._fields
            ]
        )
        kinds, outcome = self.kinds, None
        if self.candidates is not None:  # tasks asked for: what only they read, made for them
            if self.candidates[i]:
                outcome = self._outcome(i)
            else:
                kinds = self._kinds_but_tasks
        keys, members = self.memberships
        decision["actions"] = strategy.actions(
            customer,
            fields,
            outcome,
            why,
            self.policy,
            self.as_of,
            kinds,
            (keys, [member[i] for member in members]),
        )
        overridden = self.overrides[i] if self.overrides else None
        if overridden is not None:
            decision["actions"] = (*decision["actions"], *self._refusals(customer, overridden, why))
        self._rows[i] = decision
        return decision

    def wants(self) -> list[Wants]:
        """Every customer's ``Wants`` (what the sync plans tasks, memberships and closures
        from), read from the columns: no decision dict. The task rules are asked about the
        task candidates alone and read those customers' reasons alone
        (``ReasonCells.reasons_of``); a membership's dedupe key is hashed only for the
        campaigns a customer is a member of (``row`` hashes every campaign's)."""
        keys, members = self.memberships
        rows = zip(*members, strict=True) if keys else repeat(())
        codes, aml = self.cells.codes, self.named.aml_risk
        candidates = self.candidates or repeat(False)
        overrides = self.overrides or repeat(None)
        out = []
        # ``ids`` bounds the others (a column not asked for repeats its default)
        for i, (cid, row, candidate, overridden) in enumerate(
            zip(self.ids, rows, candidates, overrides, strict=False)
        ):
            tasks: tuple[dict[str, Any], ...] = ()
            if candidate or overridden is not None:
                customer, why = self.customers[i], self.cells.reasons_of(i)
                if candidate:
                    made = strategy.tasks(customer, self._outcome(i), self.policy, self.as_of, why)
                    tasks = tuple(made)
                if overridden is not None:
                    tasks = (*tasks, *self._refusals(customer, overridden, why))
            mine = {key: strategy.dedupe_key(cid, "campaign", key) for key in compress(keys, row)}
            out.append(Wants(cid, tasks, keys, mine, aml[i], codes[i]))
        return out

    def _outcome(self, i: int) -> strategy.Outcome:
        """What the task rules read of task candidate ``i``."""
        return self.named.outcome(i, self.service_level[i], self.issues[i])

    def _refusals(
        self,
        customer: strategy.Customer,
        overridden: dict[str, Any],
        why: Sequence[dict[str, Any]],
    ) -> list[dict[str, Any]]:
        """The task telling the maker why ``customer``'s override (``overridden``) was
        refused (none when it was not): after its other actions."""
        return override.refusal_tasks(
            customer.id,
            customer.owner_id,
            overridden,
            why,
            self.policy,
            self.as_of,
            self.kinds,
        )


def _dicts(keys: tuple[str, ...], columns: Sequence[Sequence[Any]], n: int) -> list[dict[str, Any]]:
    """Row by row, a dict of ``keys`` to the row's value in each of ``columns``."""
    if not keys:
        return [{} for _ in range(n)]
    return list(map(dict, map(zip, repeat(keys), zip(*columns, strict=True))))
