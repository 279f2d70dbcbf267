"""The CRM fields each sandbox org holds for the optional write-back outputs.

An optional output (``connectors.mapping.OPTIONAL_WRITEBACK_FIELDS``) is written only when
``[writeback.fields]`` maps it, so the shipped mappings leave it out; a sandbox org has the
field all the same, as a bank's org would once its admin created it, so a test (or a trial)
maps it and sees it written."""

from __future__ import annotations

from connectors.mapping import DefaultMapping

OPTIONAL_TARGETS: dict[str, dict[str, str]] = {
    "salesforce": {"explanation": "Tier_Explanation__c"},
    "zoho": {"explanation": "Tier_Explanation", "household_tier": "Household_Tier"},
    "fxiaoke": {"explanation": "field_explanation__c", "household_tier": "field_household_tier__c"},
}


def writeback_targets(crm: str, mapping: DefaultMapping) -> dict[str, str]:
    """Output -> CRM field of every write-back field the sandbox org of ``crm`` holds."""
    return {**mapping.writeback.fields, **OPTIONAL_TARGETS[crm]}
