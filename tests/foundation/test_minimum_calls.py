"""docs/targets.md P1's minimum, per CRM call shape (``Capabilities.minimum_calls``)."""

from __future__ import annotations

import pytest

from connectors.contract import Capabilities

SALESFORCE = Capabilities("salesforce", page_size=2000, max_write_batch=200)
ZOHO = Capabilities(
    "zoho",
    page_size=200,
    max_write_batch=100,
    per_customer_kinds=frozenset({"membership"}),
    lookup_batch={"task": 50},
)
FXIAOKE = Capabilities("fxiaoke", page_size=100, max_write_batch=1, plan_batch=50)
SALESFORCE_BULK = Capabilities(
    "salesforce", page_size=2000, max_write_batch=200, bulk_threshold=2000, bulk_batch=10_000
)


@pytest.mark.parametrize(
    ("caps", "reads", "items", "customers", "expected"),
    [
        (SALESFORCE, 0, {}, {}, {"read": 0}),
        (SALESFORCE, 2001, {"field_update": 401}, {}, {"read": 2, "field_update": 3}),
        # the bulk path: 4 calls a job (create, upload, close, state), jobs of 10,000, a
        # rest at or under the threshold in collections of 200
        (SALESFORCE_BULK, 0, {"field_update": 2000}, {}, {"read": 0, "field_update": 10}),
        (SALESFORCE_BULK, 0, {"field_update": 2001}, {}, {"read": 0, "field_update": 4}),
        (SALESFORCE_BULK, 0, {"field_update": 10_000}, {}, {"read": 0, "field_update": 4}),
        (SALESFORCE_BULK, 0, {"field_update": 25_000}, {}, {"read": 0, "field_update": 12}),
        (SALESFORCE_BULK, 0, {"field_update": 21_000}, {}, {"read": 0, "field_update": 13}),
        (SALESFORCE_BULK, 0, {"task": 2001}, {}, {"read": 0, "task": 11}),
        (
            SALESFORCE,
            10,
            {"membership": 200, "task": 201},
            {},
            {"read": 1, "membership": 1, "task": 2},
        ),
        # tasks: a COQL look-up per 50 keys (Zoho has no upsert for Tasks), then inserts
        # (or updates) of 100; closures' look-ups are not counted
        (
            ZOHO,
            201,
            {"field_update": 100, "task": 101},
            {},
            {"read": 2, "field_update": 1, "task": 3 + 2},
        ),
        (ZOHO, 0, {"task": 50, "task_close": 51}, {}, {"read": 0, "task": 1 + 1, "task_close": 1}),
        # one related-list call per contact and direction, however many campaigns
        (ZOHO, 50, {"membership": 90}, {"membership": 50}, {"read": 1, "membership": 50}),
        # one record per call; plan_batch shares look-ups, it does not batch writes
        (
            FXIAOKE,
            100,
            {"field_update": 7, "task": 3},
            {},
            {"read": 1, "field_update": 7, "task": 3},
        ),
    ],
)
def test_minimum_calls(caps, reads, items, customers, expected):
    assert caps.minimum_calls(reads, items, customers) == expected
