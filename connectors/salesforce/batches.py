"""The batches sObject Collections calls take and the per-record results they answer.

An sObject Collections call takes up to 200 records ("Update Records Using sObject
Collections", REST API Developer Guide), and a SOQL ``IN`` look-up is kept to as many ids;
each record's result is in request order, a failed one without an ``id``. ``result_of``
reads one result as crmtier's ``WriteResult``: a refused record as ``errors.refusal``
(code, field, object, next step), never as Salesforce's own message, which can quote its
values.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.contract import WriteResult
from connectors.salesforce.errors import record_retryable, refusal

#: Records (or ids) per sObject Collections call, and ids per ``IN`` look-up.
BATCH = 200


def chunks(items: Sequence[Any], size: int = BATCH) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def result_of(
    kind: Any,
    key: str,
    saved: Mapping[str, Any],
    sobject: str,
    ok_codes: tuple[str, ...] = (),
) -> WriteResult:
    if saved.get("success"):
        return WriteResult(kind, key, True)
    errors = saved.get("errors") or [{}]
    code = errors[0].get("statusCode") or errors[0].get("errorCode")
    if code in ok_codes:
        return WriteResult(kind, key, True)
    message = refusal(
        code,
        str(errors[0].get("message") or ""),
        fields=errors[0].get("fields") or (),
        sobject=sobject,
    )
    return WriteResult(kind, key, False, code, message, record_retryable(code))
