"""Household reads: the API calls each connector spends on a book's households (issue 21
§1.1, §1.3).

    python bench/household_calls.py                    # 1,000 customers, all three CRMs
    python bench/household_calls.py --customers 5000 --crm zoho

Seeds each CRM's sandbox (its own relationship model, the same generated households),
reads the book, then asks the connector for the household links of every customer and
prints the customers, links, households and the API calls that one read cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from connectors.mapping import FieldMapping, WritebackConfig  # noqa: E402
from connectors.registry import build_connector  # noqa: E402
from connectors.sandbox.base import open_sandbox  # noqa: E402


def measure(crm: str, customers: int) -> str:
    with tempfile.TemporaryDirectory() as data_dir:
        sandbox = open_sandbox(crm, data_dir=Path(data_dir))
        sandbox.seed(customers, 7)
        sandbox.start()
        try:
            text, env = sandbox.crmtier_config()
            os.environ.update(env)
            config = tomllib.loads(text)
            connector = build_connector(
                config["crm"],
                FieldMapping.model_validate(config["mapping"]),
                WritebackConfig.model_validate(config["writeback"]),
            )
            try:
                ids = [r.profile.id for page in connector.read_changed(None) for r in page.records]
                before = connector.api_usage().total
                links = connector.household_links(ids, [])  # type: ignore[attr-defined]
                calls = connector.api_usage().total - before
            finally:
                connector.close()
        finally:
            sandbox.stop()
    households = len({link.household_id for link in links})
    return (
        f"{crm:<11} {len(ids):>7} customers {len(links):>7} links "
        f"{households:>6} households {calls:>5} calls"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1000)
    parser.add_argument("--crm", choices=("salesforce", "zoho", "fxiaoke"), action="append")
    args = parser.parse_args()
    for crm in args.crm or ("salesforce", "zoho", "fxiaoke"):
        print(measure(crm, args.customers), flush=True)


if __name__ == "__main__":
    main()
