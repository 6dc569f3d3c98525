"""The book's text: cross-references resolve to the chapter they name, chapters are numbered
as the table of contents orders them, and each chapter ends as the others do."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mvlib.glance import chapters as glance_chapters

ROOT = Path(__file__).resolve().parents[1]
# {doc}`text <target>` or {doc}`target`
DOC_ROLE = re.compile(r"\{doc\}`(?:([^`<]*?)\s*<([^`>]+)>|([^`<>]+))`")
TYPED = re.compile(r"\b[Cc]hapters?\s+\d+(?:\s*(?:,|and|to|–|-)\s*\d+)*")


def _chapters() -> list[str]:
    """The toc's chapters in order, as docnames relative to book/ (e.g. "03_ensemble")."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [c["file"].removeprefix("book/") for c in toc["chapters"] if c["file"][5:7].isdigit()]


CHAPTERS = _chapters()


def _texts() -> dict[str, str]:
    """{page: its prose and code}, every chapter notebook and the intro."""
    out = {"intro": (ROOT / "book" / "intro.md").read_text()}
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        out[path.stem] = "\n".join(
            c["source"] if isinstance(c["source"], str) else "".join(c["source"]) for c in cells
        )
    return out


TEXTS = _texts()


def test_toc_lists_the_numbered_chapters_in_order():
    assert CHAPTERS == sorted(CHAPTERS) and len(CHAPTERS) >= 9, CHAPTERS
    assert [int(c[:2]) for c in CHAPTERS] == list(range(1, len(CHAPTERS) + 1))


def _number(target: str) -> int:
    return CHAPTERS.index(target.strip().removeprefix("./")) + 1


@pytest.mark.parametrize("page", sorted(TEXTS))
def test_a_typed_chapter_number_names_the_chapter_its_link_goes_to(page):
    """ "chapter N" may only appear as the text of a {doc} link to the chapter the toc puts at
    N; a bare "chapter 4" (stale after a renumbering, or never linked) fails."""
    text = TEXTS[page]
    for m in DOC_ROLE.finditer(text):
        shown, target = m.group(1), m.group(2) or m.group(3)
        target = target.strip()
        if target in ("intro", "references", "appendix_provenance") or not target[:2].isdigit():
            continue
        assert target in CHAPTERS, f"{page}: {{doc}} to {target}, not in the toc"
        if shown:
            numbers = [int(n) for n in re.findall(r"\d+", shown)]
            assert numbers in ([], [_number(target)]), (
                f"{page}: link text {shown!r} to {target}, which is chapter {_number(target)}"
            )
    bare = TYPED.findall(DOC_ROLE.sub("", text))
    assert not bare, f"{page}: chapter numbers typed outside a {{doc}} link: {bare}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_title_carries_its_toc_number(chapter):
    text = TEXTS[chapter]
    title = re.search(r"^# (.+)$", text, re.M).group(1)
    assert title.startswith(f"{_number(chapter)}. "), title


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_ends_with_summary_practice_and_exercises(chapter):
    headings = re.findall(r"^## (.+)$", TEXTS[chapter], re.M)
    for wanted in ("Summary", "What this means in practice", "Exercises"):
        assert wanted in headings, f"{chapter}: no '## {wanted}' ({headings})"


def test_the_test_catches_a_stale_chapter_number():
    stale = "the controls of {doc}`chapter 4 <05_distillation>` and chapter 5 found"
    shown = DOC_ROLE.search(stale).group(1)
    assert re.findall(r"\d+", shown) == ["4"] and _number("05_distillation") == 5
    assert TYPED.findall(DOC_ROLE.sub("", stale)) == ["chapter 5"]


# Readings of the paper the book once got wrong, and what it states instead (whitespace folded).
MISREAD = {
    "04_gaussian": ["the setting the paper asks for"],  # N = 7kmd is our choice
    "03_ensemble": ["training their sum does not"],  # Message 4 is about matching the ensemble
    "09_real_data": ["abs(d.lo) < 100"],  # a check that could not fail
}
STATED = {
    "05_distillation": [r"at most $0.001\mu$"],  # Theorem 3's bound on D
    "06_self_distillation": ["full version", "self_distill_scratch"],  # Theorem 4's source
    "07_ntk": ["(figure6-messages)=", "③ for neural kernel methods, self-distillation"],
    "03_ensemble": ["{ref}`Figure 6's messages <figure6-messages>`"],
}


def _folded(page: str) -> str:
    return " ".join(TEXTS[page].split())


@pytest.mark.parametrize("page", sorted(MISREAD))
def test_a_misreading_of_the_paper_does_not_come_back(page):
    for phrase in MISREAD[page]:
        assert phrase not in _folded(page), f"{page}: {phrase!r}"


@pytest.mark.parametrize("page", sorted(STATED))
def test_the_paper_is_stated_as_it_is_written(page):
    for phrase in STATED[page]:
        assert phrase in _folded(page), f"{page}: {phrase!r} missing"


def _generated_prose() -> list[tuple[str, str]]:
    """(page, source) of every code cell that renders prose with ``Markdown(...)``."""
    out = []
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        for c in json.loads(path.read_text())["cells"]:
            src = c["source"] if isinstance(c["source"], str) else "".join(c["source"])
            if c["cell_type"] == "code" and "Markdown(" in src:
                out.append((path.stem, src))
    return out


def test_generated_prose_writes_no_dollar_math():
    # myst-nb leaves dollar math in a Markdown output unparsed: the page would show "$k$"
    found = [page for page, src in _generated_prose() if re.search(r"\$[^$\s{][^$]*\$", src)]
    assert _generated_prose() and not found, found


@pytest.mark.parametrize("chapter", glance_chapters())
def test_a_chapter_opens_with_its_verdict_box(chapter):
    """The box sits right under the title (after the hidden install cell), renders MyST (its
    {doc} link), and reads the chapter's own rows of the glance table, so box and page agree."""
    cells = json.loads((ROOT / "book" / f"{chapter}.ipynb").read_text())["cells"]
    box = next(i for i, c in enumerate(cells) if "glance.verdict_box" in "".join(c["source"]))
    title = "".join(cells[0]["source"]).strip()
    assert box == 2 and title.startswith("# ") and "\n" not in title, (box, title[:80])
    assert f'verdict_box("{chapter}")' in "".join(cells[box]["source"])
    assert cells[box]["metadata"]["mystnb"] == {"markdown_format": "myst"}
    assert "remove-input" in cells[box]["metadata"]["tags"]


# ~20 lines: a cell configures, calls, plots, explains or checks; the hidden install cell aside
LONGEST_CELL = 20


@pytest.mark.parametrize("page", sorted(p.stem for p in (ROOT / "book").glob("*.ipynb")))
def test_no_code_cell_is_longer_than_about_twenty_lines(page):
    cells = json.loads((ROOT / "book" / f"{page}.ipynb").read_text())["cells"]
    long = [
        (i, len("".join(c["source"]).splitlines()))
        for i, c in enumerate(cells)
        if c["cell_type"] == "code"
        and "remove-cell" not in c["metadata"].get("tags", [])
        and len("".join(c["source"]).splitlines()) > LONGEST_CELL
    ]
    assert not long, f"{page}: cells (index, lines) over {LONGEST_CELL} lines: {long}"
