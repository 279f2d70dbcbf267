"""The 市场活动 (MarketingEventObj) records crmtier's campaign keys name, and whether each is
live: an invalidated one (作废, ``life_status`` invalid: in the recycle bin) is no campaign
to join (``checks``), and FXiaoke documents no removal of a member from one, so the writer
skips those removals, each a named failure, with one warning a campaign (``writes``).
Also the members of those campaigns that carry no crmtier key (``members_by_hand``): one a
relationship manager added by hand."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from connectors.contract import MembershipChange
from connectors.fxiaoke.client import FxiaokeClient, data_path
from connectors.fxiaoke.config import FxiaokeConfig
from connectors.fxiaoke.query import ID, KEYS_PER_LOOKUP, by_ids, flt, rows_of
from connectors.mapping import WritebackConfig

MARKETING_EVENT = "MarketingEventObj"  # 市场活动: what a campaign key names
LIFE_STATUS, INVALID = "life_status", "invalid"  # 作废: in the recycle bin

#: (object, filters, projected fields) -> the live rows they match, every page of them
LiveRows = Callable[[str, list[dict[str, Any]], Sequence[str]], list[dict[str, Any]]]
Pair = tuple[str, str]  # (MarketingEventObj id, customer id)

log = logging.getLogger(__name__)


def campaign_states(client: FxiaokeClient, event_ids: Collection[str]) -> dict[str, Any]:
    """``life_status`` by MarketingEventObj id, for those of ``event_ids`` FXiaoke holds:
    one query per 100 ids (``by_ids``), so no answer outgrows its one page."""
    return {
        str(row.get(ID)): row.get(LIFE_STATUS)
        for body in by_ids(MARKETING_EVENT, list(event_ids), [ID, LIFE_STATUS])
        for row in rows_of(client.call(data_path(MARKETING_EVENT, "query"), body))
    }


def removal_only_campaigns(writeback: WritebackConfig) -> dict[str, str]:
    """The mapped campaigns crmtier only removes members from, by key: all of them with
    memberships off, else those given ``add = false``."""
    return {
        key: event_id
        for key, event_id in writeback.campaigns.items()
        if not writeback.campaign_memberships or key in writeback.remove_only
    }


def skipped_removals(
    client: FxiaokeClient, mapped: Mapping[str, str], items: Sequence[MembershipChange]
) -> dict[str, str]:
    """The campaigns of ``items``' removals that FXiaoke holds invalidated, by key, with
    the reason their removals are skipped: FXiaoke documents no removal of a member from
    an invalidated 市场活动, so none is tried. One warning a campaign; one query per batch
    with removals (a sanctions hit's), none without; asked only of the campaigns that take
    no member (``removal_only_campaigns``: the start gate refuses an invalidated one that
    does)."""
    removed = {
        i.campaign: mapped[i.campaign] for i in items if not i.member and i.campaign in mapped
    }
    if not removed:
        return {}
    states = campaign_states(client, removed.values())
    binned = {}
    for campaign, event_id in sorted(removed.items()):
        if states.get(event_id) == INVALID:
            log.warning(
                "fxiaoke campaign %s is invalidated (作废): its member removals are skipped",
                campaign,
            )
            binned[campaign] = (
                f"campaign {campaign}: {MARKETING_EVENT} {event_id} is invalidated (作废), so "
                "the removal is skipped; restore it from the recycle bin to let removals through"
            )
    return binned


def members_by_hand(
    live_rows: LiveRows,
    config: FxiaokeConfig,
    campaigns: Mapping[str, str],
    items: Sequence[MembershipChange],
    keyed: Collection[str],
) -> dict[Pair, list[str]]:
    """Live member record ids by (campaign id, customer id), found by campaign and customer
    rather than crmtier's key, so a member a relationship manager added by hand (no key) is
    found: without this a sanctions hit's removal found nothing by key, counted as done, and
    left the customer in a VIP campaign (docs/policy.md). Asked for every removal and for
    each add whose key is not in ``keyed`` (crmtier's keys FXiaoke holds): FXiaoke documents
    no uniqueness of a customer in a 市场活动, so a member crmtier made may have a copy made
    by hand, and a pair may name several records: all are returned. No query for a plan of
    adds whose keys were all found, else one ``/data/query`` per 50 customers
    (``KEYS_PER_LOOKUP``), ``IN`` on both reference fields, paged by ``_id``; a row outside
    the wanted pairs (another wanted customer's other campaign) is dropped."""
    wanted = {
        (campaigns[i.campaign], i.customer_id)
        for i in items
        if (not i.member or i.dedupe_key not in keyed) and i.campaign in campaigns
    }
    obj, fields = config.campaign_member_object, config.campaign_member_fields
    events = sorted({c for c, _ in wanted})
    customers = sorted({c for _, c in wanted})
    found: dict[Pair, list[str]] = {}
    for start in range(0, len(customers), KEYS_PER_LOOKUP):
        chunk = customers[start : start + KEYS_PER_LOOKUP]
        filters = [flt(fields.campaign, "IN", *events), flt(fields.customer, "IN", *chunk)]
        for row in live_rows(obj, filters, [ID, fields.campaign, fields.customer]):
            pair = (str(row.get(fields.campaign)), str(row.get(fields.customer)))
            if pair in wanted:
                found.setdefault(pair, []).append(str(row[ID]))
    return found
