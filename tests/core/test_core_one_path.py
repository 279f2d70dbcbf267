"""The vectorised rules against the plain-Python ones they replace (issue 18 item 1).

Temporary: it holds the one-customer path (``legacy_decide``) and the vectorised batch of
one to identical assessments on generated books under every policy variant, while both
exist; the golden fixture keeps that equality tested after the plain-Python form is gone.
"""

from __future__ import annotations

import pytest
from core_support import AS_OF, generated_bank, policies

from tiering_core.engine import _model, assess, assess_batch, legacy_decide

POLICIES = policies()


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_vectorised_batch_of_one_equals_the_plain_python_path(name: str) -> None:
    policy = POLICIES[name]
    book = generated_bank(1_500, seed=23, dirty=True)
    old = [_model(legacy_decide(p, policy, AS_OF)) for p in book]
    assert assess_batch(book, policy, AS_OF) == old
    assert [assess(p, policy, AS_OF) for p in book[:300]] == old[:300]
