"""The learner (Def. 3.4): F_i(X) = sum_{r in [m]} sum_{p in [P]} ReLU~(<w_{i,r}, x_p>).

Weights carry a leading member axis, ``W: (K, k, m, d)``, so K independently initialised models
(an ensemble, or several students) are one batched computation: every forward and backward pass
is two matrix products over all members, classes and neurons at once.

Gradients are closed-form (Section 3.2, "Notations"):
``grad_{w_{i,r}} L = sum_n dL/dF_i(X_n) * sum_p ReLU~'(<w_{i,r}, x_{n,p}>) x_{n,p}``,
which saves autograd's stored activations and runs about 5x faster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mvlib._validate import check_range

# A loss maps logits F (K, n, k) of samples ``idx`` to (sum of losses over the n samples (K,),
# d(sum)/dF (K, n, k)). Sums, not means: the trainer splits samples into chunks.
Loss = Callable[[torch.Tensor, slice], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class LearnerConfig:
    """The learner of Def. 3.4 and its initialisation w ~ N(0, sigma0^2 I) (Section 3.2)."""

    m: int = 3  # neurons per class
    q: int = 4  # smoothing power
    varrho: float = 1.0  # smoothing threshold
    sigma0: float = 0.04  # init scale (the paper's 1/sqrt(k) is not small next to varrho at k=10)

    def __post_init__(self):
        check_range("m", self.m, 1, None, integer=True)
        check_range("q", self.q, 2, None, integer=True)
        check_range("varrho", self.varrho, 1e-6, None)
        check_range("sigma0", self.sigma0, 1e-8, None)


def _srelu(z: torch.Tensor, q: int, varrho: float, inplace: bool = False):
    """(ReLU~(z), ReLU~'(z)) in few passes and buffers: u = clamp(z, 0, varrho) / varrho,
    ReLU~'(z) = u^(q-1), ReLU~(z) = (varrho / q) u^(q-1) u + [z - varrho]^+.
    With ``inplace`` the value overwrites z (the caller's scratch pre-activations)."""
    u = z.clamp(0.0, varrho)
    if varrho != 1.0:
        u.div_(varrho)
    if q == 1:
        grad = torch.ones_like(u)
    elif q == 2:
        grad = u
    else:
        grad = u * u
        for _ in range(q - 3):
            grad.mul_(u)
    value = z.sub_(varrho) if inplace else z - varrho
    value.clamp_(min=0.0).addcmul_(grad, u, value=varrho / q)
    return value, grad


def smoothed_relu_and_grad(z: torch.Tensor, q: int, varrho: float):
    """(ReLU~(z), ReLU~'(z)) of Def. 3.4, sharing the work: on [0, varrho],
    ReLU~(z) = z^q / (q varrho^(q-1)) = ReLU~'(z) z / q with ReLU~'(z) = (z / varrho)^(q-1);
    above varrho, ReLU~(z) = z - (1 - 1/q) varrho and ReLU~'(z) = 1."""
    return _srelu(z, q, varrho)


def smoothed_relu(z: torch.Tensor, q: int, varrho: float) -> torch.Tensor:
    """ReLU~ of Def. 3.4: 0 for z <= 0, z^q / (q varrho^(q-1)) on [0, varrho],
    z - (1 - 1/q) varrho above."""
    return _srelu(z, q, varrho)[0]


def smoothed_relu_grad(z: torch.Tensor, q: int, varrho: float) -> torch.Tensor:
    """ReLU~'(z) = (clamp(z, 0, varrho) / varrho)^(q-1) of Def. 3.4."""
    return _srelu(z, q, varrho)[1]


def init_weights(
    cfg: LearnerConfig, K: int, k: int, d: int, generator: torch.Generator, device=None
) -> torch.Tensor:
    """K independent initialisations W^(0): (K, k, m, d), entries N(0, sigma0^2)."""
    check_range("K", K, 1, None, integer=True)
    W = cfg.sigma0 * torch.randn(K, k, cfg.m, d, generator=generator)
    return W.to(device)


def _chunks(N: int, chunk: int | None):
    step = N if not chunk else chunk
    return [slice(a, min(a + step, N)) for a in range(0, N, step)]


# On CPU, samples are processed in blocks whose (rows, K*k*m) scratch buffers (pre-activations,
# ReLU~', their product with dL/dF) stay cache-resident and are recycled by the allocator: one
# pass over a block in cache is several times faster than over a fresh multi-MB buffer, which
# also page-faults on every step. On CUDA a block is the whole chunk (fewest launches).
_CPU_BLOCK_ELEMS = 1 << 19


def _blocks(N: int, per_sample: int, chunk: int | None, device: torch.device):
    step = N if not chunk else min(chunk, N)
    if device.type == "cpu":
        step = min(step, max(1, _CPU_BLOCK_ELEMS // max(per_sample, 1)))
    return _chunks(N, step)


class Network:
    """The two-layer convolutional learner of Def. 3.4 over a fixed input set X: (N, P, d).

    ``chunk`` bounds memory: at most ``chunk`` samples' (chunk*P, K*k*m) activations exist at once
    (0 or None: all samples; on CPU blocks are smaller still, see ``_CPU_BLOCK_ELEMS``)."""

    def __init__(self, cfg: LearnerConfig, chunk: int | None = None):
        self.cfg, self.chunk = cfg, chunk

    def select(self, members: slice) -> Network:
        """The learner restricted to some members (it holds no per-member state)."""
        return self

    def _pre(self, W, X):
        """<w_{i,r}, x_p> for every member, class, neuron: (n*P, K*k*m)."""
        return X.reshape(-1, X.shape[-1]) @ W.reshape(-1, W.shape[-1]).T

    def _sum(self, A, W, n):
        """Sum over patches p and neurons r: (n*P, K*k*m) -> (K, n, k)."""
        K, k, m, _ = W.shape
        # patches first: a reduction over a middle axis with a long contiguous inner axis
        # vectorises; summing (1, 4) at once runs ~10x slower (inner axis of length m).
        return A.view(n, -1, K * k * m).sum(1).view(n, K, k, m).sum(-1).permute(1, 0, 2)

    def _blocks(self, W, X):
        return _blocks(X.shape[0], X.shape[1] * W[..., 0].numel(), self.chunk, X.device)

    def logits(self, W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """F(X): (K, N, k)."""
        q, rho = self.cfg.q, self.cfg.varrho
        K, k, m, d = W.shape
        Wt = W.reshape(-1, d).T
        F = torch.empty(K, X.shape[0], k, dtype=W.dtype, device=W.device)
        for s in self._blocks(W, X):
            Xs = X[s]
            A, _ = _srelu(Xs.reshape(-1, d) @ Wt, q, rho, inplace=True)
            F[:, s] = self._sum(A, W, Xs.shape[0])
        return F

    def loss_and_grad(self, W: torch.Tensor, X: torch.Tensor, loss: Loss):
        """Mean loss over X (K,) and its gradient w.r.t. W (K, k, m, d)."""
        q, rho = self.cfg.q, self.cfg.varrho
        K, k, m, d = W.shape
        N = X.shape[0]
        Wt = W.reshape(-1, d).T
        total = torch.zeros(K, dtype=W.dtype, device=W.device)
        grad = torch.zeros(K * k * m, d, dtype=W.dtype, device=W.device)
        for s in self._blocks(W, X):
            Xs = X[s].reshape(-1, d)
            n = Xs.shape[0] // X.shape[1]
            A, D = _srelu(
                Xs @ Wt, q, rho, inplace=True
            )  # (n*P, K*k*m) each, A over the pre-activations
            value, G = loss(self._sum(A, W, n), s)  # G: (K, n, k)
            # dL/dF per (sample, member, class), repeated over neurons: (n, 1, K*k*m), so the
            # broadcast multiply runs along a long contiguous axis
            Gr = G.permute(1, 0, 2).unsqueeze(-1).expand(n, K, k, m).reshape(n, 1, -1)
            D.view(n, -1, K * k * m).mul_(Gr)
            grad.addmm_(D.T, Xs, alpha=1.0 / N)
            total += value
        return total / N, grad.view(K, k, m, d)


class Linearised:
    """The NTK (linearised) learner around W0 (Jacot et al. 2018):
    ``f(W) = f(W0) + <W - W0, grad_W f(W0, X)>``.

    ``grad_{w_{i,r}} F_i(W0, X) = sum_p ReLU~'(<w0_{i,r}, x_p>) x_p`` are fixed random features;
    training changes only the linear weights on them. For the training set they are stored as
    J: (K*k, N, m*d), one matrix per (member, class), so a step is two batched mat-vecs.
    """

    def __init__(
        self, cfg: LearnerConfig, W0: torch.Tensor, X: torch.Tensor, chunk: int | None = None
    ):
        self.cfg, self.W0, self.X, self.chunk = cfg, W0, X, chunk
        self.net = Network(cfg, chunk)
        self.F0 = self.net.logits(W0, X)
        self.J = self.features(X)

    def select(self, members: slice) -> Linearised:
        """The linearisations of some members only (sharing the stored features)."""
        K, k = self.W0.shape[:2]
        sub = object.__new__(Linearised)
        sub.cfg, sub.X, sub.chunk, sub.net = self.cfg, self.X, self.chunk, self.net
        sub.W0, sub.F0 = self.W0[members], self.F0[members]
        sub.J = self.J.view(K, k, *self.J.shape[1:])[members].reshape(-1, *self.J.shape[1:])
        return sub

    def features(self, X: torch.Tensor) -> torch.Tensor:
        """J = grad_W F(W0, X), laid out (K*k, N, m*d)."""
        K, k, m, d = self.W0.shape
        N = X.shape[0]
        D = smoothed_relu_grad(self.net._pre(self.W0, X), self.cfg.q, self.cfg.varrho)
        J = torch.einsum("npj,npd->jnd", D.view(N, X.shape[1], -1), X)  # (K*k*m, N, d)
        return J.view(K * k, m, N, d).transpose(1, 2).reshape(K * k, N, m * d)

    def kernel_scale(self) -> torch.Tensor:
        """Mean diagonal of the tangent kernel, E_{n,i} sum_r ||grad_{w_{i,r}} F_i(X_n)||^2, per
        member (K,). GD on the linearised model is stable for steps up to ~1/scale; raw gradients
        are ~(sigma0 |x| / varrho)^(q-1), so a step that suits the network would not move it."""
        K = self.W0.shape[0]
        return self.J.pow(2).sum(-1).view(K, -1).mean(-1)

    def _apply(self, J, delta):
        """<W - W0, J> per sample: (K*k, N, m*d) x (K, k, m, d) -> (K, N, k)."""
        K, k = delta.shape[:2]
        out = torch.bmm(delta.reshape(K * k, 1, -1), J.transpose(1, 2))  # (K*k, 1, N)
        return out.view(K, k, -1).transpose(1, 2)

    def logits(self, W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """f(W; X): (K, N, k); the stored features serve the training set."""
        delta = W - self.W0
        if X is self.X:
            return self.F0 + self._apply(self.J, delta)
        return self.net.logits(self.W0, X) + torch.cat(
            [self._apply(self.features(X[s]), delta) for s in _chunks(X.shape[0], self.chunk)], 1
        )

    def loss_and_grad(self, W: torch.Tensor, X: torch.Tensor, loss: Loss):
        """Same contract as Network.loss_and_grad; X must be the training set the model was
        built on."""
        if X is not self.X:
            raise ValueError("a Linearised model trains only on the inputs it was built on")
        K, k, m, d = W.shape
        N = self.J.shape[1]
        value, G = loss(self.logits(W, X), slice(0, N))
        grad = torch.bmm(G.transpose(1, 2).reshape(K * k, 1, N), self.J)  # (K*k, 1, m*d)
        return value / N, grad.view(K, k, m, d) / N
