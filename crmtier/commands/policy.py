"""``crmtier policy``: check a policy file before it reaches production, or read one.

``validate FILE`` prints the policy's version and each regulatory waiver with its reason,
or every problem as ``key: problem`` and exits 1. ``show`` prints the built-in default
policy (the TOML shipped in the package, with its version); ``show FILE`` prints the
effective policy that FILE produces when merged over the default, as JSON, waivers first.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from tiering_core.policy import PolicyError, default_policy_text, load_policy


@click.group(name="policy")
def command() -> None:
    """Validate or show a tiering policy."""


@command.command(name="validate")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check FILE (merged over the default); exit 1 naming every bad key."""
    try:
        policy = load_policy(file)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(f"{exc.source}: {problem}", err=True)
        raise click.exceptions.Exit(1) from None
    click.echo(f"{file}: ok ({policy.version})")
    for floor, reason in sorted(policy.regulatory.waivers.items()):
        click.echo(f"{file}: waives the regulatory floor {floor!r}: {reason}")


@command.command(name="show")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
def show(file: Path | None) -> None:
    """Print the built-in policy TOML, or the effective policy of FILE as JSON."""
    try:
        policy = load_policy(file)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    if file is None:
        click.echo(f"# version: {policy.version}")
        click.echo(default_policy_text(), nl=False)
    else:
        effective = {
            "version": policy.version,
            "regulatory_waivers": policy.regulatory.waivers,
            **policy.model_dump(mode="json"),
        }
        click.echo(json.dumps(effective, indent=2, ensure_ascii=False))
