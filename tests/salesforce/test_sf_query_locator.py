"""A ``queryMore`` counts as one, whatever the form of its locator: Salesforce mints
18-character locators with the prefix ``0r8`` (Salesforce Help, "'INVALID_QUERY_LOCATOR'
Salesforce Error", help.salesforce.com/s/articleView?id=000384958), older REST examples
show ``01g``; the sandbox mints the current form."""

from __future__ import annotations

import pytest
from sf_helpers import read_all

from connectors.salesforce.callkinds import call_kind

V = "/services/data/v59.0"


@pytest.mark.parametrize(
    ("method", "path", "kind"),
    [
        ("GET", f"{V}/query/0r8xx3vzlR6Y4rbCIX-2000", "query_more"),
        ("GET", f"{V}/queryAll/0r8xx3vzlR6Y4rbCIX-4000", "query_more"),
        ("GET", f"{V}/query/01gD0000002HU6KIAW-2000", "query_more"),
        ("GET", f"{V}/query?q=SELECT+Id+FROM+Account", "query"),
        ("GET", f"{V}/query/", "query"),
    ],
)
def test_query_locators_of_either_form_count_as_query_more(method, path, kind):
    assert call_kind(method, path) == kind


def test_the_connectors_tally_of_a_paged_read_matches_the_orgs(sandbox_factory, connect):
    """Three pages: one query, two queryMore, counted alike by the connector and the org."""
    sandbox = sandbox_factory("salesforce", customers=450)
    connector = connect(sandbox, page_size=200)
    seen: list[str] = []
    more = connector.client.query_more
    connector.client.query_more = lambda url: (seen.append(url), more(url))[1]  # type: ignore[method-assign]
    assert len(read_all(connector)) == 450
    locators = [url.rsplit("/", 1)[1].partition("-")[0] for url in seen]
    assert len(locators) == 2 and all(len(x) == 18 and x.startswith("0r8") for x in locators)
    calls = connector.api_usage().calls
    assert calls["query"] == 1 and calls["query_more"] == sandbox.server.calls.count("query_more")
    assert calls["query_more"] == 2 and "other" not in calls
