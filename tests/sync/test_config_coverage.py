"""Nothing configured is silently skipped: every write-back output, campaign and task queue
the policy can produce has a CRM target or is switched off with ``false``; a misspelt key
is refused at load with a did-you-mean, naming the file read."""

from __future__ import annotations

import logging
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from connectors.coverage import mapping_problems, policy_queues, writeback_problems
from connectors.mapping import OPTIONAL_WRITEBACK_FIELDS, WRITEBACK_FIELDS
from connectors.registry import default_mapping, kinds
from crmtier.config import load_config
from tests.sync.test_sync_config import refusal
from tiering_core.policy import load_policy

POLICY = load_policy()


@pytest.mark.parametrize("kind", kinds())
def test_each_shipped_mapping_covers_the_default_policy_exactly(kind: str) -> None:
    """The CRMs' shipped mappings cannot drift from the default policy (or from each
    other): the same outputs, campaigns and queues, none missing, none extra."""
    shipped = default_mapping(kind)
    assert writeback_problems(shipped.writeback, POLICY) == []
    assert mapping_problems(shipped.mapping) == []
    optional = set(shipped.writeback.fields) - set(WRITEBACK_FIELDS)
    assert set(shipped.writeback.fields) >= set(WRITEBACK_FIELDS)
    # an optional output ships only where the CRM has its place: Salesforce households
    assert optional == ({"household_tier"} if kind == "salesforce" else set())
    assert optional <= set(OPTIONAL_WRITEBACK_FIELDS)
    assert set(shipped.writeback.campaigns) == set(POLICY.strategy.campaigns)
    assert set(shipped.writeback.queues) == policy_queues(POLICY)
    assert not shipped.writeback.switched_off
    assert shipped.writeback.reasons_max is None  # a key nothing reads: not shipped


def _shipped_writeback(kind: str = "salesforce") -> str:
    text = resources.files(f"connectors.{kind}").joinpath("default_mapping.toml").read_text()
    return text[text.index("\n[writeback]") :]


def _config(tmp_path: Path, body: str, name: str = "bank.toml") -> Path:
    path = tmp_path / name
    path.write_text('[crm]\nkind = "salesforce"\nbase_url = "https://x"\n' + body, "utf-8")
    return path


WRITEBACK = _shipped_writeback()
#: a line every shipped ``[writeback]`` has, after which a test adds a key of that table
TASKS_ON = "tasks = true\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            WRITEBACK.replace("value_tier =", "valu_tier ="),
            "bank.toml: [writeback.fields] valu_tier: unknown field; did you mean value_tier?",
        ),
        (
            WRITEBACK.replace("value_tier =", "valu_tier ="),
            "bank.toml: [writeback.fields] value_tier: missing",
        ),
        (
            WRITEBACK.replace('survey_mass = "701000000000010AAA"', "survey_mas = false"),
            "[writeback.campaigns] survey_mas: unknown campaign; did you mean survey_mass?",
        ),
        (
            WRITEBACK.replace('credit_risk = "00G000000000002AAA"\n', ""),
            "[writeback.queues] credit_risk: missing; every policy's task queue needs a CRM "
            "target: map it, or write credit_risk = false to switch it off",
        ),
        (
            WRITEBACK.replace('compliance = "00G000000000001AAA"', "compliance = true"),
            "[writeback.queues] compliance: give the CRM's name or id, or false",
        ),
        (
            '[mapping]\nobject = "Account"\n[mapping.fields]\n"asets.deposits" = "D__c"\n',
            "bank.toml: [mapping.fields] asets.deposits: not a canonical field; "
            "did you mean assets.deposits?",
        ),
        (
            "[sync]\nwrite_concurency = 2\n",
            "[sync] write_concurency: unknown key; did you mean write_concurrency?",
        ),
        ("[sync]\nwrite_concurrency = 0\n", "[sync] write_concurrency: must be greater than"),
        ('[policy]\nfile = "missing.toml"\n', "bank.toml: [policy] file: "),
    ],
)
def test_a_key_that_names_nothing_is_refused_at_load(
    tmp_path: Path, body: str, message: str
) -> None:
    assert message in refusal(_config(tmp_path, body))


