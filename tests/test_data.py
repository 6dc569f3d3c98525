"""The generator of mvlib.data against Def. 3.1 / 3.3 of the paper."""

from __future__ import annotations

import math

import pytest
import torch
from _mvhelpers import assert_close, gen, tiny_data_config

from mvlib.data import MultiViewConfig, features, sample


def _draw(cfg: MultiViewConfig, n: int, seed: int = 0, view=None):
    g = gen(seed)
    V = features(cfg, g)
    return sample(cfg, n, V, g, view)


def _binomial_ok(count: int, n: int, p: float, z: float = 5.0) -> bool:
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p)) + 1


# Ranges chosen pairwise disjoint, so a coefficient drawn from the wrong range is caught:
# own views [1, 2], weak view [rho, 2 rho] = [0.05, 0.1], off-class multi [0.7, 0.9],
# off-class single [Gamma/2, Gamma] = [0.25, 0.5].
DISJOINT = dict(rho=0.05, Gamma=0.5, off_low=0.7, off_high=0.9, view_low=1.0, view_high=2.0)


@pytest.fixture(scope="module")
def big():
    """4000 samples with disjoint coefficient ranges (k=4: 6 off-class features, all fit in P=8)."""
    cfg = tiny_data_config(mu=0.3, **DISJOINT)
    return cfg, _draw(cfg, 4000, seed=3)


def test_shapes_and_dtypes(big):
    cfg, D = big
    n = len(D)
    assert D.X.shape == (n, cfg.P, cfg.d)
    assert D.y.shape == D.single.shape == D.strong.shape == (n,)
    assert D.Z.shape == (n, cfg.k, 2)
    assert D.V.shape == (cfg.k, 2, cfg.d)
    assert D.single.dtype == torch.bool
    assert int(D.y.min()) >= 0 and int(D.y.max()) < cfg.k


def test_single_view_fraction_is_mu(big):
    cfg, D = big
    assert _binomial_ok(int(D.single.sum()), len(D), cfg.mu)


def test_labels_uniform(big):
    cfg, D = big
    counts = torch.bincount(D.y, minlength=cfg.k)
    for c in counts.tolist():
        assert _binomial_ok(c, len(D), 1 / cfg.k)


def test_strong_view_marks_single_view_samples(big):
    cfg, D = big
    assert (D.strong[~D.single] == -1).all()
    s = D.strong[D.single]
    assert ((s == 0) | (s == 1)).all()
    assert _binomial_ok(int((s == 1).sum()), s.numel(), 0.5)  # l_hat uniform on [2]


def _own(D):
    rows = torch.arange(len(D))
    return D.Z[rows, D.y]  # (n, 2)


def _in(x, lo, hi, tol=1e-6):
    return bool(((x >= lo - tol) & (x <= hi + tol)).all())


def _spans(x, lo, hi, frac=0.05):
    """Uniform draws of a few hundred values come close to both ends of their range."""
    return float(x.min()) <= lo + frac * (hi - lo) and float(x.max()) >= hi - frac * (hi - lo)


def test_multi_view_own_coefficients(big):
    cfg, D = big
    own = _own(D)[~D.single]
    assert _in(own, cfg.view_low, cfg.view_high)
    assert _spans(own, cfg.view_low, cfg.view_high)


def test_single_view_strong_and_weak_coefficients(big):
    cfg, D = big
    own = _own(D)[D.single]
    strong = D.strong[D.single]
    rows = torch.arange(own.shape[0])
    z_strong, z_weak = own[rows, strong], own[rows, 1 - strong]
    assert _in(z_strong, cfg.view_low, cfg.view_high)
    assert _spans(z_strong, cfg.view_low, cfg.view_high)
    assert _in(z_weak, cfg.rho, 2 * cfg.rho)
    assert _spans(z_weak, cfg.rho, 2 * cfg.rho)


def _off_mask(cfg, D):
    return ~torch.nn.functional.one_hot(D.y, cfg.k).bool()[..., None].expand(-1, -1, 2)


