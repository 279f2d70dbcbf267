"""The synthetic book's households: which generated customers live together.

Sizes follow a retail book's shape: most customers are single, many are couples, some are
families of three to five (China's 2020 census put the average family household at 2.62
people: 第七次全国人口普查公报, 国家统计局 2021). A few parents also sit in a grown child's
household, the case of a member in two households. Individuals only: a corporate customer
is nobody's relative.

The draw has its own random stream (``seed:households``), so adding households left every
other generated value of a seed as it was; each sandbox stores the links in its CRM's own
relationship model (Salesforce AccountContactRelation rows, Zoho Contacts under an
Account, FXiaoke contact rows under a customer).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from connectors.sandbox.generator import SyntheticCustomer

#: Shares of each draw's size: 1 (single, no household), 2, 3, 4, 5 members. Of the
#: customers, about 55% are then single, 25% in couples and 20% in families of 3-5.
SIZE_SHARES = ((1, 0.75), (2, 0.17), (3, 0.05), (4, 0.025), (5, 0.005))
#: Share of households a member of an earlier household also joins (a parent).
SECOND_HOUSEHOLD_SHARE = 0.02
#: Roles after the primary member, by position in the household.
_ROLES = ("spouse", "child", "child", "parent")


@dataclass(frozen=True)
class SeedLink:
    """Generated customer ``member`` (its index) in household ``household`` (the index of
    its primary member, which names it in every sandbox) as ``role``."""

    member: int
    household: int
    role: str


def _size(rng: random.Random) -> int:
    u = rng.random()
    for size, share in SIZE_SHARES:
        if u < share:
            return size
        u -= share
    return SIZE_SHARES[-1][0]


def household_links(individuals: Iterable[int], seed: int = 7) -> Iterator[SeedLink]:
    """The links of the generated individuals (indexes in generation order): consecutive
    individuals form households of drawn sizes; singles have no link at all."""
    rng = random.Random(f"{seed}:households")
    pending: list[int] = []
    earlier: list[int] = []  # members of earlier households (candidate second households)
    size = _size(rng)
    for index in individuals:
        pending.append(index)
        if len(pending) < size:
            continue
        if size > 1:
            primary = pending[0]
            yield SeedLink(primary, primary, "primary")
            for position, member in enumerate(pending[1:]):
                yield SeedLink(member, primary, _ROLES[position])
            if earlier and rng.random() < SECOND_HOUSEHOLD_SHARE:
                yield SeedLink(rng.choice(earlier), primary, "parent")
            earlier.extend(pending)
            del earlier[:-1000]  # a bounded window: seeding a million stays cheap
        pending = []
        size = _size(rng)


def noting_individuals(
    customers: Iterable[SyntheticCustomer], individuals: list[int]
) -> Iterator[SyntheticCustomer]:
    """The customers as they stream past (seeding never holds the book), the index of each
    individual appended to ``individuals`` for ``household_links`` afterwards."""
    for c in customers:
        if c.profile.get("kind") != "corporate":
            individuals.append(c.index)
        yield c
