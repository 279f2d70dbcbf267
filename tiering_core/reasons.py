"""The reason-code catalogue: every code a rule can give, with its bilingual text.

Codes are stable identifiers (a CRM report or a compliance query may filter on them), so a
code is never renamed or reused; docs/reason-codes.md lists them. The weight orders reasons
for the CRM's short "top reasons" field: decisive facts (overrides, the tier's own
threshold) outrank contributing ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any

from tiering_core.reason_spec import ReasonSpec
from tiering_core.reasons_customer import CUSTOMER
from tiering_core.reasons_risk import RISK

#: Every code, relationship codes first, then risk codes.
CATALOGUE: dict[str, ReasonSpec] = {spec.code: spec for spec in (*CUSTOMER, *RISK)}


def format_value(value: Any) -> str:
    """How an observed value or threshold reads in a reason's text."""
    cls = value.__class__  # the two usual types first, as the general case below has them
    if cls is int:
        return f"{value:,}"
    if cls is float:
        if value.is_integer():
            return f"{int(value):,}"
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int | float):
        return f"{int(value):,}"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return "" if value is None else str(value)


def format_values(values: list[Any]) -> list[str]:
    """``format_value`` of each value: a column of numbers (counts, amounts whole and
    fractional) in C-level passes. Two decimals with their zeros and point stripped is
    ``format_value``'s text of a fractional number and of a whole one alike, where a
    float holds the number exactly (below 2**53), but for -0.0."""
    classes = set(map(type, values))
    if classes == {int}:
        return list(map("{:,}".format, values))
    if values and classes <= {int, float} and max(map(abs, values)) < _EXACT:
        texts = [t.rstrip("0").rstrip(".") for t in map("{:,.2f}".format, values)]
        if "-0" not in texts:  # else maybe a -0.0, which is whole: format_value's "0"
            return texts
    return list(map(format_value, values))


_EXACT = 2**53


class ReasonText(Mapping[str, str]):
    """A reason's text by language (``en``, ``zh``), rendered when first read, then kept.

    Reasons are codes until a person reads them: a CRM's reasons field shows the top few
    in one language, a task description those of its dimensions, and the sync reads no
    other text (it keeps reason codes), so rendering every text in both languages up front
    would be most of the cost of making a reason. ``crmtier tier`` writes them all, each
    rendered once; a reason that carries no per-customer value is one shared text for the
    whole batch (``engine``), so it is rendered once a batch."""

    __slots__ = ("_spec", "_text", "_threshold", "_value")

    def __init__(self, spec: ReasonSpec, value: Any, threshold: Any) -> None:
        self._spec, self._value, self._threshold = spec, value, threshold
        self._text: dict[str, str] | None = None

    def __getitem__(self, language: str) -> str:
        return self.rendered()[language]

    def rendered(self) -> dict[str, str]:
        """Both languages, as a dict (what a model is validated from; not to be changed)."""
        text = self._text
        if text is None:
            fields = {
                "value": format_value(self._value),
                "threshold": format_value(self._threshold),
            }
            spec = self._spec
            text = self._text = {"en": spec.en.format(**fields), "zh": spec.zh.format(**fields)}
        return text

    def in_language(self, language: str) -> str:
        """One language's text, without rendering the other (the CRM's reasons field
        shows one): from the rendered texts if they are made, else formatted alone."""
        if self._text is not None:
            return self._text[language]
        return text_in(self._spec, self._value, self._threshold, language)

    def __iter__(self) -> Iterator[str]:
        return iter(("en", "zh"))

    def __len__(self) -> int:
        return 2

    def __repr__(self) -> str:
        return repr(dict(self))


def text_in(spec: ReasonSpec, value: Any, threshold: Any, language: str) -> str:
    """A reason's text in one language (``en``, ``zh``), formatted alone."""
    template = spec.zh if language == "zh" else spec.en
    return template.format(value=format_value(value), threshold=format_value(threshold))


def line_template(spec: ReasonSpec, language: str) -> str:
    """``reason_line`` of a reason of ``spec`` as a ``str.format`` template over its
    pre-formatted ``value`` and ``threshold`` (``format_value``)."""
    if language == "both":
        text = f"{spec.en} / {spec.zh}"
    else:
        text = spec.zh if language == "zh" else spec.en
    return spec.code.replace("{", "{{").replace("}", "}}") + " " + text


def lines_of(spec: ReasonSpec, language: str, threshold: Any, values: list[Any]) -> list[str]:
    """``reason_line`` of the reason ``spec`` gives with this threshold and each value:
    the template filled with the threshold once and cut where a value goes, each line its
    value's text joining the pieces (a C-level pass for a column of values; the CRM's
    reasons field of a batch, ``row_reasons.ReasonCells.lines``)."""
    template, limit = line_template(spec, language), format_value(threshold)
    pieces = template.format(value=_CUT, threshold=limit).split(_CUT)
    if len(pieces) != template.count("{value}") + 1:  # the threshold's text holds the cut
        return [template.format(value=v, threshold=limit) for v in format_values(values)]
    return list(map(str.join, format_values(values), repeat(pieces)))


#: Where a value goes in a filled template (no reason's text holds it).
_CUT = "\x00"


def make_reason(
    code: str,
    value: Any = None,
    threshold: Any = None,
    weight: float | None = None,
    text: ReasonText | None = None,
) -> dict[str, Any]:
    """A ``Reason`` as the plain data the engine validates into an ``Assessment`` in one
    go (validating one nested structure is far cheaper than constructing each model).
    ``text``: one already made for the same code, value and threshold (shared)."""
    spec = CATALOGUE[code]
    return {
        "code": code,
        "dimension": spec.dimension,
        "factor": spec.factor,
        "value": value,
        "threshold": threshold,
        "weight": spec.weight if weight is None else round(weight, 4),
        "text": ReasonText(spec, value, threshold) if text is None else text,
    }


def top_reasons(
    reasons: Sequence[dict[str, Any]], n: int, *, include_aml: bool = False
) -> list[dict[str, Any]]:
    """The ``n`` heaviest reasons, ties broken by code: the same input always gives the same
    list. AML reasons are never among them (unless ``include_aml``: the EDD task for the
    compliance queue): the CRM's reasons field is visible to sales staff and the AML rating
    is confidential (PBOC 保密原则)."""
    visible = reasons if include_aml else [r for r in reasons if r["dimension"] != "aml"]
    # by code, then (stably, so ties stay by code) heaviest first: two C-level keys
    ordered = sorted(visible, key=_CODE)
    ordered.sort(key=_WEIGHT, reverse=True)
    return ordered[:n]


_CODE = itemgetter("code")
_WEIGHT = itemgetter("weight")


def reason_line(reason: dict[str, Any], language: str) -> str:
    """One reason as the CRM's reasons field shows it: ``CODE text`` in ``language``
    (``en``, ``zh`` or ``both``); ``reasons_field`` joins a customer's top few."""
    text = reason["text"]
    if language == "both":
        if text.__class__ is ReasonText:
            text = text.rendered()  # one call instead of one per language read
        line = f"{text['en']} / {text['zh']}"
    elif text.__class__ is ReasonText:
        line = text.in_language(language)
    else:
        line = text[language]
    return f"{reason['code']} {line}"
