"""The shipped Salesforce mapping covers what the default policy can ask for, and names only
fields the sandbox org has (so `crmtier demo` writes every action it plans)."""

from __future__ import annotations

from connectors.mapping import (
    CANONICAL_TYPES,
    OPTIONAL_WRITEBACK_FIELDS,
    WRITEBACK_FIELDS,
    load_default_mapping,
)
from tiering_core.policy import load_policy

MAPPING = load_default_mapping("salesforce")
POLICY = load_policy(None)


def test_every_policy_campaign_has_a_campaign_id():
    assert set(MAPPING.writeback.campaigns) == set(POLICY.strategy.campaigns)


def test_every_policy_task_queue_has_an_owner():
    queues = {getattr(t, "queue", None) for t in vars(POLICY.strategy.tasks).values()} - {None}
    assert queues <= set(MAPPING.writeback.queues)


def test_mapping_uses_canonical_paths_and_outputs_only():
    assert set(MAPPING.mapping.fields) <= set(CANONICAL_TYPES)
    assert set(MAPPING.writeback.fields) <= {*WRITEBACK_FIELDS, *OPTIONAL_WRITEBACK_FIELDS}
    # the one optional output Salesforce has a place for: Person Accounts in households
    assert set(MAPPING.writeback.fields) & set(OPTIONAL_WRITEBACK_FIELDS) == {"household_tier"}
    assert set(MAPPING.writeback.restricted) <= set(MAPPING.writeback.fields)
