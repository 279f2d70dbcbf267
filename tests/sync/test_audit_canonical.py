"""The audit chain's canonical text written from tuples (``sync.audit.CanonicalRows``) is
byte for byte the ``json`` encoder's over the row as a dict, the text every stored hash
covers (``row_hash``, which ``verify`` uses)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sync import audit
from sync.store import StateStore
from tests.sync.test_sync_store import _entry  # one audit row, as the store tests make it

_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | _TEXT
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TEXT, inner, max_size=5),
    max_leaves=12,
)
_NAMES = ["seq", "at", "old", "new", "reason_codes", "key_id", "prev_hash", "100%", "Z", "é"]


@settings(max_examples=50)
@given(st.lists(st.tuples(*[_VALUES for _ in _NAMES]), min_size=1, max_size=6))
def test_the_text_is_the_json_encoders(rows: list[tuple[Any, ...]]) -> None:
    canonical = audit.CanonicalRows(_NAMES)
    for values in rows:
        assert canonical.text(values) == audit._canonical(dict(zip(_NAMES, values, strict=True)))


def test_equal_blocks_in_any_key_order_and_lookalike_values_keep_their_own_text() -> None:
    """Texts-only dicts are encoded once and reused: the same items in another order read
    the same; values equal in Python but not in JSON (1, 1.0, True) are never confused."""
    canonical = audit.CanonicalRows(["new"])
    blocks: list[dict[str, Any]] = [
        {"value_tier": "gold", "aml_risk": "low"},
        {"aml_risk": "low", "value_tier": "gold"},
        {"value_tier": "1"},
        {"value_tier": 1},
        {"value_tier": 1.0},
        {"value_tier": True},
        {"value_tier": "1"},
    ]
    for block in blocks:
        assert canonical.text((block,)) == audit._canonical({"new": block})


def test_appended_rows_verify(store: StateStore) -> None:
    """The chain ``append`` writes with these texts is the one ``verify`` recomputes."""
    keys = store.audit_keys
    with store.begin() as conn:
        audit.append(conn, [_entry(i) for i in range(50)], keys)
        audit.append(conn, [_entry(i) for i in range(50, 60)], keys)
    with store.begin() as conn:
        assert audit.verify(conn, keys) == audit.VerifyResult(True, 60)
