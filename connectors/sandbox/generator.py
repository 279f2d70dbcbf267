"""Deterministic synthetic bank customers for the sandboxes, demos and benchmarks.

The same ``(n, seed)`` always yields the same customers, so a test can name a customer by
index and a benchmark is repeatable. The population is shaped like a retail book
(docs/targets.md A1.3, CMB's customer pyramid: roughly 2% private, 8% wealth, 20% affluent, the rest
mass) plus corporates, so every value tier, needs tier and risk level appears. About 2% of records
are dirty the way CRM data is dirty: negative balances, unknown country codes or loan classes,
missing blocks, text in numeric fields. Each customer also carries canary PII (name, phone, e-mail,
national id) that crmtier must never log, store or copy.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

SEGMENTS: tuple[tuple[str, float, float, float], ...] = (
    # name, share, AUM low, AUM high (CNY)
    ("private", 0.02, 6_000_000, 60_000_000),
    ("wealth", 0.08, 500_000, 6_000_000),
    ("affluent", 0.20, 50_000, 500_000),
    ("mass", 0.70, 0, 50_000),
)
HIGH_RISK_COUNTRIES = ("IR", "KP", "MM", "SY", "AF", "YE")
ORDINARY_COUNTRIES = ("US", "GB", "SG", "HK", "JP", "DE", "AU", "CA")
PRODUCTS = ("deposit", "fund", "wealth_mgmt", "insurance", "bond", "mortgage", "credit_card")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
#: Share of customers who refused personalised marketing (PIPL Art. 24). A design figure
#: for the demo book, not a published statistic.
MARKETING_OPT_OUT_SHARE = 0.08
LOAN_CLASSES = ("normal", "special_mention", "substandard", "doubtful", "loss")
#: Shares (%) of commercial banks' loans by 五级分类 at the end of 2023 Q4, from the National
#: Financial Regulatory Administration's quarterly "银行业保险业主要监管指标数据情况": NPL ratio
#: 1.59 %; 关注类 4.5 of 202.5 trillion yuan of loans (199.3 performing + 3.2 NPL) = 2.22 %.
#: The release gives the NPL total only, so its split across 次级/可疑/损失 is illustrative
#: (every NPL class rates credit-high, so the split does not move that share).
LOAN_CLASS_SHARES = (96.19, 2.22, 0.80, 0.50, 0.29)
NPL_RATIO = sum(LOAN_CLASS_SHARES[2:]) / 100
_GOLDEN = (math.sqrt(5) - 1) / 2
_SCORE_PENALTY = {
    "normal": 0,
    "special_mention": 80,
    "substandard": 150,
    "doubtful": 200,
    "loss": 250,
}
#: A customer's 0-10 NPS answer, drawn as one of these 21 equally likely slots (the same
#: draw as the -100..100 steps the book had before, so every other field of customer i is
#: unchanged): 4/21 detractors (0-6), 7/21 passives (7-8), 10/21 promoters (9-10), a book
#: NPS of about +29. Illustrative, not a published distribution.
_NPS_ANSWERS = (2, 4, 5, 6, 7, 7, 7, 8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 10, 10)
#: Numeric inputs whose dirty values are text ("N/A"). A CRM field typed as a number holds a
#: number or nothing, so a sandbox org keeps these in a single-line *text* field, as a CSV
#: import that created the field leaves them: numbers there are text ("57") too.
TEXT_IMPORTED_INPUTS = frozenset({"activity.transactions_90d"})


@dataclass(frozen=True)
class SyntheticCustomer:
    index: int
    id: str
    modstamp: datetime
    profile: dict[str, Any]  # canonical CustomerProfile JSON (without id/modified_at)
    pii: dict[str, str]  # name, phone, email, national_id: canaries, never to be logged
    dirty: bool


#: The relationship managers the generator names as owners: ``U00001`` .. ``U00039``.
OWNER_NUMBERS = range(1, 40)


def rm_capacity(owner_number: int) -> int:
    """The capacity (private-equivalent clients) the seeded CRM user of owner
    ``U<owner_number>`` carries in its RM-capacity field: 100 to 150 in steps of 10, so
    advisor coverage reads a different capacity per RM, not one the policy could supply."""
    return 100 + 10 * (owner_number % 6)


def customer_id(index: int) -> str:
    return f"C{index:09d}"


def generate(n: int, seed: int = 7, *, dirty_share: float = 0.02) -> Iterator[SyntheticCustomer]:
    rng = random.Random(seed)
    # Consent draws from its own stream: adding it left every other value of a seed as it was.
    consent_rng = random.Random(f"{seed}:consent")
    lines_rng = random.Random(f"{seed}:credit_line")
    branch_rng = random.Random(f"{seed}:branch")
    for i in range(n):
        customer = _one(i, rng, dirty_share, seed)
        customer.profile["consent"] = {
            "marketing_opt_out": consent_rng.random() < MARKETING_OPT_OUT_SHARE
        }
        _credit_line(customer.profile, lines_rng)
        _branch_transactions(customer.profile, branch_rng)
        yield customer


def _branch_transactions(profile: dict[str, Any], rng: random.Random) -> None:
    """How many of the 90 days' transactions were made at a branch counter: up to half of
    them, fewer the more the customer logs in digitally (a frequent app user rarely queues
    at a counter). From its own stream, so every other value of a seed stays as it was. A
    customer whose activity block is missing or dirty gets none (unknown, not zero)."""
    activity = profile.get("activity")
    if not isinstance(activity, dict):
        return
    tx, logins = activity.get("transactions_90d"), activity.get("digital_logins_90d")
    draw = rng.uniform(0.0, 0.5)
    if isinstance(tx, int) and isinstance(logins, int) and tx >= 0 and logins >= 0:
        activity["branch_transactions_90d"] = int(tx * draw * (1 - min(logins, 200) / 200))


def _segment(rng: random.Random) -> tuple[str, float, float]:
    x = rng.random()
    acc = 0.0
    for name, share, low, high in SEGMENTS:
        acc += share
        if x < acc:
            return name, low, high
    return SEGMENTS[-1][0], SEGMENTS[-1][2], SEGMENTS[-1][3]


def _feedback(rng: random.Random) -> dict[str, Any]:
    """One customer's survey answers. CSAT (1-5) and the NPS answer (0-10) measure the same
    satisfaction, so CSAT follows the NPS answer (a 10 is a 5, a 2 about 1.8) within half a
    point either way: a customer unhappy on one scale is unhappy on the other, as in real
    survey data, instead of the two being independent and doubling the detractors. The
    draws are the ones the book always made, in the same order, so no other field moves."""
    spread = (rng.uniform(1, 5) - 3) / 4  # -0.5 .. 0.5
    nps = _NPS_ANSWERS[rng.randrange(len(_NPS_ANSWERS))]
    return {
        "csat": round(min(5.0, max(1.0, 1 + 0.4 * nps + spread)), 1),
        "nps": nps,
        "open_complaints": rng.choices((0, 1, 2), (90, 8, 2))[0],
        "complaints_12m": rng.choices((0, 1, 3), (85, 12, 3))[0],
    }


def _one(i: int, rng: random.Random, dirty_share: float, seed: int) -> SyntheticCustomer:
    segment, low, high = _segment(rng)
    corporate = rng.random() < 0.06
    aum = round(rng.uniform(low, high) * (3 if corporate else 1), 2)
    dep_share = rng.uniform(0.2, 0.9)
    inv = aum * (1 - dep_share) * rng.uniform(0.5, 1.0)
    profile: dict[str, Any] = {
        "kind": "corporate" if corporate else "individual",
        "currency": "CNY",
        "owner_id": f"U{rng.randrange(OWNER_NUMBERS.start, OWNER_NUMBERS.stop):05d}"
        if segment in ("private", "wealth") or rng.random() < 0.3
        else None,
        "assets": {
            "deposits": round(aum * dep_share, 2),
            "investments": round(inv, 2),
            "insurance": round(max(aum - aum * dep_share - inv, 0.0), 2),
        },
        "activity": {
            "transactions_90d": rng.randrange(0, 400),
            "digital_logins_90d": rng.randrange(0, 200),
            "products_held": sorted(rng.sample(PRODUCTS, rng.randrange(1, 4))),
        },
        "revenue_12m": {
            "loan_interest": round(rng.uniform(0, aum * 0.01), 2),
            "product_fees": round(rng.uniform(0, aum * 0.004), 2),
            "service_fees": round(rng.uniform(0, 2_000), 2),
        },
        "credit": _credit(rng, i, seed),
        "aml": _aml(rng, aum),
        "ops": {
            "failed_operations_90d": rng.choices((0, 1, 3, 8), (70, 20, 8, 2))[0],
            "support_tickets_90d": rng.choices((0, 1, 4, 10), (60, 28, 10, 2))[0],
            "fraud_victim_flag": rng.random() < 0.01,
            "kyc_expired": rng.random() < 0.03,
        },
        "feedback": _feedback(rng),
        "qualified_investor": segment == "private" or (segment == "wealth" and rng.random() < 0.3),
    }
    if rng.random() < 0.5:
        profile["aum_avg_3m"] = round(aum * rng.uniform(0.9, 1.1), 2)
    dirty = rng.random() < dirty_share
    if dirty:
        _make_dirty(profile, rng)
    cid = customer_id(i)
    # Modstamps spread over the past ~300 days; every 50th pair shares a stamp (ties happen).
    modstamp = EPOCH + timedelta(seconds=(i - i % 2 * (i % 50 == 1)) * 13)
    pii = {
        "name": f"Canary-Name-{i:07d}",
        "phone": f"+86 139{i:08d}",
        "email": f"canary{i:07d}@example.test",
        "national_id": f"11010119900101{i % 10000:04d}",
    }
    return SyntheticCustomer(i, cid, modstamp, profile, pii, dirty)


def _credit(rng: random.Random, i: int, seed: int) -> dict[str, Any] | None:
    """A borrower's worst 五级分类 with the published shares of commercial banks' loans
    (``LOAN_CLASS_SHARES``), days past due that agree with the class, and a score (on the
    book's own 300-900 scale, lower for worse classes) that the default policy ignores.

    The class comes from a golden-ratio sequence over the customer index, not an independent
    draw, so even a 2,000-customer demo book holds the published shares to within a customer
    or two (independent draws would miss them by a quarter either way). The random draws
    are the ones the book always made, in the same order, so no other field moves."""
    if rng.random() < 0.15:
        return None  # no credit relationship: credit risk must come out unrated, not low
    loan_class = _loan_class((seed * math.sqrt(2) + i * _GOLDEN) % 1.0)
    depth = rng.random()
    score = max(300, rng.randrange(450, 851) - _SCORE_PENALTY[loan_class])
    dti = round(rng.uniform(0.0, 0.7), 3)
    overdue = rng.random() < 0.5
    return {
        "score": score,
        "debt_to_income": dti,
        "days_past_due_max_12m": _days_past_due(loan_class, overdue, depth),
        "loan_class": loan_class,
    }


def _credit_line(profile: dict[str, Any], rng: random.Random) -> None:
    """A corporate borrower's approved credit lines (授信额度): 0-4x its balances for the
    ~60% that borrow. Individuals' lines are not an input of any rule, so they stay unset."""
    credit, assets = profile["credit"], profile["assets"]
    if profile["kind"] != "corporate" or not isinstance(credit, dict) or not assets:
        return
    balances = sum(v for v in assets.values() if isinstance(v, int | float) and v > 0)
    borrows = rng.random() < 0.6
    credit["credit_line"] = round(balances * rng.uniform(0.5, 4.0), -3) if borrows else 0.0


def _loan_class(u: float) -> str:
    """The class whose cumulative share interval holds ``u`` in [0, 1)."""
    edge = 0.0
    for loan_class, share in zip(LOAN_CLASSES, LOAN_CLASS_SHARES, strict=True):
        edge += share / 100
        if u < edge:
            return loan_class
    return LOAN_CLASSES[-1]


def _days_past_due(loan_class: str, overdue: bool, depth: float) -> int:
    """Arrears that agree with the class (商业银行金融资产风险分类办法, 2023: any overdue ⇒
    at least 关注, > 90 days ⇒ 次级, > 270 ⇒ 可疑, > 360 ⇒ 损失). A 关注 loan is overdue
    only when ``overdue`` (otherwise it is 关注 for another weakness); ``depth`` in [0, 1)
    places the arrears within the class's band."""
    if loan_class == "normal" or (loan_class == "special_mention" and not overdue):
        return 0
    low, span = {
        "special_mention": (1, 90),
        "substandard": (91, 180),
        "doubtful": (271, 90),
        "loss": (361, 365),
    }[loan_class]
    return low + int(depth * span)


def _aml(rng: random.Random, aum: float) -> dict[str, Any]:
    risky = rng.random() < 0.05
    return {
        "pep": rng.random() < 0.005,
        "sanctions_hit": rng.random() < 0.001,
        "high_risk_countries": [rng.choice(HIGH_RISK_COUNTRIES)] if risky else [],
        "cash_volume_90d": round(rng.uniform(0, min(aum, 300_000)) * (3 if risky else 1), 2),
        "cross_border_count_90d": rng.randrange(0, 30 if risky else 4),
        "cross_border_volume_90d": round(rng.uniform(0, 500_000 if risky else 20_000), 2),
        "industry_risk": rng.choices(("low", "medium", "high"), (80, 15, 5))[0],
        "str_count_12m": rng.choices((0, 1, 2), (97, 2, 1))[0],
        "refused_cdd": rng.random() < 0.002,
        "adverse_media": rng.random() < 0.01,
    }


def _make_dirty(profile: dict[str, Any], rng: random.Random) -> None:
    kind = rng.randrange(5)
    if kind == 0:
        profile["assets"]["deposits"] = -abs(profile["assets"]["deposits"]) - 1
    elif kind == 1:
        profile["aml"]["high_risk_countries"] = ["ZZ"]
    elif kind == 2 and profile["credit"] is not None:
        profile["credit"]["loan_class"] = "unknown_grade"
    elif kind == 3:
        profile["assets"] = None
        profile.pop("aum_avg_3m", None)
    else:
        profile["activity"]["transactions_90d"] = "N/A"  # text in a numeric CRM field


def get_path(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def to_crm_fields(customer: SyntheticCustomer, fields: Mapping[str, str]) -> dict[str, Any]:
    """Flatten the canonical profile into CRM field names with a ``{canonical path: CRM field}``
    mapping (the CRM's default mapping); unmapped paths are left out, None stays None."""
    return {crm: get_path(customer.profile, path) for path, crm in fields.items()}
