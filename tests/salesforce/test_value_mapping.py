"""Write-back values survive the round trip through Salesforce field types unchanged, so
an unchanged tier never looks changed (0 writes when nothing changed)."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from connectors.contract import FieldUpdate
from connectors.mapping import WritebackConfig
from connectors.salesforce.mapping import from_crm_value
from connectors.salesforce.writes import PlanWriter
from tiering_core import outputs
from tiering_core.outputs import Output


def _sent(output: str, value: object) -> object:
    """What the writer sends for ``value``: ``writes.PlanWriter``'s write body for an
    update of ``output`` alone (an encoder chosen per output when the writer is made)."""
    writeback = WritebackConfig.model_validate({"fields": {output: "Out__c"}})
    writer = PlanWriter(None, None, None, writeback, None)  # type: ignore[arg-type]
    return writer._crm_fields(FieldUpdate("001", {output: value}))["Out__c"]


@pytest.mark.parametrize(
    ("output", "value", "crm", "back"),
    [
        ("value_tier", "wealth", "wealth", "wealth"),
        ("value_score", 71.456, 71.46, 71.46),
        ("value_score", 80, 80.0, 80.0),
        ("edd_required", True, True, True),
        ("next_review", date(2027, 3, 1), "2027-03-01", date(2027, 3, 1)),
        ("next_review", datetime(2027, 3, 1, 23, 59), "2027-03-01", date(2027, 3, 1)),
        (
            "reasons",
            "VAL_AUM AUM 7,000,000; AML_PEP PEP",
            "VAL_AUM AUM 7,000,000; AML_PEP PEP",
            "VAL_AUM AUM 7,000,000; AML_PEP PEP",
        ),
        ("reasons", ("VAL_AUM", "AML_PEP"), "VAL_AUM\nAML_PEP", "VAL_AUM\nAML_PEP"),
        (
            "reasons",
            [{"code": "AML_PEP", "text": {"en": "Politically exposed", "zh": "政治公众人物"}}],
            "AML_PEP: Politically exposed",
            "AML_PEP: Politically exposed",
        ),
        ("reasons", (), None, None),
        ("status", None, None, None),
    ],
)
def test_round_trip(output, value, crm, back):
    assert _sent(output, value) == crm
    assert from_crm_value(output, crm) == back
    assert from_crm_value(output, _sent(output, value)) == back


@pytest.mark.parametrize(
    ("output", "raw"), [("next_review", "soon"), ("value_score", "high"), ("reasons", "")]
)
def test_unreadable_crm_values_read_as_missing(output, raw):
    assert from_crm_value(output, raw) is None


def test_an_output_declared_anew_is_encoded_by_what_it_is_now(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Nothing is cached process-wide: a test (or plugin) that declares an output again gets
    its new encoding, not the one an earlier declaration left behind."""
    monkeypatch.setitem(outputs.BY_NAME, "tier_note", Output("tier_note", outputs.TEXT, "Note"))
    assert _sent("tier_note", "2.5") == "2.5"
    monkeypatch.setitem(outputs.BY_NAME, "tier_note", Output("tier_note", outputs.SCORE, "N"))
    assert _sent("tier_note", "2.5") == 2.5


def test_a_writer_encodes_by_the_encoders_it_chose_when_made(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``PlanWriter`` picks each mapped output's encoding once; the values of an update
    go through those (what ``_sent`` reads)."""
    writeback = WritebackConfig.model_validate(
        {"fields": {"value_score": "Score__c", "next_review": "Review__c"}}
    )
    writer = PlanWriter(None, None, None, writeback, None)  # type: ignore[arg-type]
    monkeypatch.setattr("connectors.salesforce.writes.encoder", None)  # no per-value choice
    update = FieldUpdate("001", {"value_score": 71.456, "next_review": None, "other": 1})
    assert writer._crm_fields(update) == {"Score__c": 71.46, "Review__c": None}


def test_a_writer_given_a_new_configuration_encodes_its_outputs() -> None:
    """An output mapped after the writer was made (the connector's ``writeback`` set anew)
    is encoded by its own type, not looked up among the first configuration's outputs."""
    first = WritebackConfig.model_validate({"fields": {"value_score": "Score__c"}})
    writer = PlanWriter(None, None, None, first, None)  # type: ignore[arg-type]
    writer.writeback = first.model_copy(
        update={"fields": {"value_score": "Score__c", "next_review": "Review__c"}}
    )
    update = FieldUpdate("001", {"value_score": 71.456, "next_review": date(2027, 1, 4)})
    assert writer._crm_fields(update) == {"Score__c": 71.46, "Review__c": "2027-01-04"}
