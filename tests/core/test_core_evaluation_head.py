"""``Evaluation.head``: a batch decided beside other customers (``crmtier simulate`` puts a
chunk's household members after it) reports its own rows exactly as if it had been
evaluated alone, when nothing links the rows (every rule but the household's is row-wise)."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

import numpy as np
import pytest

from tests.core.core_support import generated_bank
from tiering_core.columns import Columns
from tiering_core.engine import Evaluation, evaluate
from tiering_core.policy import load_policy
from tiering_core.rules.household import HouseholdLinks

AS_OF = date(2026, 6, 30)


def same(a: Any, b: Any, n: int) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.broadcast_to(np.asarray(a), n), np.broadcast_to(np.asarray(b), n)
        return bool(np.array_equal(x, y, equal_nan=x.dtype.kind == "f"))
    return bool(a == b)


def assert_same(a: Evaluation, b: Evaluation) -> None:
    assert a.n == b.n
    for f in fields(Evaluation):
        if f.name in ("reasons", "issues", "n"):
            continue
        assert same(getattr(a, f.name), getattr(b, f.name), a.n), f.name
    assert [r.code for r in a.reasons] == [r.code for r in b.reasons]
    for ra, rb in zip(a.reasons, b.reasons, strict=True):
        assert same(ra.mask, rb.mask, a.n), ra.code
        fired = np.broadcast_to(np.asarray(ra.mask), a.n)  # elsewhere a value means nothing
        for attr in ("value", "threshold", "weight"):
            x, y = getattr(ra, attr), getattr(rb, attr)
            if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
                x, y = np.broadcast_to(np.asarray(x), a.n), np.broadcast_to(np.asarray(y), a.n)
                x, y = x[fired], y[fired]
                assert same(x, y, len(x)), (ra.code, attr)
            else:
                assert x == y, (ra.code, attr)
        assert ra.labels == rb.labels
    # an issue column is listed when the batch has it at all: one missing fires nowhere
    issues_a = {(i.code, i.path): i.mask for i in a.issues}
    issues_b = {(i.code, i.path): i.mask for i in b.issues}
    for key in issues_a.keys() | issues_b.keys():
        assert same(issues_a.get(key, False), issues_b.get(key, False), a.n), key


@pytest.mark.parametrize(("seed", "n", "beside"), [(1, 40, 25), (2, 7, 120), (3, 60, 0)])
def test_head_is_the_batch_alone(seed: int, n: int, beside: int) -> None:
    policy = load_policy()
    people = generated_bank(n + beside, seed, dirty=True)
    whole = Columns.from_profiles(people, policy)
    alone = Columns.from_profiles(people[:n], policy)
    assert_same(evaluate(whole, policy, AS_OF).head(n), evaluate(alone, policy, AS_OF))
    none = HouseholdLinks.build([p.id for p in people], [], policy)
    head = evaluate(whole, policy, AS_OF, none).head(n)
    assert head.household_tier is not None and len(head.household_tier) == n
