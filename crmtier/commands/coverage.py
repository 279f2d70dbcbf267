"""``crmtier coverage``: which relationship manager should take each private or wealth
customer who has none, under the RMs' capacities (issue 21 §2).

One full read of the CRM (owners are CRM data), the tiers decided under the active policy,
then ``tiering_core.coverage.plan`` with the RM roster: the CRM's users whose capacity
field (``[coverage] capacity_field``) holds a value, read in the same run, and over them
``--roster`` (a TOML file whose ``[coverage.advisors]`` table gives RMs' capacities, an RM
named there replacing the CRM's entry; docs/policy.md "Advisor coverage"). Prints
coverage per tier, every RM's load against capacity and the proposals (CRM record ids and
RM user ids only), as text or JSON. Without ``--write`` it writes
nothing: the manager's preview. With ``--write`` (run on a schedule, e.g. nightly) it also
carries the proposals out (``sync/coverage_write.py``): one task per proposal in the
managers' queue ``coverage.queue``, each made once, or, where the bank opts in with
``[coverage] assign = "owner"``, the proposed RM made the customer's owner.

Exit status: 0 done, 1 the CRM failed (or refused a proposal task), 2 bad configuration
or roster; a state store ``--write`` cannot reach 1, one it cannot use as configured 2
(``crmtier.store_failures``), before any CRM read.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path

import click

from connectors.contract import Connector, OwnerWrites, UserDirectory
from connectors.errors import ConfigError, ConnectorError
from crmtier.commands.options import config_option
from crmtier.config import CrmtierConfig, load_config
from sync import jsonlog, write_readiness
from sync.coverage import Roster, RosterError, propose, roster_from_file, roster_from_users
from sync.coverage_write import Written, change_owners, write_proposals
from sync.store import StateStore
from tiering_core.coverage import Coverage
from tiering_core.policy import Policy, PolicyError, load_policy


@click.command(name="coverage")
@config_option
@click.option(
    "--roster",
    type=click.Path(path_type=Path, dir_okay=False),
    help="TOML file with [coverage.advisors]: RM user id = capacity (private-equivalents); "
    "over the CRM's users when [coverage] capacity_field is set, else required.",
)
@click.option("--as-of", type=click.DateTime(["%Y-%m-%d"]), help="Assessment date (default today).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@click.option(
    "--write",
    is_flag=True,
    help="Carry the proposals out: a task each in the managers' queue (coverage.queue), "
    'made once; with [coverage] assign = "owner", the RM made the owner.',
)
def command(
    config_path: Path, roster: Path | None, as_of: datetime | None, as_json: bool, write: bool
) -> None:
    """Propose RMs for uncovered customers within capacity; --write carries them out."""
    jsonlog.configure("ERROR")
    day = as_of.date() if as_of is not None else date.today()
    try:
        config = load_config(config_path)
        policy = load_policy(config.policy_path())
        if roster is None and not config.coverage.capacity_field:
            raise ConfigError(
                f"{config.config_file}: no RM roster: give --roster, or set [coverage] "
                f"capacity_field to read RMs' capacities from the CRM's users"
            )
        if write:
            _check_writable(config, policy)
        with _store_to_write(config, write) as store:
            connector = config.connector()
            try:
                _check_connector(config, connector, write)
                advisors = _roster(config, connector, roster)
                coverage, _ = propose(connector.read_changed(None), advisors, policy, day)
                calls = connector.api_usage().total
                written = _write(config, store, connector, coverage, policy, day) if store else None
                write_calls = connector.api_usage().total - calls
            finally:
                connector.close()
    except (ConfigError, PolicyError, RosterError) as exc:
        click.echo(f"crmtier coverage: {exc}", err=True)
        sys.exit(2)
    except (ConnectorError, OSError) as exc:
        click.echo(f"crmtier coverage: {exc}", err=True)
        sys.exit(1)
    _show(coverage, advisors.problems, written, (calls, write_calls), day, as_json)
    if written is not None and written.failed:
        sys.exit(1)


def _check_connector(config: CrmtierConfig, connector: Connector, write: bool) -> None:
    """What the config asks of the CRM's connector it must be able to do."""
    if config.coverage.capacity_field and not isinstance(connector, UserDirectory):
        raise ConfigError(
            f"{config.config_file}: [coverage] capacity_field: this CRM's connector cannot "
            f"read users; leave it empty and give the capacities in --roster"
        )
    if write and config.coverage.assign == "owner" and not isinstance(connector, OwnerWrites):
        raise ConfigError(
            f'{config.config_file}: [coverage] assign = "owner": this CRM\'s connector '
            f'cannot change owners; use assign = "task"'
        )
    if write and config.coverage.assign != "owner":  # proposals are tasks: gated as a sync's
        write_readiness.require_kinds(connector, ["task"])