def test_off_class_coefficients(big):
    cfg, D = big
    off = _off_mask(cfg, D)
    Z = D.Z
    multi = Z[off & ~D.single[:, None, None]]
    single = Z[off & D.single[:, None, None]]
    multi, single = multi[multi > 0], single[single > 0]
    assert multi.numel() > 100 and single.numel() > 100
    assert _in(multi, cfg.off_low, cfg.off_high)
    assert _spans(multi, cfg.off_low, cfg.off_high)
    assert _in(single, cfg.Gamma / 2, cfg.Gamma)
    assert _spans(single, cfg.Gamma / 2, cfg.Gamma)
    assert (Z >= 0).all()


def test_off_class_feature_frequency_is_s_over_k(big):
    """Each off-class feature is present w.p. s/k (Def. 3.1 step 1), independently per feature."""
    cfg, D = big
    present = D.Z > 0
    for j in range(cfg.k):
        others = D.y != j
        for l in range(2):
            assert _binomial_ok(
                int(present[others, j, l].sum()), int(others.sum()), cfg.s / cfg.k
            ), (j, l)


def test_label_class_is_never_off_class(big):
    """The label's features carry the own-view coefficients, never an off-class one, and they
    occupy exactly C_p patches each (not an extra off-class slot)."""
    cfg, D = big
    own = _own(D)
    assert (own >= min(cfg.view_low, cfg.rho) - 1e-6).all()
    # No own coefficient falls in an off-class range (ranges are disjoint, see DISJOINT).
    assert not ((own >= cfg.off_low) & (own <= cfg.off_high)).any()
    assert not ((own >= cfg.Gamma / 2) & (own <= cfg.Gamma)).any()


def test_off_class_count_truncated_to_fit_patches():
    """With P just large enough, the excess off-class features are dropped and the rest still get
    disjoint patches."""
    cfg = tiny_data_config(k=6, d=16, P=6, s=2.0, gamma=0.0, sigma_p=0.0, sigma_f=0.0)
    assert cfg.max_off_features == 4
    n = 3000
    D = _draw(cfg, n, seed=4)
    n_off = (D.Z > 0).sum((1, 2)) - 2
    assert int(n_off.max()) == cfg.max_off_features  # truncation is reached ...
    assert (n_off <= cfg.max_off_features).all()  # ... and respected
    # |V'| ~ min(Binomial(2(k-1), s/k), 4): only the 2(k-1) off-class features compete for the
    # patches (were the label's own features drawn into V' too, fewer would remain: mean 2.80).
    p, m = cfg.s / cfg.k, 2 * (cfg.k - 1)
    pmf = [math.comb(m, j) * p**j * (1 - p) ** (m - j) for j in range(m + 1)]
    mean = sum(q * min(j, 4) for j, q in enumerate(pmf))
    sd = math.sqrt(sum(q * (min(j, 4) - mean) ** 2 for j, q in enumerate(pmf)) / n)
    assert abs(float(n_off.float().mean()) - mean) < 5 * sd
    coef = D.X @ D.V.reshape(2 * cfg.k, cfg.d).T  # (n, P, 2k)
    assert ((coef.abs() > 1e-6).sum(-1) <= 1).all()  # one feature per patch
    assert_close(coef.sum(1), D.Z.reshape(-1, 2 * cfg.k), atol=1e-5, rtol=1e-5)


def test_features_orthonormal():
    cfg = tiny_data_config(k=5, d=10)  # 2k = d: a full orthonormal basis
    V = features(cfg, gen(2)).reshape(2 * cfg.k, cfg.d).double()
    assert_close(V @ V.T, torch.eye(2 * cfg.k, dtype=torch.float64), atol=1e-6, rtol=0)
    V2 = features(tiny_data_config(), gen(2)).reshape(8, 16).double()
    assert_close(V2 @ V2.T, torch.eye(8, dtype=torch.float64), atol=1e-6, rtol=0)


