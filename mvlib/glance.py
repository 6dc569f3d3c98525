"""The paper's claims at a glance: one declared row per claim, its status from shipped sweeps.

Each :class:`Row` of :data:`ROWS` holds a claim of Allen-Zhu & Li (ICLR 2023) (Theorems 1-3,
Theorem 4 of the full version one conclusion per row, Figure 6's messages, Figures 7-8): the
paper's words, the quantity measured, the sweep it reads and its chapter. Verdicts come only from
:func:`mvlib.claims.verdict` (via :func:`~mvlib.claims.claim_table`); a row's rule turns its
claims' verdicts into one of :data:`STATUSES`. A map is read at its centre, the ``ci`` preset's
regime (k = 10, mu = 0.1); ``gpu_paper*`` give k = 30. :func:`table`, :func:`page_markdown` and
:func:`verdict_box` (a chapter's three lines) share those rows, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from mvlib import claims as cl
from mvlib import maps
from mvlib.claims import EQUIVALENT, FAILS, HOLDS, UNRESOLVED, Claim
from mvlib.config import as_dict
from mvlib.presets import ASSUMPTION_41, get_preset

STATED_FORM = "holds only in a stated form"
WITHOUT_MECHANISM = "reached without the stated mechanism"
STATUSES = (HOLDS, STATED_FORM, WITHOUT_MECHANISM, EQUIVALENT, FAILS, UNRESOLVED)
CENTRE = as_dict(get_preset("ci"))  # the maps' centre: the regime the ci preset runs
PAGE = "glance"  # this page's {doc} target
SHOWN = {"mu": "μ", "tau": "τ", "eq43": "eq. (4.3)", "hinton": "Hinton's",
         "eq43_capped": "eq. (4.3) capped"}  # fmt: skip


def _by(group, name: str) -> Claim:
    return next(c for c in group if c.name == name)


def _real(name: str) -> Claim:
    return _by(cl.REAL_CLAIMS, name)


_TH4 = cl.THEOREM4_CLAIMS
_UNION = _by(_TH4, "T4 union: teacher-only - neither, learned")
T4_MECHANISM = (_UNION, _by(cl.SD_CLAIMS, "distillation - continuation"))  # implicit ensemble
T3_MECHANISM = tuple(_by(cl.KD_CLAIMS, n) for n in cl.DARK_KNOWLEDGE)  # dark knowledge


@dataclass(frozen=True)
class Row:
    """One claim. ``rule`` turns verdicts at a grid point into a status: ``verdict`` (the
    claim's own), ``not_below`` (equivalent to zero holds too), ``no_gain`` (the paper predicts
    none: a gain fails), ``band`` (every claim of ``also`` holds) or ``mechanism`` (the claim
    holds; unless the ``also`` measured hold too, reached without the stated mechanism).
    ``forms``: (column, values, the paper's first); ``gpu``: its sweep at k = 30; no ``sweep``:
    computed live in the chapter."""

    label: str
    chapter: str
    claim: Claim | None
    statement: str
    quantity: str
    sweep: str | None = None
    rule: str = "verdict"
    also: tuple[Claim, ...] = ()
    forms: tuple[str, tuple] | None = None
    gpu: str | None = None
    scaling: bool = False  # Theorem 1: its regime per k, from the kscaling sweeps
    at: tuple = ()  # (column, value) pairs read instead of the centre's, e.g. Assumption 4.1


_DATA = dict(sweep="regimes_data", gpu="gpu_paper")
_KD = dict(sweep="regimes_kd", forms=("kd", ("eq43", "hinton")), gpu="gpu_paper")
# Theorem 4 assumes Assumption 4.1: its headline is read on data meeting it
_SD = dict(sweep="regimes_sd", forms=("sd_kd", ("eq43", "eq43_capped")),
           at=tuple(ASSUMPTION_41.items()))  # fmt: skip
_SDG = dict(**_SD, gpu="gpu_paper_sd")
_T3 = "Theorem 3: the student of (4.3) has “test accuracy almost perfect” (error ≤ 0.001μ)"
_T4 = "Theorem 4 (full version), under Assumption 4.1: "
_CH2, _CH3, _CH4 = "02_single_model", "03_ensemble", "04_gaussian"
_CH5, _CH6, _CH7 = "05_distillation", "06_self_distillation", "07_ntk"
_CH9, _IMG = "09_real_data", dict(sweep="images_book")  # chapter 9's sweep, Fashion-MNIST
# Figure 6's kernels, read where the linearised single model generalises (m = 30 neurons a
# class: multi-view accuracy about 0.9, against about 0.4 at the presets' m = 3, shown beside).
# No k = 30 column: gpu_paper's NTK has m = 4, where it barely learns (scripts/gpu.sh runs m = 30).
NTK_WIDTH = 30
_NTK = dict(sweep="ntk_width", at=(("m", NTK_WIDTH),))
_REAL_DK = tuple(_by(cl.REAL_CLAIMS, n) for n in cl.DARK_KNOWLEDGE)
# fmt: off
ROWS = (
    Row("Theorem 1: training is perfect", _CH2, cl.T1_TRAIN, "Theorem 1: “training is perfect”",
        "single model's training accuracy − 0.99", **_DATA),
    Row("Theorem 1: single-view ≈ 1/2", _CH2, cl.T1_HALF,
        "Theorem 1: test error “in [0.49μ, 0.51μ]”, single-view accuracy about 1/2",
        "single model's single-view accuracy − 1/2 (holds: inside 1/2 ± 0.05)",
        rule="band", also=cl.T1_BAND, scaling=True, **_DATA),
    Row("Theorem 2: ensemble − single", _CH3, cl.ENSEMBLE_CLAIMS[0],
        "Theorem 2: the ensemble's “test accuracy is almost perfect”",
        "ensemble − single model, single-view accuracy", **_DATA),
    Row("Message ④: ensemble − trained sum", _CH3, cl.ENSEMBLE_SUM,
        "Figure 6, Message ④: the ensemble's gain “cannot be matched by training the sum”",
        "ensemble − the trained sum of K models, single-view accuracy", **_DATA),
    Row("Message ④: trained sum − single", _CH3, cl.MESSAGE4[0],
        "Message ④: the benefit “comes from somewhere other than enlarging the model”",
        "trained sum − single model (holds: no gain; here the sum is one wider learner, "
        "so a gain is a width effect)", rule="no_gain", **_DATA),
    Row("Theorem 3: distillation − single", _CH5, _by(cl.KD_CLAIMS, "distillation - single"), _T3,
        "student of the ensemble − single model, single-view (mechanism: real − permuted and "
        "real − flat)", rule="mechanism", also=T3_MECHANISM, **_KD),
    Row("Theorem 3: dark knowledge, real − permuted", _CH5, T3_MECHANISM[0],
        "Section 2: the ensemble's outputs carry “dark knowledge”",
        "student of the real teacher − of its permuted control", **_KD),
    Row("Theorem 3: real − flat", _CH5, T3_MECHANISM[1],
        "Section 2: the student is “forced to learn” the views the ensemble knows",
        "student of the real teacher − of its flat control", **_KD),
    Row("Theorem 3 control: flat − one-hot", _CH5,
        _by(cl.KD_CLAIMS, "confidence: flat - one-hot"), "(a control: confidence alone)",
        "student of the flat control − of the one-hot control", **_KD),
    Row("Figure 8: an ensemble of students gains little", _CH5, None,
        "Figure 8: distilled models “have learned most of the features”",
        "ensemble of students − one student"),
    Row("Theorem 4: training margin", _CH6, _TH4[0],
        _T4 + "F_y ≥ F_i + Ω(log k) on every training sample",
        "share of training samples with margin ≥ ln k, − 0.99", **_SD),
    Row("Theorem 4: Φ bounded", _CH6, _TH4[1], _T4 + "Õ(1) ≥ Φ_i for every class",
        "share of classes with Φ_i ≤ 1/τ², − 0.99", **_SD),
    Row("Theorem 4: multi-view not below single", _CH6, _TH4[2],
        _T4 + "“multi-view testing is good”",
        "self-distilled − single model, multi-view accuracy (holds: not below)",
        rule="not_below", **_SDG),
    Row("Theorem 4: single-view ≥ 3/4", _CH6, cl.SD_CLAIMS[0],
        _T4 + "“single-view testing is better”, at least 3/4(1 − o(1))",
        "self-distilled single-view accuracy − 3/4 (mechanism: the union and the continuation)",
        rule="mechanism", also=T4_MECHANISM, **_SDG),
    Row("Theorem 4: test error ≤ 0.26μ", _CH6, _TH4[3],
        _T4 + "“test accuracy is better”, error ≤ 0.26μ", "overall accuracy − (1 − 0.26μ)",
        rule="mechanism", also=T4_MECHANISM, **_SDG),
    Row("Theorem 4: union, teacher-only − neither", _CH6, _UNION,
        _T4 + "Φ_i,ℓ ≥ Ω(1/log k) for every (i, ℓ) in M_F ∪ M_G",
        "share learned of the views only the teacher had − of those neither had", **_SD),
    Row("Theorem 4: union, continuation (control)", _CH6, _TH4[5],
        "(a control: the same count for cross-entropy alone)",
        "the continuation's teacher-only − neither", **_SD),
    Row("Theorem 4: union, self-distilled − continuation", _CH6, _TH4[6],
        _T4 + "the student learns M_G from its teacher",
        "teacher-only views learned: self-distilled − continuation", **_SD),
    Row("Theorem 4: self-distilled − continuation", _CH6, cl.SD_CLAIMS[1],
        "Message ⑥: “self-distillation clearly improves the test performance”",
        "self-distilled − the same student trained on with cross-entropy, single-view", **_SDG),
    Row("Theorem 4: real − one-hot", _CH6, cl.SD_CLAIMS[2],
        "Section 4: self-distillation is “implicit ensemble + knowledge distillation”",
        "self-distilled − one-hot control at the same margin", **_SDG),
    Row("Theorem 4: real − permuted", _CH6, cl.SD_CLAIMS[3],
        "Section 4: the teacher's outputs carry what it learned",
        "self-distilled − permuted-teacher control", **_SDG),
    Row("Figure 6 ①: NTK ensemble − single", _CH7, cl.NTK_CLAIMS[0],
        "Message ①: for neural kernel methods “ensemble helps”",
        "NTK ensemble − NTK single, single-view", **_NTK),
    Row("Figure 6 ①: NTK trained average ≥ ensemble", _CH7, cl.NTK_CLAIMS[1],
        "Message ①: “ensemble is not better than training the sum”",
        "NTK trained average − NTK ensemble (holds: not below)", rule="not_below", **_NTK),
    Row("Figure 6 ②: NTK distillation", _CH7, cl.NTK_CLAIMS[2],
        "Message ②: for kernels the ensemble “cannot be distilled”",
        "NTK student − NTK single (holds: no gain)", rule="no_gain", **_NTK),
    Row("Figure 6 ②: NTK student below its ensemble", _CH7, cl.NTK_CLAIMS[4],
        "Message ②: “the superior test performance of ensemble cannot be distilled”",
        "NTK ensemble − its NTK student (holds: a gap remains; necessary, not sufficient: "
        "a network's student may keep a small gap too)", **_NTK),
    Row("Figure 6 ③: NTK self-distillation", _CH7, cl.NTK_CLAIMS[3],
        "Message ③: for kernels self-distillation is “no better than a single model”",
        "NTK born-again student − NTK single (holds: no gain)", rule="no_gain", **_NTK),
    Row("Figure 7: Gaussian inputs", _CH4, None,
        "Figure 7: on Gaussian-like inputs an ensemble lowers the variance, not the error",
        "ensemble − single on Gaussian inputs; output variance"),
    Row("Real images: ensemble − single", _CH9, _real("ensemble - single"),
        "Figure 6: ensembles of 10 beat one network (CIFAR-10, ResNet-28-2: 96.33% against "
        "95.22 ± 0.14%)", "ensemble of K = 10 CNNs − one, Fashion-MNIST test accuracy", **_IMG),
    Row("Real images: distillation − single", _CH9, _real("distillation - single"),
        "Message ⑤: the ensemble's accuracy “can be distilled into single model by a large "
        "extent”", "student of the ensemble − single model, test accuracy (mechanism: real − "
        "permuted and real − flat)", rule="mechanism", also=_REAL_DK, **_IMG),
    Row("Real images: dark knowledge, real − permuted", _CH9, _REAL_DK[0],
        "Section 2: the ensemble's outputs carry “dark knowledge”",
        "student of the ensemble − of its permuted control, test accuracy", **_IMG),
    Row("Real images: self-distilled − continuation", _CH9,
        _real("self-distillation - continuation"),
        "Message ⑥: “self-distillation clearly improves the test performance”",
        "self-distilled − the same network trained on with cross-entropy", **_IMG),
    Row("Real images: Message ④, ensemble − trained sum", _CH9,
        _real("Message 4: ensemble - trained sum"),
        "Message ④: the ensemble's gain “cannot be matched by training the sum”",
        "ensemble − the trained sum of K = 10 CNNs, test accuracy", **_IMG),
    Row("Real images: Figure 8", _CH9, _real("Figure 8: singles' ensemble gain - students'"),
        "Figure 8: an ensemble of distilled students gains little (they “have learned most of "
        "the features”)", "ensemble gain of single models − of as many students", **_IMG),
    Row("Real images: Figure 9", _CH9,
        _real("Figure 9: ensemble gain, half the channels - all"),
        "Figure 9: with a layer's channels deleted, single models drop and “the test accuracy "
        "may not be affected by much after ensemble”",
        "ensemble's gain over its models on half of a layer's channels − on all of them", **_IMG),
)
# fmt: on
# a chapter's box row, if not its first
HEADLINE = {_CH6: "Theorem 4: single-view ≥ 3/4", _CH9: "Real images: distillation − single"}


def point_status(rule: str, main: str, also=()) -> str:
    """A row's status at one grid point from its claim's verdict ``main`` and the verdicts of
    its ``also`` claims measured there (the band's bounds, the mechanism's claims)."""
    also = list(also)
    if rule == "verdict":
        return main
    if rule == "not_below":
        return HOLDS if main in (HOLDS, EQUIVALENT) else main
    if rule == "no_gain":
        return {HOLDS: FAILS, EQUIVALENT: HOLDS, FAILS: HOLDS}.get(main, UNRESOLVED)
    if rule == "band":
        if also and all(v == HOLDS for v in also):
            return HOLDS
        return FAILS if FAILS in also else UNRESOLVED
    if rule == "mechanism":
        if main != HOLDS or not also:  # a mechanism not measured says nothing against it
            return main
        return HOLDS if all(v == HOLDS for v in also) else WITHOUT_MECHANISM
    raise ValueError(f"unknown rule {rule!r}")


def combine_forms(statuses: dict, paper) -> str:
    """One status from each form's (``{form: status}``): the paper's form's when it holds or
    none holds, else "holds only in a stated form"."""
    own = statuses.get(paper, UNRESOLVED)
    if own != HOLDS and any(s == HOLDS for s in statuses.values()):
        return STATED_FORM
    return own


def load(name: str):
    """A shipped sweep (:func:`mvlib.maps.shipped`; a real-data one, ``images_PRESET``, as
    :func:`mvlib.images.shipped`), or an error naming it."""
    try:
        if name.startswith("images_"):
            from mvlib import images

            return images.shipped(name.removeprefix("images_"))
        return maps.shipped(name)
    except FileNotFoundError as e:
        path = maps.data_dir() / f"{name}.csv"
        raise FileNotFoundError(f"the glance table reads sweep {name!r}: no {path}") from e


def interval_text(mean: float, lo: float, hi: float) -> str:
    """``+0.083 [−0.047, +0.212]``, with Unicode minus signs."""
    return f"{mean:+.3f} [{lo:+.3f}, {hi:+.3f}]".replace("-", "−")


def _points(points: list[dict]) -> str:
    def one(k, v):
        return f"{SHOWN.get(k, k)} = {SHOWN.get(v, v) if isinstance(v, str) else format(v, 'g')}"

    return "; ".join(", ".join(one(k, v) for k, v in p.items()) for p in points)


def graded(row: Row, df, grid: list[str]):
    """The row's status and its claim's interval at each grid point of a sweep's frame: columns
    ``grid``, ``claim`` (the row's label), ``status``, ``holds``, ``mean``, ``lo``, ``hi``,
    ``seeds``; no rows where the sweep lacks its methods or metrics."""
    import pandas as pd

    tab, also, out = (
        cl.claim_table(df, [row.claim, *row.also], grid),
        [a.name for a in row.also],
        [],
    )
    for key, here in tab.groupby(grid, sort=False) if grid and len(tab) else [((), tab)]:
        mine = here[here.claim == row.claim.name] if len(here) else here
        if len(mine):
            r, key = mine.iloc[0], key if isinstance(key, tuple) else (key,)
            status = point_status(row.rule, r.verdict, here[here.claim.isin(also)].verdict)
            stats = {c: r[c] for c in ("mean", "lo", "hi", "seeds")}
            out.append({**dict(zip(grid, key)), "claim": row.label, "status": status, **stats})
    g = pd.DataFrame(out, columns=[*grid, "claim", "status", "mean", "lo", "hi", "seeds"])
    return g.assign(holds=g.status == HOLDS)


def read(row: Row, df, name: str) -> dict:
    """``row`` read from sweep ``name``'s frame at the maps' centre (:data:`CENTRE`), at each of
    ``row.forms``: ``interval`` text, ``status``, ``where`` the same rule holds on the grid (the
    sweep's :data:`~mvlib.maps.GRIDS` and any other column it varies), ``reads``."""
    grid = [c for c in dict.fromkeys([*maps.GRIDS.get(name, ()), *cl.grid_columns(df)]) if c in df]
    g, (col, forms) = graded(row, df, grid), row.forms or (None, (None,))
    ran = set(df[col].astype(str)) if col in df else {CENTRE.get(col)}
    texts, statuses, seeds = [], {}, set()
    centre = {**CENTRE, **dict(row.at)}
    for form in [f for f in forms if not col or f in ran]:  # the forms the sweep ran
        point = {c: form if c == col else centre[c] for c in grid if c in centre}
        if grid and maps.at(df, **point).empty:
            raise ValueError(f"sweep {name!r} has no rows at the maps' centre {point}")
        here = maps.at(g, **point) if grid and len(g) else g
        if len(here):  # else the sweep predates the claim's methods or metrics
            r = here.iloc[0]
            statuses[form], seeds = r.status, seeds | {int(r.seeds)}
            shown = f"{SHOWN.get(form, form)}: " if col else ""
            texts.append(shown + interval_text(r["mean"], r.lo, r.hi))
    if not statuses:
        return {"interval": f"not measured in {name}", "status": UNRESOLVED, "reads": name}
    where = cl.holds_where(g, row.label, grid) if grid else []
    where = f"{len(where)} of {len(g)}: {_points(where)}" if where else f"none of {len(g)}"
    where = f"all {len(g)}" if grid and g.holds.all() else where
    partial = g[g.status == WITHOUT_MECHANISM][grid].to_dict("records") if grid else []
    if partial:
        where += f" (reached without the stated mechanism at {_points(partial)})"
    centre = _points([{c: centre[c] for c in grid if c in centre and c != col}])
    n = "/".join(map(str, sorted(seeds)))
    return {
        "interval": "; ".join(texts),
        "status": combine_forms(statuses, forms[0]) if col else statuses[None],
        "where": where if grid else "",  # one point: its status says it
        "reads": f"{name}{' at ' + centre if centre else ''}, {n} seeds",
    }


def setting(df) -> str:
    """What sets a GPU sweep apart from the maps, read from its columns."""
    controls = df.controls.iloc[0] if "controls" in df else "logit"
    off = f"[{df.off_low.iloc[0]:g}, {df.off_high.iloc[0]:g}]"
    return f"k = {df.k.iloc[0]}, off-class range {off}, {controls}-matched controls"


def at_k30(row: Row, df) -> str:
    """The row's status and interval at each point of a GPU sweep (the paper's k = 30); "" when
    it lacks the row's methods or metrics."""
    grid, parts = cl.grid_columns(df), []
    form = f"{SHOWN.get(v := df[row.forms[0]].iloc[0], v)}: " if row.forms else ""
    for r in graded(row, df, grid).itertuples():
        point = _points([{c: getattr(r, c) for c in grid}])
        text = f"{form}{interval_text(r.mean, r.lo, r.hi)} {r.status} ({r.seeds} seeds)"
        parts.append(f"{point}: {text}" if point else text)
    return "; ".join(parts)


def kscaling_where() -> str:
    """Theorem 1's regime per k (:func:`mvlib.maps.theorem1_regime`) in the kscaling sweeps,
    and in the paper-scaling ones when shipped."""
    import pandas as pd

    out = []
    for prefix, label in (("kscaling_k", "k-scaling"), ("kscaling_paper_k", "paper scaling")):
        paths = sorted(maps.data_dir().glob(f"{prefix}*.csv"))
        if not paths and prefix == "kscaling_k":
            raise FileNotFoundError(f"the glance table reads {maps.data_dir()}/kscaling_k*.csv")
        if paths:
            t = maps.kscaling(pd.concat([pd.read_csv(p) for p in paths], ignore_index=True))
            t["ok"] = maps.theorem1_regime(t)
            ks = {ok: ", ".join(f"{r.k} ({r.steps} steps)" for r in t[t.ok == ok].itertuples())
                  for ok in (True, False)}  # fmt: skip
            said = f"in Theorem 1's regime at k = {ks[True]}" if ks[True] else ""
            if ks[False]:
                said += (
                    f", not at k = {ks[False]}"
                    if said
                    else f"not in Theorem 1's regime at k = {ks[False]}"
                )
            out.append(f"{label}: {said}")
    return "; ".join(out)


def table():
    """One row per claim of :data:`ROWS`: ``claim``, ``statement``, ``quantity``, ``reads``,
    ``interval`` (mean [95% interval] at the maps' centre), ``status``, ``where`` it holds,
    ``k30`` and ``k30_setting`` (a GPU sweep's, or "") and ``chapter``."""
    import pandas as pd

    frames, out = {}, []
    for row in ROWS:
        got = dict.fromkeys(("interval", "where", "reads", "k30", "k30_setting"), "")
        got["status"] = UNRESOLVED
        if row.sweep is None:
            got["interval"] = f"live in {chapter_link(row.chapter)}"
        else:
            for name in {row.sweep, row.gpu} - {None}:
                frames.setdefault(name, load(name))
            got.update(read(row, frames[row.sweep], row.sweep))
            if row.sweep.startswith("gpu_paper"):
                got["reads"] += f"; {setting(frames[row.sweep])}"
            if row.gpu and (k30 := at_k30(row, frames[row.gpu])):
                got.update(k30=k30, k30_setting=f"{row.gpu}: {setting(frames[row.gpu])}")
            if row.scaling:
                got["where"] += "; " + kscaling_where()
        meta = {"claim": row.label, "statement": row.statement, "quantity": row.quantity}
        out.append({**meta, **got, "chapter": row.chapter})
    return pd.DataFrame(out)


def chapter_link(chapter: str) -> str:
    """A MyST link to a chapter, its number read from its name (e.g. ``05_distillation``)."""
    return f"{{doc}}`chapter {int(chapter[:2])} <{chapter}>`"


def page_markdown(frame=None) -> str:
    """The glance page (MyST Markdown, no dollar math): one table of :func:`table`'s rows, then
    what each row's paper says and measures, and the GPU sweeps' settings."""
    frame = table() if frame is None else frame
    head = ("claim", "status", "at the centre: mean [95% interval]", "holds at (grid points)",
            "k = 30 (GPU)", "chapter")  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in frame.itertuples():
        cells = (f"**{r.claim}**", f"**{r.status}**", r.interval, r.where, r.k30,
                 chapter_link(r.chapter))  # fmt: skip
        lines.append("| " + " | ".join(str(c).replace("|", "/") or "–" for c in cells) + " |")
    lines += ["", "**What each row reads.**", ""]
    for r in frame.itertuples():
        reads = f" Read from {r.reads}." if r.reads else ""
        lines.append(f"- **{r.claim}.** {r.statement}. Measured: {r.quantity}.{reads}")
    gpu = [f"{s}." for s in dict.fromkeys(frame.k30_setting) if s]
    if gpu:
        lines += ["", "**The k = 30 column** reads older GPU runs: " + " ".join(gpu)]
    return "\n".join(lines)


# Chapters without claims of their own: the setup counts every status; the maps say where
# the headline claims hold.
SETUP, MAPS = "01_setup", "08_regimes"
MAPS_ROWS = ("Theorem 2: ensemble − single", "Theorem 3: dark knowledge, real − permuted",
             "Theorem 4: single-view ≥ 3/4")  # fmt: skip


def chapters() -> list[str]:
    """The chapters :func:`verdict_box` has a box for."""
    return [SETUP, *dict.fromkeys(r.chapter for r in ROWS), MAPS]


def _summary_lines(chapter: str, frame) -> tuple[str, str]:
    """The paper's claim and the status line of a chapter without claims of its own."""
    if chapter == SETUP:
        live = frame.interval.str.startswith("live in")
        counts = frame[~live].status.value_counts()
        said = "; ".join(f"{counts[s]} {s}" for s in STATUSES if s in counts)
        return (
            "Section 3's multi-view data (Def. 3.1, 3.3) and learner (Def. 3.4), on which "
            "Theorems 1–4 are proved; every later chapter runs them",
            f"**Status of the paper's claims, {int((~live).sum())} rows read from shipped runs "
            f"(controls included):** {said} ({int(live.sum())} more rows are measured live in "
            "their chapters)",
        )
    rows = frame.set_index("claim").loc[list(MAPS_ROWS)]
    said = "; ".join(f"{c}: **{r.status}** at the centre, holds at {r['where']}"
                     for c, r in rows.iterrows())  # fmt: skip
    return (
        "Theorems 1–4 hold “for sufficiently large k”, with their Θ(1) and poly(k) left "
        "open; the maps ask where on a grid of parameters each claim holds",
        f"**Status, across the maps:** {said}",
    )


def verdict_box(chapter: str, live: str | None = None, frame=None) -> str:
    """A chapter's verdict, three Markdown lines from :func:`table` (so box and page agree): the
    paper's claim; its status and interval; ``live`` (a number this run computed, worded by the
    chapter) and a link to the glance page. Its {doc} links need the cell's metadata
    ``{"mystnb": {"markdown_format": "myst"}}``."""
    frame = table() if frame is None else frame
    run = f"**This run:** {live}. " if live else ""
    if chapter in (SETUP, MAPS):
        paper, status = _summary_lines(chapter, frame)
        return "\n".join((
            f"- **The paper:** {paper}.", f"- {status}.",
            f"- {run}Every claim: {{doc}}`Claims at a glance <{PAGE}>`.",
        ))  # fmt: skip
    mine = frame[frame.chapter == chapter]
    if mine.empty:
        raise KeyError(f"no claim of chapter {chapter!r} (chapters: {', '.join(chapters())})")
    r = mine[mine.claim == HEADLINE.get(chapter, mine.claim.iloc[0])].iloc[0]
    more = f", and {len(mine) - 1} more of this chapter's claims" if len(mine) > 1 else ""
    where = f"; holds at {r['where']}" if r["where"] else ""
    where = f" ({r.reads}{where})" if r.reads else ""
    return "\n".join((
        f"- **The paper:** {r.statement}.",
        f"- **Status: {r.status}.** {r.claim}: {r.interval}{where}.",
        f"- {run}Every claim: {{doc}}`Claims at a glance <{PAGE}>`{more}.",
    ))  # fmt: skip
