"""The CRM's reasons field of every customer of a batch, chosen column-wise.

The field shows a customer's ``top`` heaviest visible reasons (never an AML one: the field
is visible to sales staff), ties broken by code and then by the order the rules gave them,
each as ``CODE text`` (``reasons.reason_line``) joined by ``"; "`` and cut at
``max_chars``, counted in UTF-16 code units (``cut``). The choice is one numpy sort over
every reason of the batch (``row_reasons.ReasonCells``), not a sort per customer; only the
chosen reasons' texts are rendered (once per distinct text, from the reason cells' values:
no reason dict is made) and joined, one string a customer, since that string is what
leaves the process for the CRM. Most customers' fields are their own (an amount in a text:
1,978 distinct fields of 1,988 customers in a generated chunk), so a field is joined per
customer, not per distinct combination.
"""

from __future__ import annotations

import numpy as np

from tiering_core.reasons import CATALOGUE
from tiering_core.row_reasons import ReasonCells


def reasons_fields(
    n: int,
    cells: ReasonCells,
    *,
    top: int,
    language: str,
    max_chars: int,
) -> list[str]:
    """Each of the ``n`` customers' reasons field."""
    codes = [rc.code for rc in cells.columns]
    # each column's rank among the codes (ties by code), and whether the field shows it
    rank = {code: r for r, code in enumerate(sorted(set(codes)))}
    code_rank = np.array([rank[c] for c in codes] or [0], dtype=np.intp)
    shown = np.array([CATALOGUE[c].dimension != "aml" for c in codes] or [False])
    visible = np.flatnonzero(shown[cells.column]) if cells.column.size else cells.column
    column, row = cells.column[visible], cells.row[visible]
    # by row, heaviest first, then by code, then in the rules' order (the column's)
    order = np.lexsort((column, code_rank[column], -cells.weight[visible], row))
    rows = row[order]
    place = np.arange(rows.size) - np.searchsorted(rows, rows)  # 0 for a row's heaviest
    chosen = visible[order[place < top]].tolist()
    # customers who share a reason share its line: one made per distinct reason
    lines = cells.lines(chosen, language)
    ends = np.cumsum(np.bincount(rows[place < top], minlength=n)).tolist()
    joined = ["; ".join(lines[a:b]) for a, b in zip([0, *ends], ends, strict=False)]
    return [cut(j, max_chars) for j in joined]


def utf16_length(text: str) -> int:
    """``text``'s length as Salesforce counts it: a character outside the Basic
    Multilingual Plane (an emoji, a CJK Extension B character such as 𠮟) is a surrogate
    pair, two characters ("Surrogate Pair Characters Are Treated as Two Characters",
    Salesforce Help). Never less than Python's ``len``, so a text that fits by it fits a
    CRM that counts code points too."""
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def fitted(text: str, limit: int) -> str:
    """``text``'s longest start that fits ``limit`` UTF-16 code units, never splitting a
    character (a CRM field's length as Salesforce counts it: ``utf16_length``)."""
    if utf16_length(text) <= limit:
        return text
    out, used = [], 0
    for c in text:
        used += 2 if ord(c) > 0xFFFF else 1
        if used > limit:
            break
        out.append(c)
    return "".join(out)


def cut(text: str, max_chars: int) -> str:
    """``text`` whole if it fits ``max_chars`` UTF-16 code units, else its longest prefix
    that fits with a closing ``…``, never splitting a character. Counted by code points
    instead, a field full of emoji or rare Chinese characters came out longer than the
    CRM's field (refused, ``STRING_TOO_LONG``) though the config check held the cap to it."""
    if utf16_length(text) <= max_chars:
        return text
    return fitted(text, max_chars - 1) + "…"  # the "…" is one unit
