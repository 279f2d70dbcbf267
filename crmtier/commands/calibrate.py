"""``crmtier calibrate``: propose AUM floors, value-score weights and needs cut-offs from
the bank's history. The proposal is a policy file for human review; nothing is applied.

Exit status: 0 calibrated (some history rows may have been skipped, each reported on
stderr as ``line N: field <path>: <problem>``); 2 it could not run (scikit-learn missing,
unreadable history or policy, too little history).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import click

from crmtier.calibrate import UnusableInput, fit
from crmtier.calibrate.history import TARGET_FIELDS, history_csv_column, read_history
from crmtier.calibrate.measures import psi_reading
from crmtier.calibrate.proposal import to_toml
from crmtier.calibrate.run import calibrate
from crmtier.commands.tier import FatalInput, format_option, open_input, read_csv, read_jsonl
from tiering_core.policy import PolicyError, load_policy


@click.command(name="calibrate")
@click.argument("history", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--target",
    type=click.Choice(sorted(TARGET_FIELDS)),
    default="revenue",
    show_default=True,
    help="What the model learns: next-12-month revenue, or "
    "attrition (AUM floors are calibrated on revenue only).",
)
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The current policy file (default: the built-in policy). The proposal "
    "keeps every key of it that calibration does not set.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the proposed policy (TOML).",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write every figure as JSON here.",
)
@click.option(
    "--sensitive",
    default="",
    metavar="NAME,...",
    help="History attributes to report fairness by (e.g. region,age_band,gender). "
    "Attributes are never model inputs.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1000),
    default=500_000,
    show_default=True,
    help="Fit on a seeded sample of at most this many rows.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@format_option("History")
def command(
    history: Path,
    target: str,
    policy_path: Path | None,
    output: Path,
    report_path: Path | None,
    sensitive: str,
    max_rows: int,
    seed: int,
    fmt: str,
) -> None:
    """Fit a monotone model on HISTORY (JSON Lines or CSV: period, customer, attributes,
    outcome; docs/calibrate.md)
    and write a PROPOSED policy to --output, with lift against the current policy on the
    newest (held-out) period, stability (PSI) and fairness (disparate impact).

    The proposal is never applied: review it, run `crmtier policy validate` and
    `crmtier simulate --policy` on it, and adopt it through your change process.
    """
    try:
        fit.ml()
    except fit.MissingExtra as exc:
        raise FatalInput(str(exc)) from None
    names = [s.strip() for s in sensitive.split(",") if s.strip()]
    try:
        current = load_policy(policy_path)
        current_doc = tomllib.loads(policy_path.read_text("utf-8")) if policy_path else {}
    except PolicyError as exc:
        raise FatalInput(str(exc)) from None
    try:
        csv = fmt == "csv" or (fmt == "auto" and history.suffix.lower() == ".csv")
        with open_input(history) as stream:
            rows = read_csv(stream, history_csv_column) if csv else read_jsonl(stream)
            h = read_history(rows, current, target, lambda line: click.echo(line, err=True))
        result = calibrate(h, current, current_doc, target, names, seed, max_rows)
    except OSError as exc:
        raise FatalInput(f"{history}: {exc.strerror or exc}") from None
    except UnusableInput as exc:  # anything else the fit raises is a bug: its traceback
        raise FatalInput(f"{history}: {exc}") from None
    r = result.report
    header = [
        f"PROPOSED by crmtier calibrate (target {target}, held-out period "
        f"{r['periods']['held_out']}) from {history.name}.",
        "A proposal for human review (model-risk management): it is not applied. Review it,",
        "run `crmtier policy validate` and `crmtier simulate --policy` on it, then decide.",
    ]
    output.write_text(to_toml(result.document, header), encoding="utf-8")
    if report_path:
        report_path.write_text(json.dumps(r, indent=2, ensure_ascii=False) + "\n", "utf-8")
    for line in summary(r):
        click.echo(line)
    click.echo(f"proposed policy written to {output} (not applied)")


def summary(r: dict[str, Any]) -> list[str]:
    """The terminal summary: the proposal, lift, stability and fairness flags."""
    p = r["proposal"]
    out = [
        f"calibrate: target {r['target']}, {r['rows']['used']:,} rows "
        f"({r['rows']['skipped']:,} skipped), fitted on {', '.join(r['periods']['fitted'])}"
        f", held out {r['periods']['held_out']}"
    ]
    for tier, f in p["aum_floors"].items():
        fitted = "" if f["fitted"] is None else f"; fitted {f['fitted']:,.0f}"
        note = f" (kept: {f['kept_because']}{fitted})" if f["kept"] else ""
        out.append(f"  AUM floor {tier:<8} {f['current']:>14,.0f} -> {f['proposed']:>14,.0f}{note}")
    weights = p["value_score_weights"]
    out.append(
        "  score weights  "
        + ", ".join(f"{c} {w['current']:g} -> {w['proposed']:g}" for c, w in weights.items())
    )
    needs = p["needs_advanced_tiers"]
    out.append(f"  needs advanced tiers {needs['current']} -> {needs['proposed']}")
    for name, lift in r["lift"].items():
        figures = ", ".join(f"{k} {v}" for k, v in lift.items() if not isinstance(v, dict | list))
        out.append(f"  lift ({name}, held out): {figures}")
    stability = r["stability"]
    shifted = {k: v for k, v in stability["inputs"].items() if psi_reading(v) != "stable"}
    out.append(
        f"  PSI inputs: {shifted or 'all stable'}; tier mix "
        + ", ".join(f"{k} {v} ({psi_reading(v)})" for k, v in stability["tier_mix"].items())
    )
    for attr, by_policy in r["fairness"].items():
        for name, f in by_policy.items():
            flags = f["four_fifths_flags"]
            out.append(
                f"  fairness {attr} ({name}): "
                + ("no four-fifths flag" if not flags else "FLAGGED " + "; ".join(flags))
            )
    return out
