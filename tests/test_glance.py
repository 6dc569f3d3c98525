"""mvlib.glance: the rule from verdicts to a status, the page and the chapters' boxes agreeing,
and the page following the sweeps it reads."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mvlib import glance, maps
from mvlib.claims import EQUIVALENT, FAILS, HOLDS, UNRESOLVED, Claim

ROOT = Path(__file__).resolve().parents[1]
GAIN = Claim("a - b", "a", "b")
TIGHT = np.array([0.001, -0.001, 0.0, 0.002, -0.002])  # equivalent to zero within 0.02
NOISY = np.array([0.2, -0.2, 0.1, -0.15, 0.05])  # an interval that holds 0 and is wide


def sweep(values: dict, **cols) -> pd.DataFrame:
    """A sweep's rows: ``{method: per-seed single-view accuracies}`` at the maps' centre."""
    rows = [
        {"method": m, "seed": i, "single_view": v, "k": 10, "mu": 0.1, **cols}
        for m, vs in values.items()
        for i, v in enumerate(vs)
    ]
    return pd.DataFrame(rows)


def row(**kw) -> glance.Row:
    return glance.Row("test row", "03_ensemble", kw.pop("claim", GAIN), "s", "q", "syn", **kw)


def status(frame, **kw) -> str:
    return glance.read(row(**kw), frame, "syn")["status"]


B = np.full(5, 0.6)


@pytest.mark.parametrize(
    "a, expected",
    [
        (B + 0.1 + TIGHT, HOLDS),
        (B + TIGHT, EQUIVALENT),
        (B - 0.1 + TIGHT, FAILS),
        (B + NOISY, UNRESOLVED),
    ],
)
def test_a_row_of_one_claim_takes_its_verdict(a, expected):
    assert status(sweep({"a": a, "b": B})) == expected


def test_a_gain_in_another_form_only_holds_only_in_that_form():
    paper = sweep({"a": B + TIGHT, "b": B}, kd="eq43")  # eq. 4.3: no gain
    hinton = sweep({"a": B + 0.1 + TIGHT, "b": B}, kd="hinton")
    both = pd.concat([paper, hinton], ignore_index=True)
    forms = ("kd", ("eq43", "hinton"))
    assert status(both, forms=forms) == glance.STATED_FORM
    got = glance.read(row(forms=forms), both, "syn")
    assert "eq. (4.3): +0.000" in got["interval"] and "Hinton's: +0.100" in got["interval"]
    # the paper's form holding is "holds", whatever the other does
    swapped = both.assign(kd=both.kd.map({"eq43": "hinton", "hinton": "eq43"}))
    assert status(swapped, forms=forms) == HOLDS


def test_a_level_reached_without_its_mechanism_says_so():
    level = Claim("a >= 3/4", "a", level=0.75)
    mechanism = (Claim("a - continuation", "a", "cont"),)
    a = np.full(5, 0.85) + TIGHT
    kw = dict(claim=level, rule="mechanism", also=mechanism)
    assert status(sweep({"a": a, "cont": a + TIGHT[::-1]}), **kw) == glance.WITHOUT_MECHANISM
    assert status(sweep({"a": a, "cont": a - 0.1}), **kw) == HOLDS
    assert status(sweep({"a": a - 0.2, "cont": a - 0.3}), **kw) == FAILS  # below 3/4 anyway
    assert status(sweep({"a": a}), **kw) == HOLDS  # a mechanism not measured: the level's own


def test_every_status_is_reachable_and_the_other_rules_read_the_paper():
    assert set(glance.STATUSES) == {
        HOLDS,
        glance.STATED_FORM,
        glance.WITHOUT_MECHANISM,
        EQUIVALENT,
        FAILS,
        UNRESOLVED,
    }
    assert glance.point_status("no_gain", HOLDS) == FAILS  # a kernel student that gains
    assert glance.point_status("no_gain", EQUIVALENT) == HOLDS
    assert glance.point_status("not_below", EQUIVALENT) == HOLDS
    assert glance.point_status("not_below", FAILS) == FAILS
    assert glance.point_status("band", UNRESOLVED, [HOLDS, FAILS]) == FAILS
    assert glance.point_status("band", UNRESOLVED, [HOLDS, HOLDS]) == HOLDS
    with pytest.raises(ValueError, match="rule"):
        glance.point_status("vibes", HOLDS)


def test_where_it_holds_lists_the_grid_points_and_a_missing_centre_is_an_error():
    near = sweep({"a": B + 0.1 + TIGHT, "b": B})
    far = sweep({"a": B + TIGHT, "b": B}, k=12)
    got = glance.read(row(), pd.concat([near, far], ignore_index=True), "syn")
    assert got["status"] == HOLDS and got["where"] == "1 of 2: k = 10"
    with pytest.raises(ValueError, match="'syn'"):
        glance.read(row(), pd.concat([far, far.assign(k=14)], ignore_index=True), "syn")


def test_a_sweep_without_the_claims_methods_is_not_measured():
    got = glance.read(row(), sweep({"a": B}), "syn")
    assert got["status"] == UNRESOLVED and got["interval"] == "not measured in syn"


# --- the shipped table, the page and the boxes -------------------------------------------------


@pytest.fixture(scope="module")
def frame():
    return glance.table()


def test_the_table_has_one_row_per_declared_claim(frame):
    assert list(frame.claim) == [r.label for r in glance.ROWS] and frame.claim.is_unique
    assert set(frame.status) <= set(glance.STATUSES)
    assert {"statement", "quantity", "interval", "where", "k30", "chapter"} <= set(frame)


@pytest.mark.parametrize("chapter", sorted(set(glance.chapters()) - {glance.SETUP, glance.MAPS}))
def test_a_chapters_box_says_what_the_table_says(frame, chapter):
    box = glance.verdict_box(chapter, live="this run: +0.1", frame=frame)
    lines = box.split("\n")
    assert len(lines) == 3 and "this run: +0.1" in lines[2] and "<glance>" in lines[2]
    mine = frame[frame.chapter == chapter]
    r = mine[mine.claim == glance.HEADLINE.get(chapter, mine.claim.iloc[0])].iloc[0]
    assert r.statement in lines[0]
    assert f"**Status: {r.status}.**" in lines[1] and r.interval in lines[1]
    assert box == glance.verdict_box(chapter, live="this run: +0.1")  # from table() itself
    assert "$" not in box


def test_a_chapter_without_a_claim_is_refused(frame):
    with pytest.raises(KeyError, match="03_ensemble"):
        glance.verdict_box("10_nothing", frame=frame)


def test_the_setup_box_counts_every_status_of_the_table(frame):
    box = glance.verdict_box(glance.SETUP, live="x", frame=frame).split("\n")
    shipped = frame[~frame.interval.str.startswith("live in")]
    assert len(box) == 3 and f"{len(shipped)} rows read from shipped runs" in box[1]
    assert f"({len(frame) - len(shipped)} more rows are measured live" in box[1]
    for status, n in shipped.status.value_counts().items():
        assert f"{n} {status}" in box[1]
    moved = frame.assign(status=[FAILS] * len(frame))
    assert f"{len(shipped)} {FAILS}" in glance.verdict_box(glance.SETUP, frame=moved)


def test_the_maps_box_says_where_each_headline_claim_holds(frame):
    box = glance.verdict_box(glance.MAPS, frame=frame).split("\n")
    assert len(box) == 3 and "$" not in "".join(box)
    for label in glance.MAPS_ROWS:
        r = frame.set_index("claim").loc[label]
        assert f"{label}: **{r.status}** at the centre, holds at {r['where']}" in box[1]


def test_generated_markdown_has_no_dollar_math_and_links_each_chapter(frame):
    page = glance.page_markdown(frame)
    assert "$" not in page
    assert page.count("\n| ") == len(glance.ROWS)  # one table line per claim
    for chapter in {r.chapter for r in glance.ROWS}:
        assert f"chapter {int(chapter[:2])} <{chapter}>" in page


@pytest.fixture
def shipped_copy(tmp_path, monkeypatch):
    """The shipped sweeps copied to a folder that maps.shipped reads instead."""
    for path in maps.data_dir().glob("*.csv"):
        shutil.copy(path, tmp_path / path.name)
    monkeypatch.setattr(maps, "data_dir", lambda: tmp_path)
    return tmp_path


def test_the_page_follows_the_sweep_it_reads(frame, shipped_copy):
    path = shipped_copy / "regimes_data.csv"
    data = pd.read_csv(path)
    single = data[data.method == "single"].set_index(["k", "mu", "seed"]).single_view
    ens = data.method == "ensemble"
    keys = pd.MultiIndex.from_frame(data.loc[ens, ["k", "mu", "seed"]])
    data.loc[ens, "single_view"] = single.reindex(keys).to_numpy() - 0.2  # the ensemble loses
    data.to_csv(path, index=False)
    after = glance.table()
    label = "Theorem 2: ensemble − single"
    assert after.set_index("claim").status[label] == FAILS
    assert frame.set_index("claim").status[label] != FAILS  # the shipped ensemble does not lose
    assert glance.page_markdown(after) != glance.page_markdown(frame)
    assert "Status: fails." in glance.verdict_box("03_ensemble")


@pytest.mark.parametrize("missing", ["regimes_kd", "regimes_data", "gpu_paper_sd"])
def test_a_missing_sweep_is_named(shipped_copy, missing):
    (shipped_copy / f"{missing}.csv").unlink()
    with pytest.raises(FileNotFoundError, match=missing):
        glance.table()


def test_missing_kscaling_sweeps_are_named(shipped_copy):
    for path in shipped_copy.glob("kscaling_k*.csv"):
        path.unlink()
    with pytest.raises(FileNotFoundError, match="kscaling_k"):
        glance.table()


def test_the_page_renders_its_table_as_myst():
    """myst-nb renders Markdown outputs as CommonMark (no tables, no roles) unless the cell
    asks for MyST; the page's table cell does, and writes no dollar math."""
    cells = json.loads((ROOT / "book" / "glance.ipynb").read_text())["cells"]
    (table_cell,) = [c for c in cells if "Markdown(glance.page_markdown" in "".join(c["source"])]
    assert table_cell["metadata"]["mystnb"]["markdown_format"] == "myst"
    assert not re.search(r"\$[^$\s{][^$]*\$", "".join(table_cell["source"]))


def test_the_real_image_rows_follow_their_sweep(frame, shipped_copy):
    """Chapter 9's rows read images_book: an ensemble made to lose there fails its row."""
    path = shipped_copy / "images_book.csv"
    data = pd.read_csv(path)
    data.loc[data.method == "ensemble", "accuracy"] -= 0.2
    data.to_csv(path, index=False)
    label = "Real images: ensemble − single"
    assert glance.table().set_index("claim").status[label] == FAILS
    assert frame.set_index("claim").status[label] != FAILS