@pytest.mark.parametrize("C_p", [1, 2])
def test_noise_free_patches_carry_z_times_v(C_p):
    """Without noise, x_p = z_p v on C_p disjoint patches per present feature, the z_p of a feature
    sum to its Z, and every other patch is zero."""
    cfg = tiny_data_config(P=6 * C_p + 2, C_p=C_p, gamma=0.0, sigma_p=0.0, sigma_f=0.0, mu=0.5)
    D = _draw(cfg, 300, seed=5)
    Vf = D.V.reshape(2 * cfg.k, cfg.d)
    coef = D.X @ Vf.T  # (n, P, 2k)
    assert_close(coef @ Vf, D.X, atol=1e-5, rtol=0)  # X lies in span(V)
    assert_close(coef.sum(1), D.Z.reshape(-1, 2 * cfg.k), atol=1e-5, rtol=1e-5)
    nz = coef > 1e-6
    assert (coef > -1e-6).all()  # z_p >= 0
    assert (nz.sum(-1) <= 1).all()  # disjoint patches
    present = (D.Z > 0).reshape(-1, 2 * cfg.k)
    assert torch.equal(nz.sum(1), C_p * present.long())  # exactly C_p patches each
    # Own views both present; off-class patches counted: 2 + |V'| features per sample.
    assert (present.sum(-1) >= 2).all()
    assert torch.equal((nz.any(-1)).sum(-1), C_p * present.sum(-1))


def test_noisy_patches_carry_z_within_noise():
    """With small noise the patch carrying a feature still projects to ~Z on it (C_p = 1)."""
    cfg = tiny_data_config(gamma=0.01, sigma_p=0.01, sigma_f=0.01)
    D = _draw(cfg, 300, seed=6)
    coef = D.X @ D.V.reshape(2 * cfg.k, cfg.d).T  # (n, P, 2k)
    Z = D.Z.reshape(-1, 2 * cfg.k)
    present = Z > 0
    best = coef.amax(1)  # (n, 2k)
    tol = cfg.gamma + 6 * cfg.sigma_f
    assert ((best - Z)[present].abs() <= tol).all()
    # Absent features only show up through feature noise alpha <= gamma plus Gaussian noise.
    assert (best[~present] <= cfg.gamma + 6 * cfg.sigma_p).all()


def test_gaussian_noise_levels_per_patch_kind():
    """Two noise levels: sigma_f on feature patches, sigma_p on the rest."""
    d = 64
    # sigma_f = 0: feature patches lie exactly in span(V); pure-noise patches have the full level.
    cfg = tiny_data_config(d=d, gamma=0.0, sigma_p=0.3, sigma_f=0.0)
    D = _draw(cfg, 200, seed=7)
    Vf = D.V.reshape(2 * cfg.k, d)
    R = D.X - (D.X @ Vf.T) @ Vf  # component orthogonal to V
    rnorm = R.norm(dim=-1)  # (n, P)
    n_feat = (D.Z > 0).sum((1, 2))  # C_p = 1 patch per feature
    zero = rnorm < 1e-4
    assert torch.equal(zero.sum(-1), n_feat)
    expected = 0.3 * math.sqrt(d - 2 * cfg.k)
    assert abs(float(rnorm[~zero].mean()) - expected) < 0.1 * expected

    # sigma_p = 0: pure-noise patches are exactly zero, feature patches carry sigma_f.
    cfg = tiny_data_config(d=d, gamma=0.0, sigma_p=0.0, sigma_f=0.3)
    D = _draw(cfg, 200, seed=7)
    n_feat = (D.Z > 0).sum((1, 2))
    pnorm = D.X.norm(dim=-1)
    assert torch.equal((pnorm < 1e-6).sum(-1), cfg.P - n_feat)
    R = D.X - (D.X @ Vf.T) @ Vf
    rn = R.norm(dim=-1)[pnorm >= 1e-6]
    assert abs(float(rn.mean()) - expected) < 0.1 * expected


