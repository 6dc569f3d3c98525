"""The multi-view data distribution (Definitions 3.1 and 3.3).

Every class ``j in [k]`` owns two orthonormal features ``v_{j,1}, v_{j,2}`` (the *views*).
A sample ``X in R^{P x d}`` is ``P`` patches; each feature present in ``X`` occupies ``C_p``
disjoint patches ``x_p = z_p v + noise``. Multi-view samples carry both views of their class,
single-view samples (a fraction ``mu``) carry one strong view and a faint trace ``~rho`` of the
other. Off-class features appear with probability ``s/k`` each, as *feature noise* that the
ensemble's soft labels later expose as dark knowledge.

Departure from the letter of Def. 3.1 (see the book's setup chapter): the Gaussian noise has two
levels, ``sigma_p`` on pure-noise patches and ``sigma_f`` on feature patches. One isotropic level
either drowns the lottery (large) or makes single-view samples impossible to memorise (small).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from mvlib._validate import check_range


@dataclass(frozen=True)
class MultiViewConfig:
    """Parameters of the distribution D (Def. 3.1, 3.3); ranges are checked on construction.

    Coefficient sums ``sum_{p in P_v(X)} z_p`` are drawn uniformly from
    ``[view_low, view_high]`` for a class's own views (the paper's ``[1, O(1)]``),
    ``[off_low, off_high]`` for off-class features of multi-view data (``[Omega(1), 0.4]``),
    ``[rho, 2 rho]`` for the weak view and ``[Gamma/2, Gamma]`` for off-class features of
    single-view data.
    """

    k: int = 10  # classes
    d: int = 200  # patch dimension
    P: int = 16  # patches per sample
    C_p: int = 1  # patches per feature
    s: float = 2.0  # sparsity: each off-class feature present w.p. s/k
    mu: float = 0.1  # fraction of single-view data
    rho: float = 0.05  # weak-view level of single-view data
    Gamma: float = 0.2  # off-class level of single-view data
    gamma: float = 0.01  # feature noise alpha_{p,v} ~ U[0, gamma] on every patch
    sigma_p: float = 0.14  # Gaussian noise on pure-noise patches
    sigma_f: float = 0.02  # Gaussian noise on feature patches
    view_low: float = 1.0
    view_high: float = 2.0
    off_low: float = 0.2
    off_high: float = 0.4

    def __post_init__(self):
        check_range("k", self.k, 2, None, integer=True)
        check_range(
            "d",
            self.d,
            2 * self.k,
            None,
            integer=True,
            why="2k orthonormal features must fit in R^d",
        )
        check_range("C_p", self.C_p, 1, None, integer=True)
        check_range("s", self.s, 0.0, float(self.k - 1))
        need = self.C_p * (2 + math.ceil(2 * self.s))
        check_range(
            "P",
            self.P,
            need,
            None,
            integer=True,
            why="C_p*(2 + ceil(2s)) patches are needed for both views and the expected "
            "off-class features",
        )
        check_range("mu", self.mu, 0.0, 1.0)
        check_range("rho", self.rho, 0.0, 0.5)
        check_range("Gamma", self.Gamma, 0.0, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("sigma_p", self.sigma_p, 0.0, None)
        check_range("sigma_f", self.sigma_f, 0.0, None)
        check_range("view_low", self.view_low, 0.0, None)
        check_range("view_high", self.view_high, self.view_low, None)
        check_range("off_low", self.off_low, 0.0, None)
        check_range("off_high", self.off_high, self.off_low, None)

    @property
    def max_off_features(self) -> int:
        """Off-class features that fit in the patches left after the two own views."""
        return self.P // self.C_p - 2


@dataclass
class MultiViewData:
    """A sample of D. Shapes: ``X (N, P, d)``, ``y (N,)``, ``single (N,)`` bool,
    ``strong (N,)`` the strong view ``l_hat - 1 in {0, 1}`` of single-view samples (-1 for
    multi-view), ``Z (N, k, 2)`` the coefficient sum of every feature (0 where absent),
    ``V (k, 2, d)`` the features."""

    X: torch.Tensor
    y: torch.Tensor
    single: torch.Tensor
    strong: torch.Tensor
    Z: torch.Tensor
    V: torch.Tensor

    def __len__(self) -> int:
        return self.y.shape[0]

    def to(self, device) -> MultiViewData:
        return MultiViewData(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})


def features(cfg: MultiViewConfig, generator: torch.Generator) -> torch.Tensor:
    """Orthonormal features V: (k, 2, d), the rows of a random orthogonal matrix."""
    G = torch.randn(cfg.d, 2 * cfg.k, generator=generator, dtype=torch.float64)
    Q, _ = torch.linalg.qr(G)
    return Q.T.reshape(cfg.k, 2, cfg.d).to(torch.float32)


def _uniform(shape, low, high, g):
    return low + (high - low) * torch.rand(shape, generator=g)


def sample(
    cfg: MultiViewConfig,
    n: int,
    V: torch.Tensor,
    generator: torch.Generator,
    view: str | None = None,
) -> MultiViewData:
    """Draw ``n`` samples of D (Def. 3.3): single-view w.p. ``mu``, or only one kind when
    ``view`` is ``"multi"`` or ``"single"`` (the split test sets)."""
    check_range("n", n, 1, None, integer=True)
    if view not in (None, "multi", "single"):
        raise ValueError(f"view must be None, 'multi' or 'single', got {view!r}")
    g, k, P, C_p = generator, cfg.k, cfg.P, cfg.C_p
    y = torch.randint(k, (n,), generator=g)
    if view is None:
        single = torch.rand(n, generator=g) < cfg.mu
    else:
        single = torch.full((n,), view == "single")
    strong = torch.where(single, torch.randint(2, (n,), generator=g), torch.full((n,), -1))

    # Coefficient sums Z (n, k, 2) of every feature, Def. 3.1 step 4.
    own = _uniform((n, 2), cfg.view_low, cfg.view_high, g)
    weak = _uniform((n, 2), cfg.rho, 2 * cfg.rho, g)
    is_weak = single[:, None] & (torch.arange(2)[None, :] != strong[:, None])
    own = torch.where(is_weak, weak, own)
    off = torch.where(
        single[:, None, None],
        _uniform((n, k, 2), cfg.Gamma / 2, cfg.Gamma, g),
        _uniform((n, k, 2), cfg.off_low, cfg.off_high, g),
    )
    present = torch.rand(n, k, 2, generator=g) < cfg.s / k  # step 1: V'(X)
    rows = torch.arange(n)
    present[rows, y] = False
    # At most P/C_p - 2 off-class features fit; drop the (rare) excess in random order.
    order = torch.rand(n, 2 * k, generator=g).masked_fill(~present.view(n, 2 * k), 2.0)
    rank = order.argsort(1).argsort(1)
    present &= (rank < cfg.max_off_features).view(n, k, 2)
    Z = torch.where(present, off, torch.zeros(()))
    Z[rows, y] = own

    # Step 2: disjoint patches. A random permutation of the patches; the two own views take the
    # first 2*C_p slots and present off-class features the next ones, C_p each.
    perm = torch.rand(n, P, generator=g).argsort(1)
    slot = torch.full((n, k, 2), -1, dtype=torch.long)
    slot[rows, y] = torch.tensor([0, 1])
    off_rank = present.view(n, -1).cumsum(1).view(n, k, 2) + 1  # 2, 3, ... for present ones
    slot = torch.where(present, off_rank, slot)
    # Split each sum over its C_p patches with Dirichlet(1) weights.
    split = -torch.log(torch.rand(n, k, 2, C_p, generator=g))
    split = split / split.sum(-1, keepdim=True)
    coef = torch.zeros(n, P, k, 2)  # z_p of feature (j, l) at patch p
    has = slot >= 0
    idx_n, idx_j, idx_l = has.nonzero(as_tuple=True)
    for c in range(C_p):
        p = perm[idx_n, slot[idx_n, idx_j, idx_l] * C_p + c]
        coef[idx_n, p, idx_j, idx_l] = (Z * split[..., c])[idx_n, idx_j, idx_l]
    feature_patch = (coef.view(n, P, -1) > 0).any(-1)

    # Noise (footnote 6): feature noise alpha ~ U[0, gamma] on every feature, plus Gaussian noise.
    coef = coef + cfg.gamma * torch.rand(n, P, k, 2, generator=g)
    sigma = torch.where(feature_patch, cfg.sigma_f, cfg.sigma_p)
    X = coef.view(n, P, 2 * k) @ V.view(2 * k, cfg.d)
    X = X + sigma[..., None] * torch.randn(n, P, cfg.d, generator=g)
    return MultiViewData(X=X, y=y, single=single, strong=strong, Z=Z, V=V)
