"""Policy loading: the default is valid and versioned, an admin's file is merged over it,
and every bad value is refused with a message naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from core_support import AS_OF, build

from tiering_core.engine import assess
from tiering_core.models import CustomerProfile
from tiering_core.policy import PolicyError, default_policy_text, load_policy


def write(tmp_path: Path, text: str, name: str = "bank.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_default_policy_has_the_design_numbers() -> None:
    p = load_policy()
    assert p.tier_floors() == {"private": 6_000_000, "wealth": 500_000, "affluent": 50_000}
    assert (p.value.buffer, p.value.grace_days) == (0.10, 90)
    assert (p.aml.review_months.high, p.aml.review_months.medium, p.aml.review_months.low) == (
        6,
        12,
        24,
    )
    # no score scale declared, so no score cut-off; DTI off; 五级分类 and arrears rate
    assert (p.credit.score_scale, p.credit.high_score_below, p.credit.high_dti_over) == (
        "",
        None,
        None,
    )
    assert (p.credit.medium_dpd_from, p.credit.high_dpd_over) == (1, 90)
    assert p.strategy.tasks.complaint.due_days == 15
    assert re.fullmatch(r"default@[0-9a-f]{12}", p.version)


def test_version_hashes_content_not_formatting(tmp_path: Path) -> None:
    a = load_policy(write(tmp_path, 'name = "x"\n[value]\nbuffer = 0.2\n', "a.toml"))
    b = load_policy(write(tmp_path, '# same policy\nname="x"\n\n[value]\nbuffer=0.20\n', "b.toml"))
    c = load_policy(write(tmp_path, 'name = "x"\n[value]\nbuffer = 0.25\n', "c.toml"))
    assert a.version == b.version != c.version
    assert a.version.startswith("x@")


def test_admin_file_is_merged_over_the_default_and_named_after_the_file(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, "[value.tiers.private]\naum_floor = 10_000_000\n", "cmb.toml"))
    assert p.floor("private") == 10_000_000
    assert p.floor("wealth") == 500_000  # untouched keys keep the default
    assert p.version.startswith("cmb@")


def test_policy_show_text_is_the_shipped_default() -> None:
    assert "aum_floor = 6_000_000" in default_policy_text()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        (
            "[value.tiers.private]\naum_floor = 400_000\n",
            "value.tiers.private.aum_floor: must be > value.tiers.wealth.aum_floor",
        ),
        (
            "[value.tiers.affluent]\naum_floor = 500_000\n",
            "value.tiers.wealth.aum_floor: must be > value.tiers.affluent.aum_floor",
        ),
        (
            "[value.tiers.affluent]\naum_floor = 0\n",
            "value.tiers.affluent.aum_floor: Input should be greater than 0",
        ),
        ("[value]\nbuffer = 1.5\n", "value.buffer: Input should be less than 1"),
        (
            "[value]\ngrace_days = -1\n",
            "value.grace_days: Input should be greater than or equal to 0",
        ),
        ('[value]\ngrace_days = "ninety"\n', "value.grace_days: Input should be a valid integer"),
        ("[value]\nbufer = 0.1\n", "value.bufer: unknown key"),
        ("[credit]\nhigh_score_below = 580\n", "credit.high_score_below: needs credit.score_scale"),
        (
            '[credit]\nscore_scale = "FICO"\nscore_min = 300\n',
            "credit.score_max: required with credit.score_scale",
        ),
        (
            '[credit]\nscore_scale = "FICO"\nscore_min = 300\nscore_max = 850\n'
            "high_score_below = 750\nmedium_score_below = 670\n",
            "credit.high_score_below: must satisfy",
        ),
        (
            '[credit]\nscore_scale = "FICO"\nscore_min = 300\nscore_max = 850\n'
            "high_score_below = 900\n",
            "credit.high_score_below: must satisfy",
        ),
        (
            "[credit]\nmedium_dti_over = 0.6\nhigh_dti_over = 0.55\n",
            "credit.medium_dti_over: must be <= credit.high_dti_over",
        ),
        ('[credit.loan_class]\nloss = "severe"\n', "credit.loan_class.loss: Input should be"),
        ("[aml]\nmedium_from = 80\n", "aml.medium_from: must be < aml.high_from"),
        ("[aml.weights]\ncustomer = 50\n", "aml.weights: must sum to 100 (they sum to 120)"),
        ("[aml.review_months]\nhigh = 7\nmedium = 12\n", "aml.review_months.high: must be <= 6"),
        (
            "[aml.review_months]\nmedium = 13\n",
            "aml.review_months.medium: must be <= 2 x aml.review_months.high",
        ),
        (
            "[aml.review_months]\nlow = 25\n",
            "aml.review_months.low: must be <= 2 x aml.review_months.medium",
        ),
        (
            '[aml.countries]\ncall_for_action = ["Iran"]\n',
            "aml.countries.call_for_action.0: must be an ISO 3166 alpha-2 code",
        ),
        ('[aml.overrides]\npep = "severe"\n', "aml.overrides.pep"),
        (
            "[ops]\nfailed_medium_from = 9\n",
            "ops.failed_medium_from: must be <= ops.failed_high_from",
        ),
        ("[feedback]\ndetractor_csat_max = 7\n", "feedback.detractor_csat_max: must lie within"),
        ("[feedback]\ndetractor_nps_max = 20\n", "feedback.detractor_nps_max: must lie within"),
        ("[feedback]\nnps_min = 10\n", "feedback.nps_min: must be < feedback.nps_max"),
        ("[fx]\nUSD = 0\n", "fx.USD: must be > 0"),
        ("[fx]\nusd = 7.1\n", "fx.usd: must be an ISO 4217 currency code"),
        ('[quality]\nrequired = ["assets", "shoe_size"]\n', "quality.required.1: Input should be"),
        (
            '[strategy.tasks.edd_review]\npriority = "urgent"\n',
            "strategy.tasks.edd_review.priority: Input should be",
        ),
        (
            '[strategy.campaigns.aml_high_watch]\ntiers = ["mass"]\n',
            "strategy.campaigns.aml_high_watch: campaign keys are customer-facing",
        ),
        (
            '[strategy.campaigns.vip]\ntiers = ["platinum"]\n',
            "strategy.campaigns.vip.tiers.0: Input should be",
        ),
        ('name = "has space"\n', "name: String should match pattern"),
    ],
)
def test_bad_policy_is_refused_naming_the_key(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, toml))
    assert any(problem.startswith(message) for problem in caught.value.problems), (
        caught.value.problems
    )


def test_unreadable_and_invalid_toml_are_policy_errors(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the file"):
        load_policy(tmp_path / "missing.toml")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(write(tmp_path, "[value\nbuffer = \n"))


def test_every_problem_is_reported_in_one_pass(tmp_path: Path) -> None:
    """Key errors no longer hide cross-key or regulatory ones: an unknown key, a bad value,
    an inverted ladder and a weakened floor in one file come back together."""
    toml = (
        '[value]\nbufer = 0.1\ngrace_days = "ninety"\n'
        "[value.tiers.private]\naum_floor = 400_000\n"
        '[aml.overrides]\nsanctions_hit = "medium"\n'
        '[strategy.tasks.complaint]\ndue_days = 30\npriority = "urgent"\n'
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, toml))
    keys = sorted(problem.split(":")[0] for problem in caught.value.problems)
    assert keys == [
        "aml.overrides.sanctions_hit",
        "strategy.tasks.complaint.due_days",
        "strategy.tasks.complaint.priority",
        "value.bufer",
        "value.grace_days",
        "value.tiers.private.aum_floor",
    ], caught.value.problems


def test_a_problem_about_a_bad_value_is_not_reported_twice(tmp_path: Path) -> None:
    """A bad value is set aside with the default's for the cross-key checks, and a check
    naming it is left out: it would describe the default, not the file."""
    with pytest.raises(PolicyError) as caught:
        load_policy(
            write(
                tmp_path,
                "[value.tiers.private]\naum_floor = -1\n"
                "[value.tiers.wealth]\naum_floor = 7_000_000\n",
            )
        )
    assert caught.value.problems == [
        "value.tiers.private.aum_floor: Input should be greater than 0"
    ]


@pytest.mark.parametrize(
    ("toml", "floor", "message"),
    [
        (
            '[aml.overrides]\nsanctions_hit = "medium"\n',
            "sanctions",
            'aml.overrides.sanctions_hit: must be "prohibited"',
        ),
        (
            '[aml.overrides]\nsanctions_hit = ""\n',
            "sanctions",
            'aml.overrides.sanctions_hit: must be "prohibited"',
        ),
        (
            "[strategy.risk]\nno_campaigns_aml = []\n",
            "sanctions",
            'strategy.risk.no_campaigns_aml: must include "prohibited"',
        ),
        (
            '[strategy.risk]\nno_marketing_aml = ["high"]\n',
            "sanctions",
            'strategy.risk.no_marketing_aml: must include "prohibited"',
        ),
        (
            "[strategy.tasks.sanctions_review]\ndue_days = 3\n",
            "sanctions",
            "strategy.tasks.sanctions_review: must be enabled",
        ),
        (
            '[strategy.tasks.sanctions_review]\npriority = "normal"\n',
            "sanctions",
            "strategy.tasks.sanctions_review: must be enabled",
        ),
        (
            "[strategy.tasks.sanctions_review]\nenabled = false\n",
            "sanctions",
            "strategy.tasks.sanctions_review: must be enabled",
        ),
        ('[aml.overrides]\npep = "medium"\n', "pep", 'aml.overrides.pep: must be "high"'),
        ('[aml.overrides]\npep = ""\n', "pep", 'aml.overrides.pep: must be "high"'),
        (
            "[strategy.tasks.complaint]\ndue_days = 16\n",
            "complaint_deadline",
            "strategy.tasks.complaint.due_days: must be <= 15",
        ),
        (
            "[strategy.tasks.complaint]\nenabled = false\n",
            "complaint_deadline",
            "strategy.tasks.complaint.due_days: must be <= 15",
        ),
        (
            "[aml.review_months]\nhigh = 12\nmedium = 24\nlow = 48\n",
            "aml_review",
            "aml.review_months.high: must be <= 6",
        ),
        (
            "[aml.review_months]\nlow = 36\n",
            "aml_review",
            "aml.review_months.low: must be <= 2 x aml.review_months.medium",
        ),
    ],
)
def test_a_weakened_regulatory_floor_needs_a_named_waiver(
    tmp_path: Path, toml: str, floor: str, message: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, toml))
    [problem] = [p for p in caught.value.problems if p.startswith(message)]
    assert f"[regulatory.waivers] {floor} =" in problem
    reason = "Board decision 2026-14, reviewed by the AML officer"
    waived = load_policy(write(tmp_path, f'{toml}[regulatory.waivers]\n{floor} = "{reason}"\n'))
    assert waived.regulatory.waivers == {floor: reason}
    assert waived.version.endswith(f"+waived:{floor}")


def test_the_regulatory_floors_at_their_edges_need_no_waiver(tmp_path: Path) -> None:
    p = load_policy(
        write(
            tmp_path,
            '[aml.overrides]\npep = "prohibited"\n'
            "[strategy.tasks.complaint]\ndue_days = 15\n"
            "[aml.review_months]\nhigh = 6\nmedium = 12\nlow = 24\n",
        )
    )
    assert p.regulatory.waivers == {} and "+waived" not in p.version


@pytest.mark.parametrize(
    ("waivers", "message"),
    [
        ('pep = "domestic PEPs only"', "regulatory.waivers.pep: the policy keeps this floor"),
        ('sanctions_hit = "x"', "regulatory.waivers.sanctions_hit: unknown floor"),
        ('complaint_deadline = "  "', "regulatory.waivers.complaint_deadline: needs the reason"),
    ],
)
def test_a_waiver_names_a_weakened_floor_and_a_reason(
    tmp_path: Path, waivers: str, message: str
) -> None:
    toml = f"[strategy.tasks.complaint]\ndue_days = 30\n[regulatory.waivers]\n{waivers}\n"
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, toml))
    assert any(p.startswith(message) for p in caught.value.problems), caught.value.problems


def test_a_version_with_its_waivers_must_fit_the_audit_column(tmp_path: Path) -> None:
    toml = (
        'name = "a_very_long_policy_name_for_the_retail_division"\n'
        '[aml.overrides]\npep = "medium"\nsanctions_hit = "high"\n'
        "[aml.review_months]\nhigh = 12\n[strategy.tasks.complaint]\ndue_days = 30\n"
        '[regulatory.waivers]\npep = "r"\nsanctions = "r"\naml_review = "r"\n'
        'complaint_deadline = "r"\n'
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(write(tmp_path, toml))
    assert [p.split(":")[0] for p in caught.value.problems] == ["name"]


def test_every_assessment_carries_the_waiver_in_its_policy_version(tmp_path: Path) -> None:
    """The version an assessment (and so the CRM field and each audit row) records names the
    waiver."""
    policy = load_policy(
        write(
            tmp_path,
            '[aml.overrides]\npep = "medium"\n[regulatory.waivers]\npep = "Board decision"\n',
        )
    )
    a = assess(CustomerProfile.model_validate(build(aml={"pep": True})), policy, AS_OF)
    assert a.policy_version == policy.version
    assert a.policy_version.endswith("+waived:pep") and a.aml_risk == "medium"