def test_feature_noise_alpha_bounded_by_gamma():
    """Feature noise alpha_{p,v} in [0, gamma] on every patch and feature (footnote 6)."""
    cfg = tiny_data_config(gamma=0.05, sigma_p=0.0, sigma_f=0.0)
    D = _draw(cfg, 200, seed=8)
    coef = D.X @ D.V.reshape(2 * cfg.k, cfg.d).T
    extra = coef.sum(1) - D.Z.reshape(-1, 2 * cfg.k)  # sum_p alpha_{p,v}
    assert (extra >= -1e-5).all() and (extra <= cfg.P * cfg.gamma + 1e-5).all()
    assert float(extra.mean()) == pytest.approx(cfg.P * cfg.gamma / 2, rel=0.1)


@pytest.mark.parametrize("view", ["multi", "single"])
def test_view_option(view):
    cfg = tiny_data_config(mu=0.5)
    D = _draw(cfg, 200, seed=9, view=view)
    assert bool(D.single.all()) == (view == "single")
    assert bool(D.single.any()) == (view == "single")
    if view == "multi":
        assert (D.strong == -1).all()
        assert _in(_own(D), cfg.view_low, cfg.view_high)
    else:
        assert ((D.strong == 0) | (D.strong == 1)).all()
        rows = torch.arange(len(D))
        assert _in(D.Z[rows, D.y, 1 - D.strong], cfg.rho, 2 * cfg.rho)


def test_view_option_rejects_unknown():
    cfg = tiny_data_config()
    g = gen(0)
    V = features(cfg, g)
    with pytest.raises(ValueError, match="view"):
        sample(cfg, 10, V, g, "both")
    with pytest.raises(ValueError, match="n"):
        sample(cfg, 0, V, g)


def test_mu_extremes():
    assert not _draw(tiny_data_config(mu=0.0), 200).single.any()
    assert _draw(tiny_data_config(mu=1.0), 200).single.all()


def test_deterministic_given_generator_seed():
    cfg = tiny_data_config()
    a, b, c = _draw(cfg, 50, seed=11), _draw(cfg, 50, seed=11), _draw(cfg, 50, seed=12)
    for name in ("X", "y", "single", "strong", "Z", "V"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.X, c.X)
    assert not torch.equal(a.V, c.V)


def test_independent_of_global_rng():
    cfg = tiny_data_config()
    torch.manual_seed(0)
    a = _draw(cfg, 30, seed=13)
    torch.manual_seed(1)
    b = _draw(cfg, 30, seed=13)
    assert torch.equal(a.X, b.X)


def test_to_and_len(tiny_sample):
    moved = tiny_sample.to("cpu")
    assert len(moved) == 40
    for name in ("X", "y", "single", "strong", "Z", "V"):
        assert torch.equal(getattr(moved, name), getattr(tiny_sample, name))


def test_assumption_41_data_balance_the_label_views():
    """Theorem 4's Assumption 4.1: on multi-view data sum_p z_p^q of each label view lies in
    [1, 1 + o(1)]; presets.ASSUMPTION_41 gives [1, 1.02^q] (the presets' data reach 2^q)."""
    from mvlib.presets import ASSUMPTION_41, get_preset

    for overrides, top in ((ASSUMPTION_41, 1.02), ({}, 2.0)):
        cfg = get_preset("ci", **overrides)
        g = torch.Generator().manual_seed(0)
        data = sample(cfg.data, 2000, features(cfg.data, g), g, view="multi")
        own = data.Z[torch.arange(2000), data.y] ** cfg.learner.q  # (n, 2), C_p = 1 patch
        assert cfg.data.C_p == 1 and own.min() >= 1.0
        assert own.max() <= top**cfg.learner.q and own.max() > (1 + 0.9 * (top - 1)) ** 4
    assert 1.02**4 < 1.083
