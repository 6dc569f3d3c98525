"""Helpers shared by the mvlib unit tests: tiny configurations and references written from the
paper's formulas, independently of the library code they check.

Everything is small (k=4 classes, d=16, P=8 patches) so the whole suite runs in well under a
minute on two CPU cores. (A plain module, not conftest.py, so tests can import it however pytest
is invoked: pytest puts this directory on sys.path.)
"""

from __future__ import annotations

import torch

from mvlib.data import MultiViewConfig
from mvlib.experiments import ExperimentConfig
from mvlib.model import LearnerConfig


def tiny_data_config(**kw) -> MultiViewConfig:
    base = dict(k=4, d=16, P=8, C_p=1, s=1.0, mu=0.2)
    base.update(kw)
    return MultiViewConfig(**base)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def relu_tilde_ref(z: torch.Tensor, q: int, varrho: float) -> torch.Tensor:
    """Def. 3.4 written out piecewise (differentiable, for autograd references)."""
    mid = z.clamp(min=0.0) ** q / (q * varrho ** (q - 1))
    lin = z - (1.0 - 1.0 / q) * varrho
    return torch.where(z <= 0, torch.zeros_like(z), torch.where(z <= varrho, mid, lin))


def logits_ref(W: torch.Tensor, X: torch.Tensor, q: int, varrho: float) -> torch.Tensor:
    """F_i(X) = sum_r sum_p ReLU~(<w_{i,r}, x_p>) for W (K, k, m, d), X (N, P, d) -> (K, N, k)."""
    pre = torch.einsum("kimd,npd->knpim", W, X)
    return relu_tilde_ref(pre, q, varrho).sum((2, 4))


def mean_ce_ref(F: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over samples, per member: F (K, N, k) -> (K,)."""
    return -F.log_softmax(-1).gather(-1, y.expand(F.shape[0], -1)[..., None]).squeeze(-1).mean(-1)


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1.3e-6, atol: float = 1e-5
):
    """|actual - expected| <= atol + rtol |expected| elementwise, shapes equal (in float64).

    A light stand-in for torch.testing.assert_close, whose first call imports torch.distributed
    (seconds of the suite's run time)."""
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    )
    a, e = actual.detach().double(), expected.detach().double()
    # written as "not close" so that NaN fails, unless NaN is what is expected
    bad = ~((a - e).abs() <= atol + rtol * e.abs()) & ~(a.isnan() & e.isnan())
    if bad.any():
        i = tuple(bad.nonzero()[0].tolist())
        raise AssertionError(
            f"{int(bad.sum())} of {bad.numel()} elements differ; max |diff| "
            f"{float((a - e).abs().max()):.3g}; first at {i}: {float(a[i])!r} vs {float(e[i])!r}"
        )


def tiny_experiment(**kw) -> ExperimentConfig:
    """Trains to 100% train accuracy in 150 steps (checked on several seeds, margin >= 1.3)."""
    base = dict(
        data=tiny_data_config(),
        learner=LearnerConfig(m=4, q=4, varrho=1.0, sigma0=0.5),
        N=100,
        n_test=50,
        K=3,
        eta=10.0,
        steps=150,
        students=2,
        eta_ntk=4.0,
        ntk_steps=20,
        record_every=50,
        chunk=0,
    )
    base.update(kw)
    return ExperimentConfig(**base)
