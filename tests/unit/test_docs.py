"""The documentation stays honest cheaply: the README stays a newcomer's page (short, showing the two commands CI
and the pipeline run, listing every page of docs/), and every relative link in the README, docs/ and benchmarks/
reaches an existing file and, when it names one, an existing heading (GitHub's anchor rules)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
README_MAX_LINES = 250
PAGES = sorted([README, ROOT / "benchmarks" / "README.md", *(ROOT / "docs").glob("*.md")])

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"`+[^`]*`+")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a '# comment' in a bash block is no heading, a link there no link)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: link text kept, lower case, everything but letters, digits, '_', '-' and
    spaces dropped, each space a '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every anchor a page offers; repeated headings get -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    links = []
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(INLINE_CODE.sub("", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
                links.append(target)
    return links


def test_the_readme_fits_a_newcomer():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines (at most {README_MAX_LINES}): move reference material to docs/"
    )


def test_the_readme_shows_the_two_commands():
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)
    commands = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    assert "make synth" in commands and "make test" in commands, "README.md must show `make synth` and `make test`"


def test_every_docs_page_is_listed_in_the_readme():
    text = README.read_text(encoding="utf-8")
    section = text.split("## Where to go next", 1)[1].split("\n## ", 1)[0]
    listed = {link.partition("#")[0] for line in section.splitlines() for link in LINK.findall(line)}
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert not pages - listed, f"add a row to the README's 'Where to go next' table for: {sorted(pages - listed)}"


def test_pages_are_found():
    names = {p.relative_to(ROOT).as_posix() for p in PAGES}
    assert {"README.md", "docs/configuration.md", "docs/security.md", "benchmarks/README.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_reach_a_file_and_heading(page: Path):
    broken = []
    for link in relative_links(page):
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading with anchor #{anchor} in {target.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Deploying, step by step", "deploying-step-by-step"),
        ("Backup for the created tables (`producer/backup.py`)", "backup-for-the-created-tables-producerbackuppy"),
        ("`ddb-lake preflight`", "ddb-lake-preflight"),
        ("Who can read, write and delete what", "who-can-read-write-and-delete-what"),
        ("Consumer stage (account B): `consumer/`", "consumer-stage-account-b-consumer"),
    ],
)
def test_slug_follows_github(heading: str, anchor: str):
    assert slug(heading) == anchor


def test_a_broken_link_is_caught(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](#nope) `[code](missing.md)`\n\n```\n[fenced](gone.md)\n```\n")
    assert relative_links(page) == ["#title", "#nope"]
    assert anchors(page) == {"title"}
