"""The headline table on real images (the paper's Figure 6 and Figure 8).

Allen-Zhu & Li measure ensembles, knowledge distillation and self-distillation of ResNets on
CIFAR-10. This module runs the same methods on real images (:mod:`mvlib.image_data`) with the
book's losses (:mod:`mvlib.losses`) and distillation targets (:mod:`mvlib.teachers`):

- networks: a small CNN for digits, a small ResNet (GroupNorm, so it batches) for CIFAR-10;
- training: K networks' parameters stacked along a leading axis and trained in one batch
  (``torch.func.functional_call`` under ``vmap``) by SGD with momentum and a cosine schedule;
  the objective gives dL/dF for the logits F: (K, n, k) and autograd carries it to the weights;
- the methods of the table: single, ensemble, distill (and its controls), self-distillation with
  its continuation baseline, training the sum and the average, an ensemble of distilled students;
- a multi-view probe: occlusion maps, which input regions each model relies on (cf. Figure 5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mvlib import losses, teachers
from mvlib.cache import cached
from mvlib.config import default_device, rng
from mvlib.image_data import (
    METHODS,
    STREAM_AVERAGE,
    STREAM_BATCHES,
    STREAM_MEMBERS,
    STREAM_PERMUTE,
    STREAM_STUDENTS,
    STREAM_SUM,
    ImageConfig,
    ImageData,
    augment,
    data_dir,
    get_preset,
    load,
)
from mvlib.model import Loss
from mvlib.train import EXPLODE_FACTOR, EXPLODE_FLOOR, TrainingDiverged, TrainingExploded

# Read through this module by the real-data chapter.
__all__ = [
    "METHODS",
    "STREAM_MEMBERS",
    "STREAM_STUDENTS",
    "ImageConfig",
    "ImageData",
    "augment",
    "data_dir",
    "default_device",
    "get_preset",
    "load",
]

# ---------------------------------------------------------------------------------------------
# networks


class SmallCNN(nn.Sequential):
    """Two 3x3 convolutions (width w, 2w) with ReLU, a 2x2 max-pool and a linear layer:
    X (n, C, H, W) -> logits (n, k). For the 8x8 digits."""

    def __init__(self, C: int, H: int, k: int, w: int):
        super().__init__(
            nn.Conv2d(C, w, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(2 * w * (H // 2) ** 2, k),
        )


class Block(nn.Module):
    """A basic residual block (He et al. 2016) with GroupNorm in place of BatchNorm: its
    statistics are per sample, so K models batch under ``vmap`` without running buffers."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = nn.GroupNorm(min(8, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = nn.GroupNorm(min(8, c_out), c_out)
        self.skip = (
            nn.Identity()
            if stride == 1 and c_in == c_out
            else nn.Conv2d(c_in, c_out, 1, stride, bias=False)
        )

    def forward(self, x):
        h = torch.relu(self.norm1(self.conv1(x)))
        return torch.relu(self.norm2(self.conv2(h)) + self.skip(x))


class SmallResNet(nn.Sequential):
    """ResNet-8 for 32x32 images: a stem, three stages (w, 2w, 4w) of one block each, global
    average pooling and a linear layer (the paper's ResNet-28-2 is deeper and wider)."""

    def __init__(self, C: int, k: int, w: int):
        super().__init__(
            nn.Conv2d(C, w, 3, 1, 1, bias=False),
            nn.GroupNorm(min(8, w), w),
            nn.ReLU(),
            Block(w, w, 1),
            Block(w, 2 * w, 2),
            Block(2 * w, 4 * w, 2),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(4 * w, k),
        )


def network(cfg: ImageConfig, data: ImageData) -> nn.Module:
    """The architecture of ``cfg`` for the shape of ``data`` (the template all members share)."""
    _, C, H, _ = data.X_train.shape
    return (
        SmallCNN(C, H, data.k, cfg.width)
        if cfg.arch == "cnn"
        else SmallResNet(C, data.k, cfg.width)
    )


