"""A follow-up task's text longer than its Zoho Tasks field (``Subject``, single-line text,
255 characters; ``Description``, multi-line text, 2,000 in its small form) is cut to fit,
so the task still reaches its owner rather than being refused whole, and the cut is said:
one warning a field, naming the rule and the length, never the text. As on Salesforce
and FXiaoke (``connectors.task_text``); lengths in UTF-16 code units (an emoji is two)."""

from __future__ import annotations

import logging

import pytest

from connectors.contract import WritePlan
from connectors.zoho.mapping import TASK_TEXT_LIMITS
from tests.zoho.test_task_writes import _task

SUBJECT = TASK_TEXT_LIMITS["subject"][1]

#: (subject, description, the subject written, warnings the write logs)
CASES = [
    pytest.param("s" * SUBJECT, "d" * 2000, "s" * SUBJECT, [], id="zoho-task-filling-quiet"),
    pytest.param(
        "客户" * 200,
        "d",
        ("客户" * 200)[:SUBJECT],
        ["1 Task(s) of rule(s) tier_upgrade: Subject cut to the field's 255 characters"],
        id="zoho-task-chinese-subject-cut-reported",
    ),
    pytest.param(
        "😀" * 200,
        "d" * 2001,
        "😀" * (SUBJECT // 2),
        [
            "1 Task(s) of rule(s) tier_upgrade: Subject cut to the field's 255 characters",
            "1 Task(s) of rule(s) tier_upgrade: Description cut to the field's 2000 characters",
        ],
        id="zoho-task-emoji-subject-and-description-cut-reported",
    ),
]


@pytest.mark.parametrize(("subject", "description", "written", "warnings"), CASES)
def test_a_long_task_is_cut_to_the_zoho_fields_and_said(
    zoho, zconnect, caplog, subject: str, description: str, written: str, warnings: list[str]
) -> None:
    connector = zconnect(zoho)
    (cid,) = zoho.customer_ids()[:1]
    upsert = _task(cid, "k-long", subject=subject)
    upsert = type(upsert)(
        upsert.customer_id, upsert.task.model_copy(update={"description": description})
    )
    caplog.set_level(logging.WARNING, logger="connectors.zoho.writes")
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(upsert,))))
    (made,) = zoho.tasks()
    assert made.subject == written
    said = [r.getMessage() for r in caplog.records if r.name == "connectors.zoho.writes"]
    assert said == warnings
    assert all(subject not in line for line in said)
