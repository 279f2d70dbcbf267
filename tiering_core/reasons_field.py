"""The CRM's reasons field of every customer of a batch, chosen column-wise.

The field shows a customer's ``top`` heaviest visible reasons (never an AML one: the
field is visible to sales staff), ties broken by code and then by the order the rules gave
them, each as ``CODE text`` (``reasons.reason_line``) joined by ``"; "`` and cut at
``max_chars``. The choice is one numpy sort over every reason of the batch
(``row_reasons.ReasonCells``), not a sort per customer; only the chosen reasons' texts are
rendered (once per distinct text, from the reason cells' values: no reason dict is made)
and joined, one string a customer, since that string is what leaves the process for the
CRM. Most customers' fields are their own (an amount in a text: 1,978 distinct fields of
1,988 customers in a generated chunk), so a field is joined per customer, not per distinct
combination.
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
    return [j if len(j) <= max_chars else j[: max_chars - 1] + "…" for j in joined]