@dataclass
class Models:
    """K networks of one architecture: ``params`` {name: (K, ...)} stacked along axis 0."""

    net: nn.Module = field(repr=False)
    params: dict[str, torch.Tensor]

    @property
    def K(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits of every model, X: (n, C, H, W) -> (K, n, k), differentiable."""
        call = lambda p, x: functional_call(self.net, p, (x,))  # noqa: E731
        return vmap(call, in_dims=(0, None))(self.params, X)

    @torch.no_grad()
    def logits(self, X: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
        """Logits (K, n, k) evaluated in chunks of samples."""
        return torch.cat([self.forward(X[i : i + chunk]) for i in range(0, len(X), chunk)], 1)

    def select(self, members) -> Models:
        return Models(self.net, {n: p[members] for n, p in self.params.items()})

    def detached(self) -> Models:
        return Models(self.net, {n: p.detach().clone() for n, p in self.params.items()})


def init(
    cfg: ImageConfig, data: ImageData, seed: int, stream: int, K: int, offset: int = 0
) -> Models:
    """K freshly initialised networks (PyTorch's default initialisation); model j's weights
    depend only on (seed, stream, offset + j), not on K, so batched and one-at-a-time agree."""
    template = network(cfg, data).to(data.X_train.device)
    nets = []
    for j in range(K):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(rng(seed, stream).initial_seed() * 1000 + offset + j)
            nets.append(network(cfg, data))
    params, _ = stack_module_state(nets)
    return Models(template, {n: p.detach().to(data.X_train.device) for n, p in params.items()})


# ---------------------------------------------------------------------------------------------
# training


def scaled(loss: Loss, c: float) -> Loss:
    """``loss`` with its gradient times c: under SGD with momentum, the same as a step c times
    larger with a weight decay c times smaller."""

    def wrapped(F, s):
        value, g = loss(F, s)
        return value, c * g

    return wrapped


def stacked(parts: list[tuple[int, Loss]]) -> Loss:
    """One loss for models trained side by side: the first n_1 models of F (K, n, k) with loss 1,
    the next n_2 with loss 2, ... (``parts`` = [(n_1, loss_1), ...])."""

    def wrapped(F, s):
        out, start = [], 0
        for n_j, loss in parts:
            out.append(loss(F[start : start + n_j], s))
            start += n_j
        return torch.cat([v for v, _ in out]), torch.cat([g for _, g in out])

    return wrapped


def cosine(lr: float, t: int, steps: int) -> float:
    """The step size at step t of ``steps``: lr (1 + cos(pi t / steps)) / 2."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * t / steps))


def fit(
    cfg: ImageConfig,
    models: Models,
    data: ImageData,
    loss: Loss,
    steps: int,
    seed: int,
    lr: float | None = None,
) -> Models:
    """``steps`` steps of SGD with momentum and weight decay, each model on its own parameters,
    on the mean over a batch of ``loss``, from step size ``lr`` (default ``cfg.lr``) down a
    cosine schedule. Full batch when ``cfg.batch_size`` is 0.
    Raises :class:`TrainingDiverged` on a non-finite loss, :class:`TrainingExploded` on a
    runaway one."""
    models = models.detached()
    params = [p.requires_grad_() for p in models.params.values()]
    lr = cfg.lr if lr is None else lr
    opt = torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    N, g_batch = len(data.y_train), rng(seed, STREAM_BATCHES)
    full = cfg.batch_size == 0 or cfg.batch_size >= N
    first = None
    for t in range(steps):
        s = slice(None) if full else torch.randint(0, N, (cfg.batch_size,), generator=g_batch)
        X = data.X_train[s]
        if cfg.augment:
            X = augment(X, g_batch)
        s = s if full else s.to(X.device)
        F = models.forward(X)  # (K, n, k)
        value, dLdF = loss(F.detach(), s)
        first = value.clamp(min=EXPLODE_FLOOR) if first is None else first
        if not torch.isfinite(value).all():
            raise TrainingDiverged(f"loss became {value.tolist()} at step {t}: lower lr (now {lr})")
        if (value > EXPLODE_FACTOR * first).any():
            raise TrainingExploded(
                f"loss grew from {first.tolist()} to {value.tolist()} by "
                f"step {t}: lower lr (now {lr})"
            )
        for group in opt.param_groups:
            group["lr"] = cosine(lr, t, steps)
        opt.zero_grad()
        F.backward(dLdF / F.shape[1])
        opt.step()
    return models.detached()


def distill_loss(cfg: ImageConfig, y: torch.Tensor, G: torch.Tensor) -> Loss:
    """Hinton et al. (2015) towards teacher logits G: (K or 1, N, k) on the training set."""
    return losses.distill_hinton(y, G, cfg.T, cfg.kd_weight)


@dataclass
class SeedModels:
    """Every trained model of one seed: the K members, ``cfg.students`` students per target
    (by :mod:`mvlib.teachers` suffix), members 1..K-1 after self-distillation from member 0 and
    after as many CE steps, and the trained sum and average."""

    members: Models
    students: dict[str, Models]
    self_distill: Models
    self_distill_continue: Models
    train_sum: Models
    train_average: Models


def train_all(cfg: ImageConfig, data: ImageData, seed: int) -> SeedModels:
    """Every method of the table on one seed, in three batched stages: (1) the K members, the
    trained sum and the trained average side by side; (2) the students of the ensemble and of
    its controls, sharing their initialisations (paired); (3) members 1..K-1 continued by
    self-distillation from member 0 and, from the same weights, by cross-entropy alone."""
    y, K, S = data.y_train, cfg.K, cfg.students
    ce = losses.cross_entropy(y)
    inits = [
        init(cfg, data, seed, stream, K) for stream in (STREAM_MEMBERS, STREAM_SUM, STREAM_AVERAGE)
    ]
    # the average's members get dL/dF, not dL/dF / K: a step K times larger, so that each
    # member moves as fast as a single model at the same loss gradient
    one = fit(
        cfg,
        _cat(inits),
        data,
        stacked([(K, ce), (K, losses.summed(ce, K)), (K, scaled(losses.averaged(ce, K), K))]),
        cfg.steps,
        seed,
    )
    members, tsum, tavg = (one.select(slice(j * K, (j + 1) * K)) for j in range(3))

    F = members.logits(data.X_train)  # (K, N, k)
    targets = teachers.targets(F.mean(0, keepdim=True), y, rng(seed, STREAM_PERMUTE))
    G = torch.cat([G_t.expand(S, -1, -1) for G_t in targets.values()])  # (4S, N, k)
    s0 = init(cfg, data, seed, STREAM_STUDENTS, S)
    st = fit(cfg, _cat([s0] * len(targets)), data, distill_loss(cfg, y, G), cfg.steps, seed)
    students = {
        f"distill{suffix}": st.select(slice(j * S, (j + 1) * S)) for j, suffix in enumerate(targets)
    }

    rest = members.select(slice(1, K))
    two = fit(
        cfg,
        _cat([rest, rest]),
        data,
        stacked([(K - 1, distill_loss(cfg, y, F[:1])), (K - 1, ce)]),
        cfg.sd_steps,
        seed,
        lr=cfg.sd_lr,
    )
    sd, cont = two.select(slice(0, K - 1)), two.select(slice(K - 1, 2 * K - 2))
    return SeedModels(members, students, sd, cont, tsum, tavg)


# What the cache stores of a SeedModels: each field's parameters ({name: (K, ...)}, on the CPU), the
# students' by target suffix; the networks are rebuilt from the config when read.
def _weights(run: SeedModels) -> dict:
    def cpu(m: Models) -> dict[str, torch.Tensor]:
        return {n: p.cpu() for n, p in m.params.items()}

    out = {}
    for f in fields(SeedModels):
        v = getattr(run, f.name)
        out[f.name] = {s: cpu(m) for s, m in v.items()} if isinstance(v, dict) else cpu(v)
    return out


@cached
def _run_unit(cfg: ImageConfig, seed: int) -> dict:
    return _weights(train_all(cfg, load(cfg, seed), seed))


def trained(cfg: ImageConfig, seed: int, data: ImageData | None = None) -> SeedModels:
    """:func:`train_all` on the data of ``seed`` (:func:`load`), cached (:mod:`mvlib.cache`,
    keyed without ``seeds`` and ``patch``, which training does not read): the chapter, nbval
    and the book build train it once. ``data`` only sets the device."""
    data = data or load(cfg, seed)
    template = network(cfg, data).to(data.X_train.device)

    def models(params: dict[str, torch.Tensor]) -> Models:
        return Models(template, {n: p.to(data.X_train.device) for n, p in params.items()})

    w = _run_unit(replace(cfg, seeds=ImageConfig.seeds, patch=ImageConfig.patch), seed)
    return SeedModels(
        **{
            f.name: {s: models(p) for s, p in w[f.name].items()}
            if f.name == "students"
            else models(w[f.name])
            for f in fields(SeedModels)
        }
    )


def _cat(parts: list[Models]) -> Models:
    """Several stacks of one architecture as one stack, in order."""
    return Models(
        parts[0].net, {n: torch.cat([m.params[n] for m in parts]) for n in parts[0].params}
    )


# ---------------------------------------------------------------------------------------------
# evaluation


def accuracy(F: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """Test accuracy of each model, F: (K, n, k) -> (K,); a tie for the top logit is an error."""
    top = F.max(-1, keepdim=True).values
    right = F.gather(-1, y.expand(F.shape[0], -1)[..., None]) == top
    unique = (F == top).sum(-1) == 1
    return (right.squeeze(-1) & unique).float().mean(-1).cpu().numpy()


def table(cfg: ImageConfig, run: SeedModels, data: ImageData) -> dict[str, np.ndarray]:
    """Test accuracy by method (Figure 6 and 8): per model for single models and students,
    one value for an output average. ``ensemble_of_singles`` averages the first
    ``cfg.students`` members, ``ensemble_of_students`` the real teacher's students."""
    X, y, S = data.X_test, data.y_test, cfg.students
    F = run.members.logits(X)
    out = {"single": accuracy(F, y), "ensemble": accuracy(F.mean(0, keepdim=True), y)}
    out.update({name: accuracy(m.logits(X), y) for name, m in run.students.items()})
    out["self_distill"] = accuracy(run.self_distill.logits(X), y)
    out["self_distill_continue"] = accuracy(run.self_distill_continue.logits(X), y)
    out["train_sum"] = accuracy(run.train_sum.logits(X).sum(0, keepdim=True), y)
    out["train_average"] = accuracy(run.train_average.logits(X).mean(0, keepdim=True), y)
    out["ensemble_of_singles"] = accuracy(F[:S].mean(0, keepdim=True), y)
    out["ensemble_of_students"] = accuracy(
        run.students["distill"].logits(X).mean(0, keepdim=True), y
    )
    return out


# ---------------------------------------------------------------------------------------------
# the multi-view probe


def occlusion(F_of, X: torch.Tensor, y: torch.Tensor, patch: int) -> torch.Tensor:
    """Occlusion maps (Zeiler & Fergus 2014): for each image and each square patch of side
    ``patch``, the drop in the true class's log-probability when the patch is set to 0 (the
    training mean). ``F_of``: X (n, C, H, W) -> logits (M, n, k). Returns (M, n, P), P the
    number of patches, in row-major order."""
    _, _, H, W = X.shape

    def logp(Xs):
        lp = F_of(Xs).log_softmax(-1)
        return lp.gather(-1, y.expand(lp.shape[0], -1)[..., None]).squeeze(-1)  # (M, n)

    base, drops = logp(X), []
    for r in range(0, H, patch):
        for c in range(0, W, patch):
            Xo = X.clone()
            Xo[..., r : r + patch, c : c + patch] = 0.0
            drops.append(base - logp(Xo))
    return torch.stack(drops, -1)


def map_correlation(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Pearson correlation, image by image, of two models' occlusion maps: (n, P) -> (n,).
    A constant map correlates 0 with anything."""
    a, b = A - A.mean(-1, keepdim=True), B - B.mean(-1, keepdim=True)
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp(min=1e-12)


def seed_agreement(M: torch.Tensor) -> np.ndarray:
    """Mean over images of the map correlation of every pair of distinct models, M: (K, n, P)
    -> (K (K - 1) / 2,): how far different seeds rely on the same regions."""
    K = M.shape[0]
    return np.array(
        [float(map_correlation(M[i], M[j]).mean()) for i in range(K) for j in range(i + 1, K)]
    )


def union_agreement(M: torch.Tensor, members: torch.Tensor) -> np.ndarray:
    """How well each model's maps match the union of the members, M: (S, n, P),
    members: (K, n, P) -> (S,). The union U_j is the mean map of the members other than j;
    model s scores the mean over j of its map correlation with U_j. Pass M = members to
    score each member j against U_j, the union of the others."""
    K = members.shape[0]
    U = (members.sum(0) - members) / (K - 1)  # (K, n, P)
    if M is members:
        return np.array([float(map_correlation(M[j], U[j]).mean()) for j in range(K)])
    return np.array(
        [np.mean([float(map_correlation(m, U[j]).mean()) for j in range(K)]) for m in M]
    )
