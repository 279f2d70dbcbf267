"""docs/targets.md S6 end to end: ``crmtier doctor`` against a sandbox prints the integration
user's rights as its own lines (no generic "not verified" line), ok under least privilege,
warnings naming the excess under broad rights, and the exit status stays 0."""

from __future__ import annotations

from pathlib import Path

from product_crms import needs
from product_doctor import Setup, doctor

from connectors.mapping import load_default_mapping
from connectors.sandbox.salesforce_specs import IntegrationRights

RIGHTS = "integration user rights"


def _row(output: str, name: str) -> str:
    """The first line of the checklist row ``name`` (glyph, name, detail, fix)."""
    rows = [line for line in output.splitlines() if f" {name} " in line]
    assert len(rows) == 1, (name, output)
    return rows[0]


def _warnings(output: str) -> int:
    verdict = output.rstrip().splitlines()[-1]  # "ready: 0 error(s), N warning(s)"
    return int(verdict.rsplit(", ", 1)[1].split()[0])


def _passes(path: Path) -> str:
    """Run doctor: it exits 0 and the CRM's connector itself reported on the rights."""
    result = doctor(path)
    assert result.exit_code == 0, result.output
    assert "not verified by the" not in result.output
    return result.output


def _ok(row: str) -> bool:
    return "✓" in row and "!" not in row


@needs["salesforce"]
def test_salesforce_least_privilege_rights_are_ok_lines(org: Setup) -> None:
    _, path, _ = org("salesforce")
    output = _passes(path)
    for name in ("field edit", "delete Account", "system permissions", "API only"):
        assert _ok(_row(output, f"{RIGHTS}: {name}")), name
    assert "none beyond API access" in _row(output, f"{RIGHTS}: system permissions")


@needs["salesforce"]
def test_salesforce_broad_rights_warn_and_doctor_still_passes(org: Setup) -> None:
    sandbox, path, _ = org("salesforce")
    before = _warnings(_passes(path))
    sandbox.org.rights = IntegrationRights.broad()  # type: ignore[attr-defined]
    output = _passes(path)
    assert "ready: 0 error(s)" in output
    assert _warnings(output) == before + 4
    edit = _row(output, f"{RIGHTS}: field edit")
    # every input field of the default mapping (its 37 include the credit lines and the
    # marketing opt-out of issue 16)
    inputs = len(set(load_default_mapping("salesforce").mapping.fields.values()))
    assert "!" in edit and f"edit on {inputs} non-tier fields: AUM_Avg_3M__c" in edit
    system = _row(output, f"{RIGHTS}: system permissions")
    assert "!" in system and "Modify All Data, View All Data, Customize Application" in system
    assert "!" in _row(output, f"{RIGHTS}: delete Account")
    assert "log in to the Salesforce UI" in _row(output, f"{RIGHTS}: API only")


@needs["zoho"]
def test_zoho_profile_line_ok_then_administrator_warns(org: Setup) -> None:
    sandbox, path, _ = org("zoho")
    row = _row(_passes(path), f"{RIGHTS}: profile")
    assert _ok(row) and "profile crmtier Integration" in row
    sandbox.api.profile = "Administrator"  # type: ignore[attr-defined]
    row = _row(_passes(path), f"{RIGHTS}: profile")
    assert "!" in row and "profile Administrator" in row