def test_switched_off_targets_load_and_are_kept_apart(tmp_path: Path) -> None:
    body = (
        WRITEBACK.replace('survey_mass = "701000000000010AAA"', "survey_mass = false")
        .replace('credit_risk = "00G000000000002AAA"', "credit_risk = false")
        .replace('aml_risk = "AML_Risk__c"', "aml_risk = false")
    )
    writeback = load_config(_config(tmp_path, body)).writeback_config()
    assert writeback.switched_off == {
        "campaigns.survey_mass",
        "queues.credit_risk",
        "fields.aml_risk",
    }
    assert "survey_mass" not in writeback.campaigns and "aml_risk" not in writeback.fields


def test_a_campaign_given_add_false_loads_with_its_id_and_adds_no_one(tmp_path: Path) -> None:
    """``vip_events = { id = "...", add = false }`` is a mapped campaign (its id kept so
    crmtier can remove the members it made there) that takes no new member; a table with
    another key is refused at load, naming the file."""
    vip = 'vip_events = "701000000000001AAA"'
    assert vip in WRITEBACK
    body = WRITEBACK.replace(vip, 'vip_events = { id = "701000000000001AAA", add = false }')
    writeback = load_config(_config(tmp_path, body)).writeback_config()
    assert writeback.campaigns["vip_events"] == "701000000000001AAA"
    assert writeback.remove_only == {"vip_events"} and not writeback.switched_off
    bad = WRITEBACK.replace(vip, 'vip_events = { id = "701000000000001AAA", adds = false }')
    message = refusal(_config(tmp_path, bad, "bad.toml"))
    assert "bad.toml" in message and "[writeback.campaigns] vip_events: write" in message


def test_a_campaign_the_policy_no_longer_has_loads_only_given_add_false(tmp_path: Path) -> None:
    """A campaign the policy dropped while crmtier holds members it made there: the start
    gate asks for its CRM id back with ``add = false`` (``sync.write_readiness``), so that
    entry loads with memberships on, the policy not knowing the key; given as a plain id
    (which would add members) it is still an unknown campaign."""
    body = WRITEBACK.replace(
        "\n[writeback.campaigns]\n",
        '\n[writeback.campaigns]\nspring_promo = { id = "701000000000009AAA", add = false }\n',
    )
    assert body != WRITEBACK
    writeback = load_config(_config(tmp_path, body)).writeback_config()
    assert writeback.campaigns["spring_promo"] == "701000000000009AAA"
    assert not writeback.adds_to("spring_promo")
    plain = body.replace('{ id = "701000000000009AAA", add = false }', '"701000000000009AAA"')
    message = refusal(_config(tmp_path, plain, "plain.toml"))
    assert "[writeback.campaigns] spring_promo: unknown campaign" in message


def test_with_tasks_and_campaigns_off_their_tables_may_be_empty(tmp_path: Path) -> None:
    fields = tomllib.loads(WRITEBACK)["writeback"]["fields"]
    body = "[writeback]\ntasks = false\ncampaign_memberships = false\n[writeback.fields]\n"
    body += "".join(f'{k} = "{v}"\n' for k, v in fields.items())
    assert load_config(_config(tmp_path, body)).writeback_config().queues == {}


EXPLAINED = WRITEBACK.replace(
    'policy_version = "Tier_Policy_Version__c"\n',
    'policy_version = "Tier_Policy_Version__c"\nexplanation = "Tier_Explanation__c"\n',
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            EXPLAINED.replace("explanation =", "explaination ="),
            "[writeback.fields] explaination: unknown field; did you mean explanation?",
        ),
        (
            EXPLAINED.replace(TASKS_ON, TASKS_ON + "explanation_max_chars = 256\n"),
            "bank.toml: [writeback] explanation_max_chars: 256 does not fit the salesforce "
            "field explanation is written to (Tier_Explanation__c, at most 255 characters); set "
            "explanation_max_chars = 255 or less",
        ),
        (
            EXPLAINED.replace(TASKS_ON, TASKS_ON + 'explanation_language = "fr"\n'),
            "explanation_language",
        ),
    ],
)
def test_an_explanation_the_crm_cannot_hold_is_refused_at_load(
    tmp_path: Path, body: str, message: str
) -> None:
    assert message in refusal(_config(tmp_path, body))


