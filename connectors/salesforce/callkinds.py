"""The kind of each Salesforce API call, from its method and path: what the client's HTTP
hook counts calls by (``client.SalesforceClient.count``), so a bulk job's polls and a
retried call count as what they are against the org's allowance. Kept apart from the
client, which holds the SDK and is at its size.

A ``queryMore`` is a GET of the page's ``nextRecordsUrl``, ``.../query/<locator>-<offset>``.
Its locator begins with ``0r8`` ("A query locator is 18 characters long and begins with the
prefix 0r8": Salesforce Help, "'INVALID_QUERY_LOCATOR' Salesforce Error", help.salesforce.com/
s/articleView?id=000384958); the REST API Developer Guide's older examples show ``01g``
("Execute a SOQL Query"), so both count as ``query_more``: a locator of the current form
counted as ``other`` would leave every page after the first out of the read figures.
"""

from __future__ import annotations

import re

#: (method or None for any, path regex, kind): first match wins.
_CALL_KINDS: tuple[tuple[str | None, re.Pattern[str], str], ...] = tuple(
    (method, re.compile(pattern), kind)
    for method, pattern, kind in (
        (None, r".*/oauth2/token", "oauth_token"),
        ("POST", r".*/services/Soap/m/[\d.]+/?", "metadata"),
        (None, r".*/jobs/.*", "bulk"),
        ("PATCH", r".*/composite/sobjects/\w+/\w+/?", "collections_upsert"),
        ("PATCH", r".*/composite/sobjects/?", "collections_update"),
        ("POST", r".*/composite/sobjects/?", "collections_create"),
        ("DELETE", r".*/composite/sobjects/?", "collections_delete"),
        (None, r".*/query(?:All)?/(?:0r8|01g)[^/]*", "query_more"),
        (None, r".*/query(?:All)?/?", "query"),
        (None, r".*/describe/?", "describe"),
    )
)


def call_kind(method: str, path: str) -> str:
    """The kind of an API call from its method and path (the names the sandbox counts by)."""
    path = path.split("?", 1)[0]
    for wanted, pattern, kind in _CALL_KINDS:
        if (wanted is None or wanted == method) and pattern.fullmatch(path):
            return kind
    return "other"
