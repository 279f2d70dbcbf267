"""The policy-lifecycle outputs the report links to: simulations, calibrations and
explanations written next to it.

A bank's change of policy leaves files behind: ``crmtier simulate --output-json/-html``,
``crmtier calibrate --output/--report`` and ``crmtier explain --output``. The report finds
the newest of each kind in its own directory (or is given them with ``--link``), recognises
each by its content, not its name, and lists them with a one-line summary and a relative
link, so the page and the files it names can be moved or archived together.

Only aggregate figures and file names reach the report: an explanation is summarised by its
policy version and day, never by the customer's inputs.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from crmtier.report.model import LinkRow

#: how many of each kind the report lists when it finds them itself (newest first)
NEWEST = {"simulation": 3, "simulation page": 3, "calibration": 3, "proposal": 3, "explanation": 10}
#: larger files are not what these commands write; they are not opened
MAX_BYTES = 20_000_000
SIMULATION_TITLE = "<title>crmtier policy simulation</title>"
PROPOSAL_MARK = "PROPOSED by crmtier calibrate"


@dataclass(frozen=True)
class LinkedOutput:
    kind: str  # a key of NEWEST
    path: Path
    summary: str
    written: str  # modification time, UTC

    def row(self, report_dir: Path) -> LinkRow:
        """The report's row: linked from a report in ``report_dir``, relatively when the
        file is in or under it."""
        try:
            href = quote(self.path.resolve().relative_to(report_dir.resolve()).as_posix())
        except ValueError:
            href = self.path.resolve().as_uri()
        return LinkRow(self.kind, href, self.path.name, self.summary, self.written)


def recognise(path: Path) -> LinkedOutput | None:
    """What ``path`` is, by its content; None for anything else (or unreadable)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            return None
        text = path.read_text(encoding="utf-8")
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime("%Y-%m-%d %H:%M")
    except (OSError, UnicodeDecodeError):
        return None
    found = _kind(path.suffix.lower(), text)
    return None if found is None else LinkedOutput(found[0], path, found[1], written)


def _kind(suffix: str, text: str) -> tuple[str, str] | None:
    if suffix == ".html":
        return ("simulation page", "the simulation as a page") if SIMULATION_TITLE in text else None
    if suffix == ".toml":
        if PROPOSAL_MARK not in text.split("\n[", 1)[0]:
            return None
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None
        return "proposal", f"proposed policy {doc.get('name', '')!s}".strip()
    if suffix != ".json":
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for kind, keys, summary in _JSON_KINDS:
        if keys <= data.keys():
            try:
                return kind, summary(data)
            except (KeyError, TypeError, ValueError, AttributeError):
                return None
    return None


def _simulation(d: dict[str, Any]) -> str:
    value = d["migration"].get("value", {})
    return (
        f"{d['candidate_policy']} against {d['active_policy']} as of {d['as_of']}: "
        f"{d['customers']:,} customers, {value.get('moved', 0):,} move value tier, "
        f"API calls {d['api_calls']['change']:+,}"
    )


def _calibration(d: dict[str, Any]) -> str:
    return (
        f"target {d['target']}, {d['rows']['used']:,} history rows, "
        f"held out {d['periods']['held_out']}"
    )


def _explanation(d: dict[str, Any]) -> str:
    return f"one customer under {d['policy_version']} as of {d['as_of']}"


_JSON_KINDS = (
    ("simulation", {"active_policy", "candidate_policy", "migration", "api_calls"}, _simulation),
    ("calibration", {"target", "proposal", "lift", "stability", "fairness"}, _calibration),
    ("explanation", {"customer", "rules", "hysteresis", "policy_version"}, _explanation),
)


def discover(
    directory: Path, given: Sequence[Path] = (), *, skip: Iterable[Path] = ()
) -> tuple[list[LinkedOutput], list[str]]:
    """The outputs ``given`` (each must be one) and the newest of each kind found in
    ``directory``; and one line per given file that is not an output. Sorted by kind,
    newest first."""
    problems = []
    chosen: dict[Path, LinkedOutput] = {}
    for path in given:
        found = recognise(path)
        if found is None:
            problems.append(f"--link {path}: not a simulate, calibrate or explain output")
        else:
            chosen[path.resolve()] = found
    skipped = {p.resolve() for p in skip}
    if directory.is_dir():
        candidates = [
            p
            for p in directory.iterdir()
            if p.suffix.lower() in (".json", ".html", ".toml")
            and p.is_file()
            and p.resolve() not in skipped
        ]
        found_all = [f for p in candidates if (f := recognise(p)) is not None]
        for kind, keep in NEWEST.items():
            newest = sorted(
                (f for f in found_all if f.kind == kind),
                key=lambda f: (f.written, f.path.name),
                reverse=True,
            )
            for f in newest[:keep]:
                chosen.setdefault(f.path.resolve(), f)
    order = list(NEWEST)
    listed = sorted(chosen.values(), key=lambda f: (f.written, f.path.name), reverse=True)
    return sorted(listed, key=lambda f: order.index(f.kind)), problems
