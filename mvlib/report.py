"""The small analyses the chapters show: generator statistics measured from X (chapter 1),
unfitted training samples and the behaviour-based learned-view map (chapter 2), dark knowledge
per wrong class (chapter 4), the response of a class output to its own views (chapter 6).

Each function is pure: tensors in, a tensor or a pandas DataFrame out.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch

from mvlib.data import MultiViewConfig, MultiViewData
from mvlib.metrics import accuracy_by_view, correct, learned_views_behaviour

# Two-sided z of a 99.9% normal interval: a generator check that fails by chance once in a
# thousand seeds, yet catches a wrong mean or frequency by a few standard errors.
Z_CHECK = 3.29
# Gaussian tail multiple for the largest of ~1e6 noise draws: P(|N(0,1)| > 6) ~ 2e-9 per draw.
TAIL = 6.0


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy() if torch.is_tensor(x) else np.asarray(x)


# --- chapter 1: the generator, measured from X ---------------------------------------------------


def projections(X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """<x_p, v_{j,l}> for every patch and feature: X (N, P, d), V (k, 2, d) -> (N, P, k, 2)."""
    return torch.einsum("npd,jld->npjl", X, V)


def noise_level(X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """Each patch's Gaussian noise level, estimated outside the span of the 2k orthonormal
    features (Def. 3.1's xi_p): ||x_p - V^T V x_p|| / sqrt(d - 2k). X (N, P, d) -> (N, P)."""
    Vf = V.reshape(-1, V.shape[-1])
    resid = X - (X @ Vf.T) @ Vf
    return resid.norm(dim=-1) / math.sqrt(Vf.shape[1] - Vf.shape[0])


def feature_patches(X: torch.Tensor, V: torch.Tensor, sigma_f: float, sigma_p: float):
    """Patches at the low noise level sigma_f, i.e. those that carry a feature (mvlib.data's two
    noise levels), split at the geometric mean of the levels: X (N, P, d) -> bool (N, P)."""
    return noise_level(X, V) < math.sqrt(sigma_f * sigma_p)


def measured_coefficients(X: torch.Tensor, V: torch.Tensor, sigma_f: float, sigma_p: float):
    """The coefficient sums of Def. 3.1 step 4 read back from X: Zhat_{n,j,l} is the sum over the
    sample's feature patches p of <x_p, v_{j,l}>, i.e. Z_{n,j,l} plus the feature noise
    alpha_{p,v} ~ U[0, gamma] and N(0, sigma_f^2) of each of those patches (no assignment of
    patches to features, so nothing biases it). X (N, P, d), V (k, 2, d) -> (N, k, 2)."""
    fp = feature_patches(X, V, sigma_f, sigma_p)
    return (projections(X, V) * fp[..., None, None]).sum(1)


def second_feature(X: torch.Tensor, V: torch.Tensor, sigma_f: float, sigma_p: float):
    """Largest projection of a feature patch on any feature but its own: (number of feature
    patches,). Disjoint patches (Def. 3.1 step 2) leave only noise, at most gamma + O(sigma_f)."""
    proj = projections(X, V).flatten(2)[feature_patches(X, V, sigma_f, sigma_p)]
    return proj.topk(2, -1).values[:, 1]


def wilson(successes: int, n: int, z: float = Z_CHECK) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (two-sided, z standard errors)."""
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def _uniform_row(name, values, n_fp, low, high, cfg: MultiViewConfig):
    """Mean and range of measured sums (``measured_coefficients``) of U[low, high] draws against
    Def. 3.1, each beside its sample's number of feature patches n_fp: the mean of
    Zhat - n_fp gamma / 2 is (low + high)/2 within Z_CHECK standard errors; every value within
    [low, high + n_fp gamma], widened by TAIL sigma_f sqrt(n_fp)."""
    v, n = _np(values).astype(float), _np(n_fp).astype(float)
    centred = v - n * cfg.gamma / 2
    mean = (low + high) / 2
    sd = math.sqrt((high - low) ** 2 / 12 + n.mean() * (cfg.gamma**2 / 12 + cfg.sigma_f**2))
    half = Z_CHECK * sd / math.sqrt(len(v))
    lo_ok = v >= low - TAIL * cfg.sigma_f * np.sqrt(n)
    hi_ok = v <= high + n * cfg.gamma + TAIL * cfg.sigma_f * np.sqrt(n)
    return [
        {
            "statistic": f"{name}: mean - n_fp gamma/2",
            "definition": f"{mean:.4f} ± {half:.4f}",
            "measured": f"{centred.mean():.4f} (n = {len(v)})",
            "ok": abs(centred.mean() - mean) <= half,
        },
        {
            "statistic": f"{name}: range",
            "definition": f"[{low:g}, {high:g}] + noise",
            "measured": f"[{v.min():.3f}, {v.max():.3f}]",
            "ok": bool((lo_ok & hi_ok).all()),
        },
    ]


def generator_checks(train: MultiViewData, sets: list[MultiViewData], cfg: MultiViewConfig):
    """Def. 3.1 / 3.3 checked on what X contains (over all ``sets``): features orthonormal, one
    feature per patch, the coefficient sums of every kind (which features a sample holds comes
    from the generator's record Z; their sums are measured in X), the single-view fraction of the
    training set (a sample is single-view when one of its label's views sums below 1/2) and the
    number of off-class features per sample (feature patches / C_p - 2). ``sets`` starts with
    ``train``. Returns a DataFrame (statistic, definition, measured, ok)."""
    V = train.V
    Vf = V.reshape(-1, V.shape[-1])
    err = float((Vf @ Vf.T - torch.eye(Vf.shape[0], device=Vf.device)).abs().max())
    X, y, Z = (torch.cat([getattr(s, a) for s in sets]) for a in ("X", "y", "Z"))
    Zhat = measured_coefficients(X, V, cfg.sigma_f, cfg.sigma_p)
    n_fp = feature_patches(X, V, cfg.sigma_f, cfg.sigma_p).sum(1)  # (n,)
    second = float(second_feature(X, V, cfg.sigma_f, cfg.sigma_p).max())
    noise_bound = cfg.gamma + TAIL * cfg.sigma_f
    rows = [
        {
            "statistic": "features orthonormal: max |V V^T - I|",
            "definition": "0 (float32)",
            "measured": f"{err:.1e}",
            "ok": err < 1e-5,
        },
        {
            "statistic": "one feature per patch: 2nd largest projection",
            "definition": f"noise only, <= gamma + {TAIL:g} sigma_f = {noise_bound:.3f}",
            "measured": f"{second:.3f}",
            "ok": second <= noise_bound,
        },
    ]
    idx = torch.arange(len(y), device=y.device)
    own = Zhat[idx, y]  # (n, 2)
    single = own.amin(-1) < 0.5 * (cfg.view_low + 2 * cfg.rho)  # read from X
    strong = own.argmax(-1)
    off = Z > 0
    off[idx, y] = False
    nfp3 = n_fp[:, None, None].expand_as(Zhat)
    s_idx = single.nonzero().flatten()
    for name, values, counts, low, high in (
        (
            "multi-view, label's views",
            own[~single].flatten(),
            n_fp[~single].repeat_interleave(2),
            cfg.view_low,
            cfg.view_high,
        ),
        (
            "single-view, strong view",
            own[s_idx, strong[s_idx]],
            n_fp[s_idx],
            cfg.view_low,
            cfg.view_high,
        ),
        (
            "single-view, weak view",
            own[s_idx, 1 - strong[s_idx]],
            n_fp[s_idx],
            cfg.rho,
            2 * cfg.rho,
        ),
    ):
        rows += _uniform_row(name, values, counts, low, high, cfg)
    for name, kind, low, high in (
        ("multi-view, off-class features", ~single, cfg.off_low, cfg.off_high),
        ("single-view, off-class features", single, cfg.Gamma / 2, cfg.Gamma),
    ):
        m = off & kind[:, None, None]
        rows += _uniform_row(name, Zhat[m], nfp3[m], low, high, cfg)
    n_off = int((n_fp // cfg.C_p - 2).sum())
    n_train = len(train)
    for name, hits, total, p in (
        ("fraction of single-view training samples", int(single[:n_train].sum()), n_train, cfg.mu),
        ("frequency of each off-class feature", n_off, len(y) * 2 * (cfg.k - 1), cfg.s / cfg.k),
    ):
        lo, hi = wilson(hits, total)
        rows.append(
            {
                "statistic": name,
                "definition": f"{p:g}",
                "measured": f"{hits / total:.4f}, interval [{lo:.4f}, {hi:.4f}]",
                "ok": lo <= p <= hi,
            }
        )
    return pd.DataFrame(rows)


# --- chapter 2: what a single model fits and learns ----------------------------------------------


def unfitted_samples(F: torch.Tensor, data: MultiViewData, learned: torch.Tensor):
    """Every (member, training sample) that Theorem 1's criterion calls unfitted, with whether the
    sample is single-view and whether the member learned its strong view.
    F (K, N, k) logits on ``data``, learned (K, k, 2) -> DataFrame (member, sample, label,
    single-view, strong view learned); "strong view learned" is None for multi-view samples."""
    rows = []
    for j, n in (~correct(F, data.y)).nonzero().tolist():
        y, single = int(data.y[n]), bool(data.single[n])
        rows.append(
            {
                "member": j,
                "sample": n,
                "label": y,
                "single-view": single,
                "strong view learned": bool(learned[j, y, data.strong[n]]) if single else None,
            }
        )
    return pd.DataFrame(
        rows, columns=["member", "sample", "label", "single-view", "strong view learned"]
    )


def split_halves(data: MultiViewData) -> tuple[MultiViewData, MultiViewData]:
    """Even- and odd-indexed samples: one half decides which views were learned, the other is
    scored, so the prediction does not see the samples it predicts."""

    def part(s):
        return MultiViewData(
            data.X[s], data.y[s], data.single[s], data.strong[s], data.Z[s], data.V
        )

    return part(slice(0, None, 2)), part(slice(1, None, 2))


def lottery_prediction(F: torch.Tensor, data: MultiViewData, level: float = 0.5):
    """Theorem 1's single-view accuracy, from the views each member learned.

    A member classifies a single-view sample exactly when it learned the sample's strong view, so
    its single-view accuracy is the fraction c of (class, view) cells it learned: 1/2 when one
    view per class is learned (Theorem 1), (1 + b)/2 when a fraction b of classes has both.
    Cells are judged by behaviour (:func:`mvlib.metrics.learned_views_behaviour` at ``level``) on
    one half of the single-view test set (``split_halves``) and the accuracy is measured on the
    other, so the prediction never sees the samples it predicts.
    F (K, N, k) on single-view ``data`` -> DataFrame, one row per member: both views (b),
    predicted (c), measured, on learned, on unlearned (accuracy by whether the strong view was
    learned)."""
    (Fa, Fb), (da, db) = (F[:, 0::2], F[:, 1::2]), split_halves(data)
    learned = learned_views_behaviour(Fa, da, level)  # (K, k, 2)
    hit = correct(Fb, db.y)  # (K, n)
    known = learned[:, db.y, db.strong]  # (K, n)

    def mean(mask):
        return ((hit & mask).sum(-1) / mask.sum(-1).clamp(min=1)).tolist()

    return pd.DataFrame(
        {
            "member": range(F.shape[0]),
            "both views (b)": learned.all(-1).float().mean(-1).tolist(),
            "predicted (c)": learned.float().mean((1, 2)).tolist(),
            "measured": hit.float().mean(-1).tolist(),
            "on learned": mean(known),
            "on unlearned": mean(~known),
        }
    )


# --- chapter 4: dark knowledge -------------------------------------------------------------------


def off_class_table(teachers: dict, data: MultiViewData, learned, T: float):
    """Dark knowledge, per training sample n and wrong class j != y_n: the teacher's soft label
    softmax_j(G/T) divided by the mean soft label of the wrong classes (1 for a flat teacher),
    with the sample's relation to class j's features: absent from X_n, present and learned by the
    reference model (``learned`` (k, 2), e.g. member 0's learned-view map), or present and missed.
    ``teachers`` {name: G (N, k)}. Returns a long DataFrame (teacher, n, j, feature of class j,
    ratio)."""
    Z, y = _np(data.Z), _np(data.y)
    N, k = y.shape[0], Z.shape[1]
    present = Z > 0  # (N, k, 2)
    hit = (present & _np(learned)[None].astype(bool)).any(-1)  # (N, k)
    cat = np.where(~present.any(-1), "absent", np.where(hit, "present, learned", "present, missed"))
    wrong = np.ones((N, k), bool)
    wrong[np.arange(N), y] = False
    frames = []
    for name, G in teachers.items():
        p = _np(torch.softmax(torch.as_tensor(G) / T, -1))
        ratio = p / (p * wrong).sum(-1, keepdims=True) * (k - 1)
        n, j = np.nonzero(wrong)
        frames.append(
            pd.DataFrame(
                {
                    "teacher": name,
                    "n": n,
                    "j": j,
                    "feature of class j": cat[wrong],
                    "ratio": ratio[wrong],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# --- chapter 6: how a class output responds to its own views -------------------------------------


def view_probes(V: torch.Tensor, P: int) -> torch.Tensor:
    """Probe inputs (2k, P, d): probe 2i + l has v_{i,l} (coefficient 1) on patch 0, the other
    patches empty."""
    k, _, d = V.shape
    probe = torch.zeros(2 * k, P, d, dtype=V.dtype, device=V.device)
    probe[:, 0] = V.reshape(2 * k, d)
    return probe


def view_response(logits: Callable[[torch.Tensor], torch.Tensor], V: torch.Tensor, P: int):
    """F_i(probe_{i,l}): how strongly class i's output responds to a patch carrying only its
    view v_{i,l}. ``logits`` maps X (n, P, d) to (K, n, k) (e.g. ``Trained.logits``).
    Returns (K, k, 2)."""
    k = V.shape[0]
    F = logits(view_probes(V, P))  # (K, 2k, k)
    return F.view(-1, k, 2, k).diagonal(dim1=1, dim2=3).permute(0, 2, 1)


# --- chapter 6: phase two of self-distillation ---------------------------------------------------


def weight_growth(history) -> float:
    """How far training moved the largest weight: max_{i,r} ||w_{i,r}|| at the last record over
    the first (the largest over members; ``History.weight_norm``)."""
    return float(history.weight_norm[-1].max() / history.weight_norm[0].max())


def phase_two(real, continuation, data, mu: float) -> dict[str, float]:
    """One run of two-phase self-distillation in numbers: single-view accuracy of the real
    teacher's students (``real``, a Trained from ``experiments.self_distill_students``) and of
    the ``continuation`` on cross-entropy alone, the gain of the one over the other, and the
    real teacher's students' weight growth and largest training logit (how far eq. 4.3's
    one-sided push took them)."""
    from mvlib.trainers import evaluate

    acc, cont = (float(evaluate(t, data, mu)["single_view"].mean()) for t in (real, continuation))
    return {
        "self-distillation": acc,
        "continuation": cont,
        "gain": acc - cont,
        "growth": weight_growth(real.history),
        "largest logit": float(real.logits(data.train.X).max()),
    }


# --- intervals in tables and sentences ----------------------------------------------------------


def step_table(steps: pd.DataFrame, scale: float = 1.0, digits: int = 3) -> pd.DataFrame:
    """A decomposition (``decomposition.steps``) for a forest plot and a rendered table: a
    ``label`` per step ("confidence: flat − one-hot"), mean and interval times ``scale`` (100
    for accuracy points), and ``interval`` as text with ``digits`` decimals."""
    out = steps.copy()
    out["label"] = [f"{r.step}: {r.to} − {r['from']}" for _, r in steps.iterrows()]
    out[["mean", "lo", "hi"]] = out[["mean", "lo", "hi"]] * scale
    return interval_columns(out, digits)


def interval_table(named: dict, scale: float = 1.0, digits: int = 3) -> pd.DataFrame:
    """{label: stats.Interval} -> one row per label with ``mean``, ``lo``, ``hi`` (times
    ``scale``), ``n`` and ``interval`` as text with ``digits`` decimals: the rows of a forest
    plot or a rendered table."""
    rows = [
        {
            "label": name,
            "mean": ci.mean * scale,
            "lo": ci.lo * scale,
            "hi": ci.hi * scale,
            "n": ci.n,
        }
        for name, ci in named.items()
    ]
    return interval_columns(pd.DataFrame(rows), digits)


def interval_columns(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Add ``interval`` ("+0.120 [+0.050, +0.190]") and ``sign`` (``sign_of``; "one value"
    where a column ``n`` says 1) to a table with ``mean``, ``lo`` and ``hi``."""
    df = df.copy()
    f = f"+.{digits}f"
    df["interval"] = [f"{r['mean']:{f}} [{r['lo']:{f}}, {r['hi']:{f}}]" for _, r in df.iterrows()]
    df["sign"] = [
        sign_of(r["lo"], r["hi"]) if r.get("n", 2) > 1 else "one value" for _, r in df.iterrows()
    ]
    return df


def sign_of(lo: float, hi: float) -> str:
    """Where a paired 95% interval lies: "above 0", "below 0" or "holds 0" (not resolved by
    this run; whether it is *equivalent* to zero needs an equivalence test, not this)."""
    return "above 0" if lo > 0 else "below 0" if hi < 0 else "holds 0"


def figure8(ensemble_gain_singles, ensemble_gain_students) -> dict:
    """Figure 8 of the paper read from paired intervals (stats.Interval): the gain of an
    ensemble of single models over one of them against that of an ensemble of distilled
    students over one student. The paper: the students' ensemble gains less. ``reading``:
    "as the paper" when the students' gain is the smaller, "reversed" when it is the larger,
    and ``resolved`` whether the two intervals are apart (else the run cannot tell)."""
    a, b = ensemble_gain_singles, ensemble_gain_students
    return {
        "reading": "as the paper" if b.mean < a.mean else "reversed",
        "resolved": b.hi < a.lo or a.hi < b.lo,
        "singles": a,
        "students": b,
    }


def panel_groups(claims, most: int = 5) -> list[list]:
    """Claims split for figures of at most ``most`` panels: by their tag (``KD: ...``,
    ``SD: ...``; untagged claims together), each tag's in runs of ``most``."""
    groups: dict[str, list] = {}
    for c in claims:
        tag, _, rest = c.name.partition(": ")
        groups.setdefault(tag if rest and tag in ("KD", "SD") else "", []).append(c)
    return [g[i : i + most] for g in groups.values() for i in range(0, len(g), most)]


def live_slices(cfg, frames: dict, sweeps: dict, live: dict):
    """The appendix's live slice of each regime sweep at the preset's grid point: ``frames``
    ``{name: sweep frame}``, ``sweeps`` as :func:`regime_sweeps`, ``live`` a
    :func:`mvlib.units.reproduce` result of seed 0. Only the methods whose results the sweep
    holds at the preset's regime count (a parameter a method does not depend on may differ).
    Returns ``(slices, verdicts, gaps, skipped)``, each ``{name: ...}``: the live slice against
    the prediction intervals, each claim's holds (shipped, and with the live seed in place of
    seed 0), the largest |live - shipped seed 0|, and why a sweep has no slice."""
    from mvlib import regimes as rg
    from mvlib.config import as_dict

    slices, verdicts, gaps, skipped = {}, {}, {}, {}
    for name, (grid, claims) in sweeps.items():
        rows = rg.at(frames[name], **{g: as_dict(cfg)[g] for g in grid})
        ran = rg.held_methods(rows, cfg, list(live))
        if not ran:
            skipped[name] = rg.regime_mismatch(rows, cfg)  # {parameter: (sweep's, preset's)}
            continue
        claims = rg.claims_on(claims, ran)
        slices[name] = rg.live_slice(rows, live, claims, ran)
        before = rg.claim_table(rows, claims, grid).set_index("claim").holds
        redrawn = rg.claim_table(rg.with_live(rows, {m: live[m] for m in ran}), claims, grid)
        after = redrawn.set_index("claim").holds
        verdicts[name] = pd.DataFrame({"shipped": before, "with live seed 0": after})
        seed0 = rows[rows.seed == 0].set_index("method").single_view
        gaps[name] = max(abs(live[m]["single_view"] - seed0[m]) for m in ran)
    return slices, verdicts, gaps, skipped


def regime_sweeps() -> dict[str, tuple[list[str], list]]:
    """The shipped regime sweeps that chapter 8 maps and its appendix re-runs: {name: (grid,
    claims)}, the grid (rows, columns) from ``regimes.GRIDS`` and the claims drawn on the
    sweep's maps (KD and SD prefix the distillation claims where a map carries both)."""
    from mvlib import regimes as rg

    both = rg.ENSEMBLE_CLAIMS + rg.tagged(rg.KD_CLAIMS, "KD") + rg.tagged(rg.SD_CLAIMS, "SD")
    claims = {
        "regimes_data": both + rg.MESSAGE4,  # the headline map also trains the sum
        "regimes_data_off08": rg.ENSEMBLE_CLAIMS + rg.tagged(rg.KD_CLAIMS, "KD"),
        "regimes_kd": rg.ENSEMBLE_CLAIMS + rg.KD_CLAIMS,
        "regimes_kd_T": rg.ENSEMBLE_CLAIMS + rg.KD_CLAIMS,
        "regimes_sd": rg.SD_CLAIMS,
    }
    return {name: (list(rg.GRIDS[name]), c) for name, c in claims.items()}


def per_view_accuracy(models: dict, data: MultiViewData) -> pd.DataFrame:
    """What a learned-view count at level 1/2 reads: each model's accuracy on the single-view
    test samples of class i whose strong view is l (:func:`mvlib.metrics.accuracy_by_view`).
    ``models``: {name: F (K, N, k) on ``data``}. One row per (model, member, class, view)."""
    frames = []
    for name, F in models.items():
        acc = _np(accuracy_by_view(F, data))  # (K, k, 2)
        K, k, _ = acc.shape
        member, cls, view = np.meshgrid(range(K), range(k), (1, 2), indexing="ij")
        frames.append(pd.DataFrame({"model": name, "member": member.ravel(),
                                    "class": cls.ravel(), "view": view.ravel(),
                                    "accuracy": acc.ravel()}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def views_after(maps: dict, after: tuple[str, ...]) -> pd.DataFrame:
    """Theorem 4's mechanism by behaviour (chapter 6). ``maps``: {seed: {model: learned-view map
    (models, k, 2) bool}} holding "students before (own)" (S students), "teacher (member 0)"
    (one model) and each phase-two target of ``after`` (the same S students afterwards). One
    row per (seed, target, student): the fractions of the 2k (class, view) pairs the student
    learned before ("own"), the teacher learned, their union, and the student learned after;
    "union kept", the share of the union it holds after; "beyond union", the fraction it
    holds after outside the union."""
    rows = []
    for seed, v in maps.items():
        own, teacher = v["students before (own)"], v["teacher (member 0)"][0]
        for name in after:
            for s, (mine, later) in enumerate(zip(own, v[name])):
                union = mine | teacher
                rows.append(
                    {
                        "seed": seed,
                        "student": s,
                        "after": name,
                        "own": mine.float().mean().item(),
                        "teacher": teacher.float().mean().item(),
                        "own or teacher": union.float().mean().item(),
                        "learned after": later.float().mean().item(),
                        "union kept": (later & union).sum().item() / max(union.sum().item(), 1),
                        "beyond union": (later & ~union).float().mean().item(),
                    }
                )
    return pd.DataFrame(rows)
