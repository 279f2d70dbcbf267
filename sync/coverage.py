"""Advisor coverage in the sync (issue 21 §2): the relationship-manager roster, the whole
book's private and wealth customers with their owners, and the proposals written back.

Coverage balances RM books, so it needs every client of an RM, not just the customers a
run saw change: it is a pass over the whole book (a full read), decided with the same
policy, then ``tiering_core.coverage.plan``. The roster and each RM's capacity come from
the CRM's users (a mapped user field, ``roster_from_users``) or from the config's
``[coverage.advisors]`` table (``roster_from_config``); the config wins for an RM named in
both, so a bank can correct one RM without touching the CRM.

A bad roster entry (a capacity that is not a positive number) is one line naming the user
and the field, and that RM is left off the roster: the rest of the roster still works.
Proposals become ordinary follow-up tasks (``TaskUpsert``) for the managers' queue, with
deterministic dedupe keys, so a rerun upserts them and never duplicates.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from connectors.contract import Page, TaskUpsert, WritePlan
from tiering_core.coverage import Advisor, Client, Coverage, plan, proposal_tasks
from tiering_core.engine import decide_batch
from tiering_core.models import CustomerProfile, TaskAction
from tiering_core.policy import Policy

#: Decides the value tier of each profile of a page (default: the engine, no actions).
TierOf = Callable[[Sequence[CustomerProfile]], list[str]]


@dataclass(frozen=True)
class Roster:
    advisors: tuple[Advisor, ...]
    problems: tuple[str, ...] = ()


def roster_from_users(
    users: Iterable[Mapping[str, Any]],
    *,
    id_field: str = "id",
    active_field: str | None = "active",
    capacity_field: str | None = None,
) -> Roster:
    """RMs from the CRM's user records. ``capacity_field``: the mapped user field holding
    the RM's capacity in private-equivalents (empty: the policy's); None: not mapped."""
    advisors: list[Advisor] = []
    problems: list[str] = []
    for user in users:
        uid = user.get(id_field)
        if not isinstance(uid, str) or not uid:
            problems.append(f"user without {id_field}: left off the roster")
            continue
        try:
            capacity = _capacity(user.get(capacity_field) if capacity_field else None)
        except (TypeError, ValueError):
            problems.append(f"user {uid}: {capacity_field} is not a positive number; left off")
            continue
        active = bool(user.get(active_field, True)) if active_field else True
        advisors.append(Advisor(uid, capacity, active))
    return Roster(tuple(advisors), tuple(problems))


def roster_from_config(table: Mapping[str, Any], base: Roster = Roster(())) -> Roster:
    """``[coverage.advisors]`` over ``base``: ``RM001 = 120`` (a capacity), or
    ``RM001 = {capacity = 120, active = false}``; an RM named here replaces its entry."""
    by_id = {a.id: a for a in base.advisors}
    problems = list(base.problems)
    for uid, entry in table.items():
        spec = entry if isinstance(entry, Mapping) else {"capacity": entry}
        unknown = sorted(set(spec) - {"capacity", "active"})
        active = spec.get("active", True)
        try:
            capacity = _capacity(spec.get("capacity"))
        except (TypeError, ValueError):
            unknown.insert(0, "capacity (not a positive number)")
        if not isinstance(active, bool):
            unknown.append("active (not true or false)")
        if unknown:
            problems.append(f"[coverage.advisors] {uid}: bad {unknown[0]}; left off the roster")
            by_id.pop(uid, None)
            continue
        by_id[uid] = Advisor(uid, capacity, active)
    return Roster(tuple(by_id.values()), tuple(problems))


def roster_from_file(path: Path, base: Roster = Roster(())) -> Roster:
    """The ``[coverage.advisors]`` table of a TOML roster file, over ``base`` (the RMs read
    from the CRM's users); ``RosterError`` names the file and the problem in one line."""
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise RosterError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RosterError(f"{path}: not valid TOML ({exc})") from None
    table = data.get("coverage", {}).get("advisors")
    if not isinstance(table, dict) or not table:
        raise RosterError(f"{path}: [coverage.advisors]: required, one RM user id per key")
    return roster_from_config(table, base)


class RosterError(ValueError):
    """A roster file that cannot be used at all (one line, naming the file)."""


def clients(
    pages: Iterable[Page], policy: Policy, as_of: date, tier_of: TierOf | None = None
) -> list[Client]:
    """The book's customers of the coverage tiers, with their value tier and owner."""
    decide = tier_of or _engine_tiers(policy, as_of)
    wanted = set(policy.coverage.rm_tiers)
    out: list[Client] = []
    for page in pages:
        profiles = [r.profile for r in page.records]
        for profile, tier in zip(profiles, decide(profiles), strict=True):
            if tier in wanted:
                out.append(Client(profile.id, tier, profile.owner_id))
    return out


def proposals_plan(coverage: Coverage, policy: Policy, as_of: date) -> WritePlan:
    """The proposal tasks as a write plan for ``Connector.apply``."""
    tasks = proposal_tasks(coverage, policy.coverage, as_of)
    return WritePlan(
        tasks=tuple(
            TaskUpsert(p.customer_id, TaskAction.model_validate(t))
            for p, t in zip(coverage.proposals, tasks, strict=True)
        )
    )


def propose(
    pages: Iterable[Page],
    roster: Roster,
    policy: Policy,
    as_of: date,
    tier_of: TierOf | None = None,
) -> tuple[Coverage, WritePlan]:
    """The whole pass: the book's clients, the plan under capacity, the tasks to write."""
    coverage = plan(clients(pages, policy, as_of, tier_of), roster.advisors, policy.coverage)
    return coverage, proposals_plan(coverage, policy, as_of)


def _engine_tiers(policy: Policy, as_of: date) -> TierOf:
    def tiers(profiles: Sequence[CustomerProfile]) -> list[str]:
        decided = decide_batch(profiles, policy, as_of, kinds=frozenset())
        return [str(d["value_tier"]) for d in decided]

    return tiers


def _capacity(raw: Any) -> float | None:
    """A capacity in private-equivalents: None when empty; ValueError unless positive."""
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise ValueError(raw)
    value = float(raw)  # ValueError/TypeError on text that is not a number
    if not 0 < value < float("inf"):
        raise ValueError(raw)
    return value
