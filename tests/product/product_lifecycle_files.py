"""Simulate, calibrate and explain outputs as the commands write them, for the report's
link tests (the shapes the real commands write; the sandbox tests write real ones)."""

from __future__ import annotations

import json
from pathlib import Path

from crmtier.report.simulation import render_simulation

SIMULATION = {
    "active_policy": "default@a8e902f3ead0",
    "candidate_policy": "bank@6033f5a08115",
    "as_of": "2026-12-06",
    "customers": 81,
    "customers_decided_differently": 12,
    "restricted_shown": False,
    "migration": {"value": {"levels": ["wealth", "mass"], "moved": 7, "counts": [[5, 0], [7, 9]]}},
    "movers_over_one_step": {},
    "tasks": {},
    "campaigns": {},
    "fields": {},
    "api_calls": {"active": {}, "candidate": {"field_update": 1}, "change": 1, "read": {}},
}
CALIBRATION = {
    "target": "revenue",
    "rows": {"used": 20000, "skipped": 0, "trained_on": 10000},
    "periods": {"fitted": ["2025-06-30"], "held_out": "2025-12-31"},
    "proposal": {},
    "lift": {},
    "stability": {},
    "fairness": {},
}
EXPLANATION = {
    "customer": {"crm_id": "001A", "pseudonym": "p-1"},
    "policy_version": "default@a8e902f3ead0",
    "as_of": "2026-12-06",
    "rules": [],
    "hysteresis": {},
}
PROPOSAL = '# PROPOSED by crmtier calibrate (target revenue)\nname = "proposed"\n'


def write_all(directory: Path) -> dict[str, Path]:
    """One file of each kind in ``directory`` (a name with a space, to test quoting)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "simulation": directory / "sim.json",
        "simulation page": directory / "sim page.html",
        "calibration": directory / "calibration.json",
        "proposal": directory / "proposed.toml",
        "explanation": directory / "explain-001A.json",
    }
    files["simulation"].write_text(json.dumps(SIMULATION), "utf-8")
    files["simulation page"].write_text(render_simulation(SIMULATION, "salesforce"), "utf-8")
    files["calibration"].write_text(json.dumps(CALIBRATION), "utf-8")
    files["proposal"].write_text(PROPOSAL, "utf-8")
    files["explanation"].write_text(json.dumps(EXPLANATION), "utf-8")
    return files
