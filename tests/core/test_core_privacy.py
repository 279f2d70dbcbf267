"""Pseudonyms are HMAC-SHA256 of the CRM id under the key, whatever the key's length (the
precomputed pads must give what ``hmac`` gives, or every stored pseudonym would change)."""

from __future__ import annotations

import hashlib
import hmac

from hypothesis import given
from hypothesis import strategies as st

from tiering_core.privacy import pseudonym


def _reference(customer_id: str, key: bytes) -> str:
    digest = hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"cust_{digest[:20]}"


@given(customer_id=st.text(min_size=1, max_size=40), key=st.binary(min_size=0, max_size=130))
def test_a_pseudonym_is_the_hmac_of_the_id(customer_id: str, key: bytes) -> None:
    assert pseudonym(customer_id, key) == _reference(customer_id, key)


def test_known_values_under_keys_of_every_length_class() -> None:
    # shorter than, exactly and longer than SHA-256's 64-byte block
    for key in (b"", b"k" * 32, b"k" * 64, b"k" * 65):
        for customer_id in ("001000000000123ABC", "客户-42", "x"):
            assert pseudonym(customer_id, key) == _reference(customer_id, key)
    assert pseudonym("001A", b"a" * 32) != pseudonym("001A", b"b" * 32)
