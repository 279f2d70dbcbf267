"""``crmtier simulate --output-html``: the simulation as a page in the report's style.

Same rules as the report (``render.py``): one self-contained file, inline CSS and SVG, no
script, a Content-Security-Policy that loads nothing; each heat map is followed by its
table. It renders the JSON ``crmtier simulate`` writes, with whatever that left out
(restricted parts without ``--show-restricted``) left out here too.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from crmtier.report.html import _CSP, _CSS, _matrix, _note, _section, _table
from crmtier.report.model import Matrix


def _migration(name: str, m: dict[str, Any]) -> str:
    levels = m["levels"]
    cells = {
        (row, col): n
        for row, counts in zip(levels, m["counts"], strict=True)
        for col, n in zip(levels, counts, strict=True)
        if n
    }
    matrix = Matrix(f"{name} ({m['moved']:,} move)", "active", "candidate", levels, levels, cells)
    return _matrix(f"simulate-{name}", matrix)


def _changes(rows: dict[str, dict[str, int]], table_id: str, empty: str) -> str:
    """Made or joined, and left, under each policy; for tasks also how many the next run
    makes within the policy's budgets and caps, and how many wait."""
    if not rows:
        return _note(empty)
    keys = ["active_created", "candidate_created"]
    headers = ["", "Made / joined (active)", "Made / joined (candidate)"]
    if all("active_now" in n for n in rows.values()):
        keys += ["active_now", "candidate_now", "active_waiting", "candidate_waiting"]
        headers += [
            "Within budget now (active)",
            "Within budget now (candidate)",
            "Waiting (active)",
            "Waiting (candidate)",
        ]
    keys += ["active_closed", "candidate_closed"]
    headers += ["Left (active)", "Left (candidate)"]
    return _table(
        headers, [(name, *(n[k] for k in keys)) for name, n in rows.items()], table_id=table_id
    )


def _movers(movers: dict[str, dict[str, Any]]) -> str:
    rows = [(name, m["count"], ", ".join(m["crm_ids"][:50])) for name, m in movers.items()]
    return _table(
        ["Dimension", "Customers", "CRM record ids (first 50)"], rows, table_id="simulate-movers"
    )


def render_simulation(data: dict[str, Any], crm: str) -> str:
    facts = [
        ("CRM", crm),
        ("Active policy", data["active_policy"]),
        ("Candidate policy", data["candidate_policy"]),
        ("As of", data["as_of"]),
        ("Customers", f"{data['customers']:,}"),
    ]
    header = "".join(f"<div><dt>{escape(k)}</dt><dd>{escape(v)}</dd></div>" for k, v in facts)
    calls = data["api_calls"]
    api_rows: list[tuple[object, ...]] = [
        (kind, calls["active"].get(kind, 0), calls["candidate"].get(kind, 0))
        for kind in sorted({*calls["active"], *calls["candidate"]})
    ]
    api_rows.append(("total", sum(calls["active"].values()), sum(calls["candidate"].values())))
    public = {k: v for k, v in data["migration"].items() if k != "aml"}
    sections = [
        _section(
            "simulate-migration",
            "Migration by dimension",
            "Rows: the level under the active policy; columns: under the candidate. "
            "The diagonal is who stays.",
            '<div class="grid">' + "".join(_migration(n, m) for n, m in public.items()) + "</div>",
        ),
        _section(
            "simulate-tasks",
            "Tasks per rule",
            f"What the next sync would create under each policy, among the "
            f"{data['customers_decided_differently']:,} customers the change touches; "
            "of those, how many the policy's task budgets and per-owner caps let it make "
            "now and how many wait for later runs.",
            _changes(data["tasks"], "simulate-tasks", "No task rule changes."),
        ),
        _section(
            "simulate-campaigns",
            "Campaign joins and leaves",
            "Memberships the next sync would add and remove under each policy.",
            _changes(data["campaigns"], "simulate-campaigns", "No campaign changes."),
        ),
        _section(
            "simulate-api",
            "API calls",
            f"The fewest calls the next sync's writes need under each policy; the "
            f"change costs {calls['change']:+,}.",
            _table(["Calls", "Active", "Candidate"], api_rows, table_id="simulate-api"),
        ),
        _section(
            "simulate-movers",
            "Moves of more than one step",
            "Customers whose level moves two steps or more, by CRM record id.",
            _movers(data["movers_over_one_step"]),
        ),
    ]
    if "aml" in data["migration"]:
        sections.append(
            _section(
                "restricted",
                "Restricted: AML risk migration",
                "Confidential (PBOC 保密原则): for staff entitled to see AML ratings only.",
                _migration("aml", data["migration"]["aml"]),
            )
        )
    title = "crmtier policy simulation"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{title}</h1><dl>{header}</dl></header>"
        f"<main>{''.join(sections)}</main>"
        "<footer>Aggregate counts and CRM record ids: no customer name or amount. Nothing "
        "was written to the CRM.</footer></body></html>\n"
    )


def write_simulation(data: dict[str, Any], crm: str, output: Path) -> None:
    """Write the page atomically."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(render_simulation(data, crm), "utf-8")
    tmp.replace(output)
