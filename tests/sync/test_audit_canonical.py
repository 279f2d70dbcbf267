"""The audit chain's canonical text (``sync.audit._canonical``, with the json module's C
encoder made once) is byte for byte ``json.dumps(row, sort_keys=True, separators=(",",
":"), ensure_ascii=False)``: the text every stored hash covers."""

from __future__ import annotations

import json
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


@settings(max_examples=50)
@given(st.dictionaries(_TEXT, _VALUES, max_size=18))
def test_the_text_is_json_dumps_sorted_and_compact(row: dict[str, Any]) -> None:
    expected = json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert audit._canonical(row) == expected


def test_appended_rows_verify(store: StateStore) -> None:
    """The chain ``append`` writes is the one ``verify`` recomputes, over two pages."""
    keys = store.audit_keys
    with store.begin() as conn:
        audit.append(conn, [_entry(i) for i in range(50)], keys)
        audit.append(conn, [_entry(i) for i in range(50, 60)], keys)
    with store.begin() as conn:
        assert audit.verify(conn, keys) == audit.VerifyResult(True, 60)