def _roster(config: CrmtierConfig, connector: Connector, path: Path | None) -> Roster:
    """The CRM's RM users (when a capacity field is named), then the roster file's
    entries over them."""
    field = config.coverage.capacity_field
    base = Roster(())
    if field and isinstance(connector, UserDirectory):
        users = [{**u, field: u["capacity"]} for u in connector.read_users(field)]
        base = roster_from_users(users, capacity_field=field)  # problems name the field
    return roster_from_file(path, base) if path is not None else base


def _check_writable(config: CrmtierConfig, policy: Policy) -> None:
    """``--write`` with a config that cannot carry the tasks is an error before any read."""
    if config.coverage.assign == "owner":
        return
    writeback = config.writeback_config()
    queue = policy.coverage.queue
    if not writeback.tasks or queue not in writeback.queues:
        raise ConfigError(
            f"{config.config_file}: --write needs [writeback] tasks on and "
            f"[writeback.queues] {queue} (coverage.queue) mapped to a CRM queue or user"
        )


@contextmanager
def _store_to_write(config: CrmtierConfig, write: bool) -> Iterator[StateStore | None]:
    """With ``--write``, the state store the proposals are recorded in, opened before the
    CRM's full read: a store that cannot be opened ends the command before the read's API
    calls are spent (``crmtier.store_failures``: one line, exit 1 or 2); none without."""
    if not write:
        yield None
        return
    store = config.open_state_store()
    try:
        yield store
    finally:
        store.close()


def _write(
    config: CrmtierConfig,
    store: StateStore,
    connector: Connector,
    coverage: Coverage,
    policy: Policy,
    day: date,
) -> Written:
    """The proposal tasks not made yet upserted, or (opted in) the owners changed, and
    recorded in the state store (the audit rows' pseudonyms are the sync's: the same key)."""
    key = config.pseudonym_key() or store.pseudonym_key()
    if isinstance(connector, OwnerWrites) and config.coverage.assign == "owner":
        return change_owners(store, config.stream, connector, coverage, policy, pseudonym_key=key)
    return write_proposals(
        store, config.stream, connector, coverage, policy, day, pseudonym_key=key
    )


def _show(
    coverage: Coverage,
    problems: Sequence[str],
    written: Written | None,
    calls: tuple[int, int],
    day: date,
    as_json: bool,
) -> None:
    """``calls``: the API calls of the read, and of the write."""
    read_calls, write_calls = calls
    if as_json:
        out = {
            "as_of": day.isoformat(),
            "needing": coverage.needing,
            "covered": coverage.covered,
            "books": [asdict(b) for b in coverage.books],
            "proposals": [asdict(p) for p in coverage.proposals],
            "waiting": [c.id for c in coverage.waiting],
            "roster_problems": list(problems),
            "api_calls": read_calls + write_calls,
        }
        if written is not None:
            out["written"] = {
                "made": written.made,
                "already": written.already,
                "failed": list(written.failed),
                "api_calls": write_calls,
                "run_id": written.run_id,  # the run_id of its audit rows
            }
        click.echo(json.dumps(out, ensure_ascii=False, sort_keys=True))
        return
    for problem in problems:
        click.echo(f"roster: {problem}", err=True)
    for tier, n in coverage.needing.items():
        click.echo(f"{tier}: {n} customer(s), {coverage.covered[tier]} covered or proposed")
    for b in coverage.books:
        click.echo(f"RM {b.advisor_id}: {b.clients} client(s), load {b.load:g} of {b.capacity:g}")
    for p in coverage.proposals:
        click.echo(f"propose {p.advisor_id} for {p.customer_id} ({p.tier})")
    if written is not None:
        for line in written.failed:
            click.echo(line, err=True)
        click.echo(
            f"{written.made} proposal(s) carried out ({write_calls} API call(s)), "
            f"{written.already} made before"
        )
    click.echo(f"{len(coverage.waiting)} waiting for an RM; {read_calls} API call(s) to read")
