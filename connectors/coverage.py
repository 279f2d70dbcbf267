"""Does the configuration cover everything the policy can produce?

An admin's worst failure is a silent one: doctor says "ready", sync exits 0, and part of
the work never happens because a key in ``[writeback]`` or ``[mapping]`` is misspelt or
missing. So every key is checked when the config loads, against the canonical fields and
the active policy:

* ``[mapping.fields]`` keys must be canonical input paths (``assets.deposits``);
* ``[writeback.fields]`` keys must be write-back outputs, and every output is mapped or
  switched off (``aml_risk = false``), except the optional ones (``explanation``), which
  are written only when mapped;
* a mapped ``explanation`` must fit the CRM's text field (``explanation_max_chars``), and
  a mapped ``reasons`` its long text field (the policy's ``strategy.reasons_max_chars``),
  or every long enough write of it would fail, or be cut where the audit trail keeps
  it whole;
* ``reasons_max`` (deprecated, never read: the policy's ``strategy.reasons_top`` is the
  number of reasons written) must say what the policy does, else it is refused;
* with campaign memberships on, every campaign of the policy is mapped to a CRM campaign
  or switched off (``survey_mass = false``), and no other key is given but one that adds
  no one (``key = { id = "...", add = false }``): a campaign the policy no longer has,
  whose members crmtier made are removed by its id (``sync.write_readiness`` refuses the
  start while the store holds such members in a campaign without its id);
* with tasks on, the queue of every enabled task rule is mapped to a CRM owner or queue
  or switched off (then those rules' queue tasks are not written), and no other key is
  given.

Each problem is one line naming the table and key, with a did-you-mean where one is close.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from connectors.config_text import did_you_mean
from connectors.mapping import (
    CANONICAL_TYPES,
    OPTIONAL_WRITEBACK_FIELDS,
    WRITEBACK_FIELDS,
    FieldMapping,
    WritebackConfig,
)
from tiering_core.outputs import LONG_TEXT_LENGTH
from tiering_core.policy import Policy


def mapping_problems(mapping: FieldMapping) -> list[str]:
    """Keys of ``[mapping.fields]`` that are not canonical input paths."""
    return [
        f"[mapping.fields] {path}: not a canonical field{did_you_mean(path, CANONICAL_TYPES)}"
        for path in mapping.fields
        if path not in CANONICAL_TYPES
    ]


def policy_queues(policy: Policy) -> set[str]:
    """The queues the policy's enabled task rules can give a task to, and the managers'
    queue that receives advisor-coverage proposals (``coverage.queue``)."""
    rules = policy.strategy.tasks
    return {
        rule.queue for name in type(rules).model_fields if (rule := getattr(rules, name)).enabled
    } | {policy.coverage.queue}


#: How much text the single-line text field ``explanation`` is written into holds, by CRM:
#: Salesforce Text, 255 ("Custom Field Types", Salesforce Help; the metadata fix creates a
#: Text(255)); Zoho CRM single line, 255 ("Field Types: Data Types and Length Limits",
#: Zoho CRM API docs); FXiaoke 单行文本, 100 (字段类型说明, help.fxiaoke.com).
EXPLANATION_LIMITS = {"salesforce": 255, "zoho": 255, "fxiaoke": 100}
#: How much text the long text field ``reasons`` is written into holds, by CRM: Salesforce,
#: the Long Text Area the metadata fix creates (``LONG_TEXT_LENGTH``; such a field may hold
#: 256 to 131,072: "Custom Field Types", Salesforce Help); Zoho CRM, the same declared
#: long text (its multi-line field's length is the org's, read from the field metadata by
#: the writer, which refuses longer text); FXiaoke 多行文本, 2,000 (字段定义和类型,
#: help.fxiaoke.com: "字段值最多2000个字符").
REASONS_LIMITS = {"salesforce": LONG_TEXT_LENGTH, "zoho": LONG_TEXT_LENGTH, "fxiaoke": 2000}


def writeback_problems(
    writeback: WritebackConfig, policy: Policy, crm: str | None = None
) -> list[str]:
    """Every ``[writeback]`` key that is unknown, every target the policy can produce that
    is neither mapped nor switched off, and (given the ``crm``) an ``explanation`` or
    ``reasons`` longer than its field holds."""
    problems = _table_problems(
        writeback, "fields", WRITEBACK_FIELDS, "field", "output", OPTIONAL_WRITEBACK_FIELDS
    )
    problems += _length_problems(
        writeback,
        crm,
        ("explanation", "[writeback]", "explanation_max_chars", writeback.explanation_max_chars),
        ("reasons", "[policy]", "strategy.reasons_max_chars", policy.strategy.reasons_max_chars),
    )
    top = policy.strategy.reasons_top
    if writeback.reasons_max is not None and writeback.reasons_max != top:
        problems.append(
            f"[writeback] reasons_max: {writeback.reasons_max}, but the CRM's reasons field "
            f"gets the policy's strategy.reasons_top ({top}) reasons; delete reasons_max, or "
            f"set strategy.reasons_top = {writeback.reasons_max} in the policy file"
        )
    if writeback.campaign_memberships:
        problems += _table_problems(
            writeback,
            "campaigns",
            policy.strategy.campaigns,
            "campaign",
            "policy's campaign",
            writeback.remove_only,
        )
    if writeback.tasks:
        problems += _table_problems(
            writeback, "queues", policy_queues(policy), "queue", "policy's task queue"
        )
    return problems


def _length_problems(
    writeback: WritebackConfig, crm: str | None, *caps: tuple[str, str, str, int]
) -> list[str]:
    """Each ``(output, table, key, value)`` whose output is mapped and whose cap is longer
    than the ``crm``'s field of its kind holds: one line naming the key, its value, the
    field and its length. The text is never cut to fit: that would write less than the
    audit trail records as decided."""
    out = []
    for output, table, key, value in caps:
        limits = EXPLANATION_LIMITS if output == "explanation" else REASONS_LIMITS
        limit = limits.get(crm or "")
        field = writeback.fields.get(output)
        if field and limit and value > limit:
            where = " in the policy file" if table == "[policy]" else ""
            out.append(
                f"{table} {key}: {value} does not fit the {crm} field {output} is written "
                f"to ({field}, at most {limit} characters); set {key} = {limit} or less{where}"
            )
    return out


def writeback_notices(writeback: WritebackConfig, policy: Policy) -> list[str]:
    """Keys that load but should go: ``reasons_max`` agreeing with the policy (an older
    shipped mapping copied whole into ``crmtier.toml``), which ``writeback_problems``
    refuses when it disagrees."""
    if writeback.reasons_max != policy.strategy.reasons_top:  # absent, or refused
        return []
    return [
        "[writeback] reasons_max: deprecated and not read: the CRM's reasons field gets the "
        f"policy's strategy.reasons_top ({policy.strategy.reasons_top}) reasons, as this "
        "value says; delete reasons_max"
    ]


def _table_problems(
    writeback: WritebackConfig,
    table: str,
    wanted: Iterable[str],
    noun: str,
    owner: str,
    optional: Iterable[str] = (),
) -> list[str]:
    """Keys given that are neither ``wanted`` nor ``optional``; ``wanted`` keys not given."""
    known = set(wanted) | set(optional)
    wanted = set(wanted)
    mapped: Mapping[str, str] = getattr(writeback, table)
    given = set(mapped) | set(writeback.switched_off_keys(table))
    unknown = [
        f"[writeback.{table}] {key}: unknown {noun}{did_you_mean(key, known)}"
        for key in sorted(given - known)
    ]
    missing = [
        f"[writeback.{table}] {key}: missing; every {owner} needs a CRM target: map it, "
        f"or write {key} = false to switch it off"
        for key in sorted(wanted - given)
    ]
    return unknown + missing
