"""The 市场活动 (MarketingEventObj) records crmtier's campaign keys name, and whether each is
live: an invalidated one (作废, ``life_status`` invalid: in the recycle bin) is no campaign
to join (``checks``), and FXiaoke documents no removal of a member from one, so the writer
skips those removals, each a named failure, with one warning a campaign (``writes``).
Also every live member record of the (campaign, customer) pairs a plan names
(``pair_records``), crmtier's (with its key) and any a relationship manager added by hand
(without one): one look-up answers both."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from connectors.contract import MembershipChange
from connectors.fxiaoke.client import FxiaokeClient, data_path
from connectors.fxiaoke.config import FxiaokeConfig
from connectors.fxiaoke.query import CREATED, ID, KEYS_PER_LOOKUP, by_ids, flt, rows_of
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


def pair_records(
    live_rows: LiveRows,
    config: FxiaokeConfig,
    campaigns: Mapping[str, str],
    items: Sequence[MembershipChange],
) -> dict[Pair, list[dict[str, Any]]]:
    """Every live member record of each (campaign id, customer id) pair ``items`` name, with
    its ``_id``, creation time and crmtier's key (absent on one added by hand): the one
    look-up of a membership plan. It answers both questions a change asks: is crmtier's
    record of the pair there (its key; ``PlanWriter`` heals duplicates of a key), and is the
    customer a member by hand (no key) — without the latter a sanctions hit's removal found
    nothing by key, counted as done, and left the customer in a VIP campaign
    (docs/policy.md), and an add made a second record next to the hand-made one. FXiaoke
    documents no uniqueness of a customer in a 市场活动, so a pair may name several
    records: all are returned. One ``/data/query`` per 50 customers (``KEYS_PER_LOOKUP``;
    never more than one per 50 keys, a customer having one key a campaign), ``IN`` on both
    reference fields, paged by ``_id``; a row outside the wanted pairs (another wanted
    customer's other campaign) is dropped. Items of unmapped campaigns ask nothing."""
    wanted = {(campaigns[i.campaign], i.customer_id) for i in items if i.campaign in campaigns}
    obj, fields = config.campaign_member_object, config.campaign_member_fields
    customers = sorted({c for _, c in wanted})
    projected = [ID, CREATED, fields.campaign, fields.customer, fields.external_key]
    found: dict[Pair, list[dict[str, Any]]] = {}
    for start in range(0, len(customers), KEYS_PER_LOOKUP):
        chunk = customers[start : start + KEYS_PER_LOOKUP]
        # only the campaigns this chunk's customers change: fewer rows of other campaigns
        asked = set(chunk)
        events = sorted({c for c, cu in wanted if cu in asked})
        filters = [flt(fields.campaign, "IN", *events), flt(fields.customer, "IN", *chunk)]
        for row in live_rows(obj, filters, projected):
            pair = (str(row.get(fields.campaign)), str(row.get(fields.customer)))
            if pair in wanted:
                found.setdefault(pair, []).append(row)
    return found
