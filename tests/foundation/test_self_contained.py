"""Every reference in the repository resolves inside it (issue 19 item 5).

A newcomer with only this repository must be able to follow each citation in code, tests and
docs. So no text may name a design or research document that is not here, every ``*.md``
path must be a file of the repository, and every target id ("R5", "W6", "S3", "P4") must be
an anchor of docs/targets.md and be cited from a file that points there.
"""

from __future__ import annotations

import io
import re
import subprocess
import tokenize
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()
TARGETS = ROOT / "docs" / "targets.md"

#: Documents that exist only outside the repository, and the ways code used to cite them.
FOREIGN = re.compile(
    r"DESIGN\.md|DESIGN §|crm_apis\.md|\bdomain\.md|reliability_perf\.md|aesthetics\.md"
    r"|shared/reference|\breference/\w+\.md|\breference §|\[M\] §"
)
MARKDOWN_NAME = re.compile(r"(?<![\w./:-])((?:\.\./|[\w-]+/)*[\w-]+\.md)\b")
TARGET_ID = re.compile(r"\b([RWSP][0-9]{1,2})\b")
ANCHOR = re.compile(r'<a id="([a-z][0-9]{1,2})"></a>')


@cache
def repository_paths() -> tuple[str, ...]:
    """Tracked and new (not ignored) files of the repository, relative to its root."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return tuple(rel for rel in listed.split("\0") if rel and (ROOT / rel).is_file())


@cache
def text_files() -> dict[str, str]:
    """The repository's files that decode as UTF-8 text, but for this test's own examples."""
    files = {}
    for rel in repository_paths():
        path = ROOT / rel
        if rel == THIS:
            continue
        try:
            files[rel] = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
    return files


def prose(rel: str, text: str) -> str:
    """The parts of a file people read as citations: comments and strings of Python (where
    docstrings live), and everything of any other text file."""
    if not rel.endswith(".py"):
        return text
    kept = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING):
            kept.append(token.string)
    return "\n".join(kept)


def defined_targets() -> set[str]:
    return {anchor.upper() for anchor in ANCHOR.findall(TARGETS.read_text(encoding="utf-8"))}


def foreign_references(files: dict[str, str]) -> list[str]:
    return [
        f"{rel}:{number}: {match.group(0)}"
        for rel, text in files.items()
        for number, line in enumerate(text.splitlines(), 1)
        for match in FOREIGN.finditer(line)
    ]


def missing_markdown(files: dict[str, str]) -> list[str]:
    """``*.md`` names that are not files of the repository: a path is resolved from the
    citing file's folder and from the root, a bare name may be any file of that name."""
    names = {Path(rel).name for rel in repository_paths()}

    def resolves(rel: str, name: str) -> bool:
        if "/" not in name:
            return name in names
        return ((ROOT / rel).parent / name).is_file() or (ROOT / name).is_file()

    return [
        f"{rel}:{number}: {name}"
        for rel, text in files.items()
        for number, line in enumerate(text.splitlines(), 1)
        for name in MARKDOWN_NAME.findall(line)
        if not resolves(rel, name)
    ]


def undefined_targets(files: dict[str, str], defined: set[str]) -> list[str]:
    """Target ids not anchored in docs/targets.md, or cited from a file that never says
    where they are defined."""
    problems = []
    for rel, text in files.items():
        if rel == "docs/targets.md":
            continue
        ids = sorted(set(TARGET_ID.findall(prose(rel, text))))
        unknown = [target for target in ids if target not in defined]
        if unknown:
            problems.append(f"{rel}: {', '.join(unknown)} not defined in docs/targets.md")
        elif ids and "targets.md" not in text:
            problems.append(f"{rel}: cites {', '.join(ids)} without pointing to docs/targets.md")
    return problems


def test_no_document_outside_the_repository_is_cited() -> None:
    assert foreign_references(text_files()) == []


def test_every_markdown_name_is_a_file_of_the_repository() -> None:
    assert missing_markdown(text_files()) == []


def test_every_target_id_is_defined_in_docs_targets() -> None:
    assert undefined_targets(text_files(), defined_targets()) == []


def test_targets_page_defines_the_ids_the_code_relies_on() -> None:
    expected = {f"R{n}" for n in range(1, 11)} | {f"W{n}" for n in range(1, 15)}
    expected |= {f"S{n}" for n in range(1, 8)} | {f"P{n}" for n in range(1, 6)}
    assert expected <= defined_targets()


@pytest.mark.parametrize(
    ("rel", "text", "finds"),
    [
        ("a.py", '"""Pause on quota (DESIGN §4, reference R5)."""\n', ["DESIGN §"]),
        ("a.py", "# see crm_apis.md §1.7\n", ["crm_apis.md"]),
        ("b.md", "Source: `domain.md` A1.3\n", ["domain.md"]),
        ("b.md", "(reference/domain.md, [M] §4.2)\n", ["reference/domain.md", "[M] §"]),
        ("c.toml", "# shared/reference/aesthetics.md\n", ["shared/reference", "aesthetics.md"]),
        ("a.py", "# verify on the raw body (reference §2.3)\n", ["reference §"]),
        ("b.md", "See docs/targets.md R5 and docs/policy.md.\n", []),
    ],
)
def test_foreign_references_are_found(rel: str, text: str, finds: list[str]) -> None:
    assert [found.split(": ", 1)[1] for found in foreign_references({rel: text})] == finds


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("see docs/targets.md R5\n", True),
        ("[targets](targets.md)\n", True),
        ("see docs/DESIGNS.md\n", False),
        ("see notes.md\n", False),
        ("see https://example.com/spec/page.md\n", True),
    ],
)
def test_markdown_names_must_resolve(text: str, ok: bool) -> None:
    assert (missing_markdown({"docs/x.md": text}) == []) is ok


@pytest.mark.parametrize(
    ("rel", "text", "ok"),
    [
        ("a.py", '"""Quota pause (docs/targets.md R5)."""\n', True),
        ("a.py", '"""Quota pause (R5)."""\n', False),
        ("a.py", '"""Quota pause (docs/targets.md R42)."""\n', False),
        ("a.py", "R5 = 1  # a name, not a citation: see docs/targets.md\n", True),
        ("a.py", "R5 = 1\n", True),
        ("b.md", "Met: P4 (see [targets](targets.md)).\n", True),
        ("b.md", "Met: P4.\n", False),
    ],
)
def test_target_ids_must_be_defined_and_pointed_to(rel: str, text: str, ok: bool) -> None:
    assert (undefined_targets({rel: text}, {"R5", "P4"}) == []) is ok
