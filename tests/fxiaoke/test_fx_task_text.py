"""A follow-up task's text longer than its FXiaoke field (subject: the 主属性 ``name``, 单行文本,
100 characters; description: 多行文本, 2,000) is cut to fit, so the task still reaches its
owner rather than being refused whole, and the cut is said: one warning a field, naming
the rule and the length, never the text. Lengths are UTF-16 code units (an emoji is two)."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from connectors.contract import WritePlan
from connectors.sandbox.fxiaoke import FxiaokeSandbox
from connectors.task_text import fitted
from tests.fxiaoke.fx_helpers import Connect
from tests.fxiaoke.test_fx_tasks import task

#: (subject, description, the subject written, warnings the write logs)
CASES = [
    pytest.param("s" * 100, "d" * 2000, "s" * 100, [], id="fx-task-filling-its-fields-quiet"),
    pytest.param(
        "客户" * 60,
        "d",
        "客户" * 50,
        ["1 Task(s) of rule(s) rm_call: name cut to the field's 100 characters"],
        id="fx-task-chinese-subject-cut-reported",
    ),
    pytest.param(
        "😀" * 51,
        "d" * 2001,
        "😀" * 50,
        [
            "1 Task(s) of rule(s) rm_call: name cut to the field's 100 characters",
            "1 Task(s) of rule(s) rm_call: field_description__c cut to the field's 2000 characters",
        ],
        id="fx-task-emoji-subject-and-description-cut-reported",
    ),
]


@pytest.mark.parametrize(("subject", "description", "written", "warnings"), CASES)
def test_a_long_task_is_cut_to_the_fxiaoke_fields_and_said(
    sandbox: FxiaokeSandbox,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    subject: str,
    description: str,
    written: str,
    warnings: list[str],
) -> None:
    connector = connect(sandbox)
    upsert = task(1)
    action = upsert.task.model_copy(update={"subject": subject, "description": description})
    upsert = replace(upsert, task=action)
    caplog.set_level(logging.WARNING, logger="connectors.fxiaoke.writes")
    assert all(r.ok for r in connector.apply(WritePlan(tasks=(upsert,))))
    (made,) = sandbox.tasks()
    assert made.subject == written
    said = [r.getMessage() for r in caplog.records if r.name == "connectors.fxiaoke.writes"]
    assert said == warnings
    assert all(subject not in line for line in said)


#: (text, UTF-16 code units the field holds, what fits)
FITTED = [
    pytest.param("abc", 3, "abc", id="fits-whole"),
    pytest.param("abcd", 3, "abc", id="ascii-cut"),
    pytest.param("😀😀", 3, "😀", id="emoji-never-split"),
    pytest.param("a𠮟", 2, "a", id="cjk-extension-b-two-units"),
]


@pytest.mark.parametrize(("text", "limit", "fits"), FITTED)
def test_fitted_counts_utf16_code_units(text: str, limit: int, fits: str) -> None:
    assert fitted(text, limit) == fits
