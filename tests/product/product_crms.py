"""Which CRMs have both a sandbox and a connector in the tree (the others are skipped with
the reason, so the product tests run while the CRM pieces land)."""

from __future__ import annotations

import importlib.util

import pytest

CRMS = ("salesforce", "zoho", "fxiaoke")


def available(crm: str) -> bool:
    return all(
        importlib.util.find_spec(m) is not None
        for m in (f"connectors.sandbox.{crm}", f"connectors.{crm}.connector")
    )


#: ``@needs[crm]`` on a test that needs that CRM
needs = {
    crm: pytest.mark.skipif(not available(crm), reason=f"no {crm} sandbox/connector in the tree")
    for crm in CRMS
}

#: parametrize over every CRM, each skipped when absent
CRM_PARAMS = [pytest.param(crm, marks=needs[crm]) for crm in CRMS]
