"""A configured campaign the tenant invalidated (作废, in the recycle bin) while crmtier's
memberships in it are still held.

With memberships on it refuses the start (``test_product_write_gate``); with them off only
removals remain (a sanctions hit's), and it must not stop every sync. FXiaoke documents no
removal of a member from an invalidated 市场活动, so those removals are skipped, each a
named failure, with one warning naming the campaign key; removals from a live campaign go
on as before."""

from __future__ import annotations

import logging

import pytest

from connectors.contract import MembershipChange, WritePlan
from connectors.fxiaoke.connector import FxiaokeConnector
from connectors.mapping import WritebackConfig
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.sandbox.fxiaoke_schema import MARKETING_EVENT
from connectors.sandbox.generator import customer_id
from tests.fxiaoke.fx_helpers import Connect

BINNED, LIVE = "vip_events", "wealth_seminar"


def _member(i: int, campaign: str, on: bool = True) -> MembershipChange:
    return MembershipChange(customer_id(i), campaign, on, f"{customer_id(i)}:{campaign}")


def _invalidate(sandbox: FxiaokeSandbox, campaign: str) -> None:
    event_id = sandbox.mapping.writeback.campaigns[campaign]
    sandbox.store.update(MARKETING_EVENT, event_id, {"life_status": "invalid"})


def _memberships_off(connector: FxiaokeConnector) -> FxiaokeConnector:
    off = connector.writeback.model_copy(update={"campaign_memberships": False})
    return FxiaokeConnector(connector.config, connector.mapping, off, client=connector.client)


def test_memberships_off_an_invalidated_campaign_is_a_warning_not_a_refused_start(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    _invalidate(sandbox, BINNED)
    on = connect(sandbox)
    refused = [c for c in on.write_checks(["membership"]) if not c.ok]
    assert [c.name for c in refused] == [f"campaign {BINNED}"]
    lines = {c.name: c for c in _memberships_off(on).write_checks(["membership"])}
    assert all(c.ok for c in lines.values())
    warned = lines[f"campaign {BINNED}"]
    assert warned.severity == "warning" and "removals" in warned.detail


def test_removals_from_an_invalidated_campaign_are_skipped_with_one_warning(
    sandbox: FxiaokeSandbox, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    connector = connect(sandbox)
    made = (_member(1, BINNED), _member(2, BINNED), _member(3, LIVE))
    assert all(r.ok for r in connector.apply(WritePlan(memberships=made)))
    _invalidate(sandbox, BINNED)
    removals = tuple(_member(i, c, on=False) for i, c in ((1, BINNED), (2, BINNED), (3, LIVE)))

    with caplog.at_level(logging.WARNING):
        got = _memberships_off(connector).apply(WritePlan(memberships=removals))

    assert [(r.ok, r.error_code) for r in got] == [
        (False, "CAMPAIGN_INVALIDATED"),
        (False, "CAMPAIGN_INVALIDATED"),
        (True, None),
    ]
    assert BINNED in (got[0].message or "") and "skipped" in (got[0].message or "")
    warnings = [r.getMessage() for r in caplog.records if "invalidated" in r.getMessage()]
    assert len(warnings) == 1 and BINNED in warnings[0]
    assert sandbox.memberships() == {(customer_id(1), BINNED), (customer_id(2), BINNED)}


def _remove_only(connector: FxiaokeConnector) -> FxiaokeConnector:
    """Memberships on, with ``vip_events = { id = "...", add = false }``."""
    given = connector.writeback.model_dump()
    campaigns = {**given["campaigns"], BINNED: {"id": given["campaigns"][BINNED], "add": False}}
    wb = WritebackConfig.model_validate({**given, "campaigns": campaigns})
    return FxiaokeConnector(connector.config, connector.mapping, wb, client=connector.client)


def test_an_invalidated_campaign_given_add_false_warns_and_skips_its_removals(
    sandbox: FxiaokeSandbox, connect: Connect
) -> None:
    """``add = false`` (the invalidated campaign's fix while crmtier holds members in it)
    leaves only removals in that campaign, memberships on: the start is not refused, and its
    removals are skipped as with memberships off; the campaign's members stay held, so
    restoring it lets a later sanctions run remove them."""
    connector = connect(sandbox)
    made = (_member(1, BINNED), _member(3, LIVE))
    assert all(r.ok for r in connector.apply(WritePlan(memberships=made)))
    _invalidate(sandbox, BINNED)
    refused = [c for c in connector.write_checks(["membership"]) if not c.ok]
    assert [c.name for c in refused] == [f"campaign {BINNED}"]
    assert f'{BINNED} = {{ id = "' in refused[0].fix and "add = false" in refused[0].fix
    remove_only = _remove_only(connector)
    lines = {c.name: c for c in remove_only.write_checks(["membership"])}
    assert all(c.ok for c in lines.values())
    warned = lines[f"campaign {BINNED}"]
    assert warned.severity == "warning" and "add = false" in warned.detail
    removals = (_member(1, BINNED, on=False), _member(3, LIVE, on=False))
    got = remove_only.apply(WritePlan(memberships=removals))
    assert [(r.ok, r.error_code) for r in got] == [(False, "CAMPAIGN_INVALIDATED"), (True, None)]
    assert sandbox.memberships() == {(customer_id(1), BINNED)}