def test_the_explanation_is_optional_and_loads_when_mapped(tmp_path: Path) -> None:
    """Unmapped (the shipped mappings) nothing is missing; mapped, it loads with its
    language and length; a cap that fits one CRM's field may not fit another's."""
    assert "explanation" not in load_config(_config(tmp_path, WRITEBACK)).writeback_config().fields
    body = EXPLAINED.replace(
        TASKS_ON, TASKS_ON + 'explanation_language = "zh"\nexplanation_max_chars = 200\n'
    )
    writeback = load_config(_config(tmp_path, body)).writeback_config()
    assert writeback.fields["explanation"] == "Tier_Explanation__c"
    assert (writeback.explanation_language, writeback.explanation_max_chars) == ("zh", 200)
    assert writeback_problems(writeback, POLICY, "zoho") == []
    assert writeback_problems(writeback, POLICY, "fxiaoke") == [
        "[writeback] explanation_max_chars: 200 does not fit the fxiaoke field explanation "
        "is written to (Tier_Explanation__c, at most 100 characters); set "
        "explanation_max_chars = 100 or less"
    ]


#: (policy's strategy.reasons_top, [writeback] line, refusal or None, deprecation warning)
REASONS_MAX_CASES = [
    pytest.param(4, "", None, False, id="absent-loads-quietly"),
    pytest.param(4, "reasons_max = 4\n", None, True, id="equal-default-policy-warns"),
    pytest.param(3, "reasons_max = 3\n", None, True, id="equal-own-policy-warns"),
    pytest.param(
        4,
        "reasons_max = 6\n",
        "[writeback] reasons_max: 6, but the CRM's reasons field gets the "
        "policy's strategy.reasons_top (4) reasons; delete reasons_max, or set "
        "strategy.reasons_top = 6 in the policy file",
        False,
        id="differs-from-default-policy-refused",
    ),
    pytest.param(
        3,
        "reasons_max = 4\n",  # the shipped value, kept by a bank whose policy says 3
        "[writeback] reasons_max: 4, but the CRM's reasons field gets the "
        "policy's strategy.reasons_top (3) reasons; delete reasons_max, or set "
        "strategy.reasons_top = 4 in the policy file",
        False,
        id="shipped-value-under-own-policy-refused",
    ),
]


@pytest.mark.parametrize(("top", "line", "refused", "warns"), REASONS_MAX_CASES)
def test_reasons_max_is_deprecated_and_never_silently_ignored(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    top: int,
    line: str,
    refused: str | None,
    warns: bool,
) -> None:
    """``[writeback] reasons_max`` was shipped in every mapping and never read: the count
    of reasons is the policy's ``strategy.reasons_top``. A bank upgrading with the old
    ``[writeback]`` copied into its file loads with one deprecation line while the value
    says what the policy does; a different value is refused at load, naming the key, both
    numbers and what to do, rather than a number configured and silently not honoured."""
    policy_text = resources.files("tiering_core").joinpath("default_policy.toml").read_text()
    assert "\nreasons_top = 4 " in policy_text
    policy = tmp_path / "policy.toml"
    policy.write_text(policy_text.replace("\nreasons_top = 4 ", f"\nreasons_top = {top} "))
    body = WRITEBACK.replace(TASKS_ON, TASKS_ON + line)
    body += f'[policy]\nfile = "{policy.name}"\n'
    assert body.count("reasons_max") == (1 if line else 0)  # the shipped text has none
    path = _config(tmp_path, body)
    caplog.set_level(logging.WARNING, logger="crmtier.config")
    if refused is not None:
        assert refusal(path) == f"{path}: {refused}"
        return
    load_config(path)
    said = [r.getMessage() for r in caplog.records if r.name == "crmtier.config"]
    if not warns:
        assert said == []
        return
    assert said == [
        f"{path}: [writeback] reasons_max: deprecated and not read: the "
        f"CRM's reasons field gets the policy's strategy.reasons_top ({top}) reasons, as "
        "this value says; delete reasons_max"
    ]
