"""The paper's Figures 6, 8 and 9 on real images.

Allen-Zhu & Li measure ensembles, knowledge distillation and self-distillation of ResNets on
CIFAR-10 and CIFAR-100. This module runs the same methods on real images
(:mod:`mvlib.image_data`: Fashion-MNIST, or CIFAR-10) with the book's losses
(:mod:`mvlib.losses`) and distillation targets (:mod:`mvlib.teachers`):

- networks: a LeNet-style CNN, or a small ResNet (GroupNorm, so K of them batch);
- training: K networks' parameters stacked along a leading axis (``functional_call``; under
  ``vmap`` on a GPU) by SGD with momentum and a cosine schedule; the objective gives dL/dF for
  the logits F: (K, n, k) and autograd carries it to the weights;
- Figure 6's methods: single, ensemble, distill (and its controls, matched in probability),
  the born-again student, self-distillation with its continuation, the trained sum and average;
  Figure 8's ensemble of distilled students; Figure 9's heads on a thinned intermediate layer;
- a shipped sweep of them (:func:`sweep`, ``python -m mvlib images``), read back per seed
  (:func:`seed_frame`) for the claims of :data:`mvlib.claims.REAL_CLAIMS`;
- a multi-view probe: occlusion maps, which input regions each model relies on (cf. Figure 5).
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from mvlib import losses, teachers
from mvlib.cache import cached, code_hash
from mvlib.config import default_device, rng
from mvlib.image_data import (
    METHODS,
    STREAM_AVERAGE,
    STREAM_BATCHES,
    STREAM_DELETION,
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
from mvlib.stats import mean_ci
from mvlib.train import (
    COLLAPSE_LEVEL,
    EXPLODE_FACTOR,
    EXPLODE_FLOOR,
    STALL_STEPS,
    TrainingCollapsed,
    TrainingDiverged,
    TrainingExploded,
)

if TYPE_CHECKING:
    import pandas as pd

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


def cnn_layers(c: int, H: int, k: int, w: int, trunk: bool = True) -> list[nn.Module]:
    """A LeNet-style CNN, X (n, c, H, H) -> logits (n, k): two stages of a 3x3 convolution
    (width w, then 2w), ReLU and a 2x2 max-pool, then a linear layer. ``trunk=False`` gives the
    layers after the first stage (the trunk), reading ``c`` channels of size H/2 (Figure 9)."""
    first = [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)] if trunk else []
    return first + [
        nn.Conv2d(w if trunk else c, 2 * w, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * w * (H // 4) ** 2, k),
    ]


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


def resnet_layers(c: int, k: int, w: int, trunk: bool = True) -> list[nn.Module]:
    """ResNet-8: a stem and one block at width w (the trunk), two blocks of stride 2 (2w, 4w),
    global average pooling and a linear layer (the paper's ResNet-28-2 is deeper and wider).
    ``trunk=False`` gives the layers after the trunk, reading ``c`` channels (Figure 9)."""
    first = [nn.Conv2d(c, w, 3, 1, 1, bias=False), nn.GroupNorm(min(8, w), w), nn.ReLU()]
    first += [Block(w, w, 1)]
    return (first if trunk else []) + [
        Block(w if trunk else c, 2 * w, 2),
        Block(2 * w, 4 * w, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * w, k),
    ]


# How many leading layers of each architecture form the trunk whose output Figure 9 thins.
TRUNK = {"cnn": 3, "resnet": 4}


def network(cfg: ImageConfig, data: ImageData, head: int | None = None) -> nn.Sequential:
    """The architecture of ``cfg`` for the shape of ``data`` (the template all members share);
    with ``head = c``, only its layers after the trunk, reading c channels (Figure 9)."""
    (_, C, H, _), k, w = data.X_train.shape, data.k, cfg.width
    if cfg.arch == "cnn":  # a head reads the trunk's output, whose side is half the image's
        layers = cnn_layers(C, H, k, w) if head is None else cnn_layers(head, 2 * H, k, w, False)
    else:
        layers = resnet_layers(C, k, w) if head is None else resnet_layers(head, k, w, False)
    return nn.Sequential(*layers)


@dataclass
class Models:
    """K networks of one architecture: ``params`` {name: (K, ...)} stacked along axis 0."""

    net: nn.Module = field(repr=False)
    params: dict[str, torch.Tensor]

    @property
    def K(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Logits of every model, X: (n, C, H, W) -> (K, n, k), differentiable. One batched
        call under ``vmap`` on a GPU; one model after another on a CPU, where vmap's batched
        convolutions took 3.1 times as long (benchmarks/images.py, benchmarks/IMAGES.md)."""
        call = lambda p, x: functional_call(self.net, p, (x,))  # noqa: E731
        if X.device.type == "cpu":
            return torch.stack(
                [call({n: p[j] for n, p in self.params.items()}, X) for j in range(self.K)]
            )
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
    cfg: ImageConfig,
    data: ImageData,
    seed: int,
    stream: int,
    K: int,
    offset: int = 0,
    head: int | None = None,
) -> Models:
    """K freshly initialised networks (PyTorch's default initialisation; ``head``: see
    :func:`network`); model j's weights depend only on (seed, stream, offset + j), not on K,
    so batched and one-at-a-time agree."""
    template = network(cfg, data, head).to(data.X_train.device)
    nets = []
    for j in range(K):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(rng(seed, stream).initial_seed() * 1000 + offset + j)
            nets.append(network(cfg, data, head))
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


# How many training images a collapse check reads (the first: enough to tell chance from
# learning, at a fraction of an epoch's evaluation).
CHECKED = 2048


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


def check_learned(what: str, F: torch.Tensor, y: torch.Tensor, cfg: ImageConfig, steps: int):
    """Raise :class:`TrainingCollapsed` when a model trained ``steps`` steps (at least
    STALL_STEPS: long enough to have learned) ends with training accuracy within COLLAPSE_LEVEL
    of chance; F: (M, n, k) its logits on training images y: (n,)."""
    k = F.shape[-1]
    chance = 1.0 / k
    acc = accuracy(F, y)
    low = np.flatnonzero(acc <= chance + COLLAPSE_LEVEL * (1 - chance))
    if steps >= STALL_STEPS and low.size:
        raise TrainingCollapsed(
            f"{what}: models {low.tolist()} ended at training accuracy {acc[low].round(3)} "
            f"(chance 1/k = {chance:.2g}): the objective pulled them off the labels; lower lr "
            f"(now {cfg.lr}), or T (now {cfg.T}) and kd_weight (now {cfg.kd_weight})"
        )


def distill_loss(cfg: ImageConfig, y: torch.Tensor, G: torch.Tensor) -> Loss:
    """Hinton et al. (2015) towards teacher logits G: (K or 1, N, k) on the training set."""
    return losses.distill_hinton(y, G, cfg.T, cfg.kd_weight)


@dataclass
class SeedModels:
    """Every trained model of one seed: the K members, ``cfg.students`` students per target
    (``distill`` + a :mod:`mvlib.teachers` suffix, and ``born_again``), members 1..K-1 after
    self-distillation from member 0 and after as many CE steps, and the trained sum and
    average."""

    members: Models
    students: dict[str, Models]
    self_distill: Models
    self_distill_continue: Models
    train_sum: Models
    train_average: Models


def train_all(cfg: ImageConfig, data: ImageData, seed: int) -> SeedModels:
    """Every method of the table on one seed, in three batched stages: (1) the K members, the
    trained sum and the trained average side by side; (2) the students of the ensemble, of its
    controls (:func:`mvlib.teachers.targets`, matched in probability under Hinton's softmax at
    T) and of member 0 alone (born again), sharing their initialisations (paired); (3) members
    1..K-1 continued by self-distillation from member 0 and, from the same weights, by
    cross-entropy alone (the continuation)."""
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
    X, n = data.X_train, CHECKED
    F = members.logits(X)  # (K, N, k)
    check_learned("members", F[:, :n], y[:n], cfg, cfg.steps)
    check_learned("trained sum", tsum.logits(X[:n]).sum(0, keepdim=True), y[:n], cfg, cfg.steps)
    check_learned(
        "trained average", tavg.logits(X[:n]).mean(0, keepdim=True), y[:n], cfg, cfg.steps
    )

    link = losses.hinton_link(cfg.T)  # controls matched in the probability the loss reads
    targets = teachers.targets(F.mean(0, keepdim=True), y, rng(seed, STREAM_PERMUTE), link=link)
    targets = {f"distill{suffix}": G_t for suffix, G_t in targets.items()}
    targets["born_again"] = F[:1]  # a fresh student of one member (Furlanello et al. 2018)
    G = torch.cat([G_t.expand(S, -1, -1) for G_t in targets.values()])  # (5S, N, k)
    s0 = init(cfg, data, seed, STREAM_STUDENTS, S)
    st = fit(cfg, _cat([s0] * len(targets)), data, distill_loss(cfg, y, G), cfg.steps, seed)
    check_learned("students", st.logits(X[:n]), y[:n], cfg, cfg.steps)
    students = {name: st.select(slice(j * S, (j + 1) * S)) for j, name in enumerate(targets)}

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
    check_learned("self-distillation", two.logits(X[:n]), y[:n], cfg, cfg.sd_steps)
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
    keyed without ``seeds``, ``patch`` and ``thin``, which it does not read): the chapter, nbval
    and the book build train it once. ``data`` only sets the device."""
    data = data or load(cfg, seed)
    template = network(cfg, data).to(data.X_train.device)

    def models(params: dict[str, torch.Tensor]) -> Models:
        return Models(template, {n: p.to(data.X_train.device) for n, p in params.items()})

    w = _run_unit(replace(cfg, seeds=ImageConfig.seeds, patch=ImageConfig.patch, thin=()), seed)
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
    return (right.squeeze(-1) & unique).double().mean(-1).cpu().numpy()


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
    out["born_again"] = accuracy(run.students["born_again"].logits(X), y)
    out["ensemble_of_singles"] = accuracy(F[:S].mean(0, keepdim=True), y)
    out["ensemble_of_students"] = accuracy(
        run.students["distill"].logits(X).mean(0, keepdim=True), y
    )
    return out


# ---------------------------------------------------------------------------------------------
# Figure 9: an intermediate layer thinned


def thinned(Z: torch.Tensor, how: str, m: int) -> torch.Tensor:
    """Figure 9's input from an intermediate layer's output Z: (n, c, h, w): ``split`` keeps
    its first c/m channels, ``average`` averages every m consecutive channels; (n, c/m, h, w)."""
    n, c = Z.shape[:2]
    if c % m:
        raise ValueError(f"thin: {m} does not divide the layer's {c} channels (width)")
    if how == "split":
        return Z[:, : c // m]
    if how == "average":
        return Z.reshape(n, c // m, m, *Z.shape[2:]).mean(2)
    raise ValueError(f"how must be 'split' or 'average', got {how!r}")


def deletion_variants(cfg: ImageConfig) -> dict[str, tuple[str, int]]:
    """Figure 9's columns: {name: (how, m)}, the whole layer first, then split to and averaged
    over each m of ``cfg.thin``."""
    out = {"original": ("split", 1)}
    out.update({f"{how}{m}": (how, m) for how in ("split", "average") for m in cfg.thin})
    return out


def channel_deletion(cfg: ImageConfig, run: SeedModels, data: ImageData, seed: int) -> dict:
    """Figure 9 (full version): member 0's trunk (its first :data:`TRUNK` layers) stays fixed
    and shared; for each of :func:`deletion_variants`, K fresh heads (:func:`network` after the
    trunk) train ``cfg.steps`` steps of cross-entropy on its output, whole or thinned, without
    augmentation. A thinned input that is constant (the ReLU channels it kept never fire) leaves
    its heads at chance: measured as such, not stopped as a collapse. Returns {variant: test
    accuracy of each head (K,), variant + "_ensemble": their ensemble's (1,)}."""
    depth = TRUNK[cfg.arch]
    trunk = Models(
        nn.Sequential(*list(run.members.net)[:depth]),
        {n: p[:1] for n, p in run.members.params.items() if int(n.split(".")[0]) < depth},
    )
    Ztr, Zte = trunk.logits(data.X_train)[0], trunk.logits(data.X_test)[0]
    ce, plain, out = losses.cross_entropy(data.y_train), replace(cfg, augment=False), {}
    for j, (name, (how, m)) in enumerate(deletion_variants(cfg).items()):
        feats = ImageData(
            thinned(Ztr, how, m), data.y_train, thinned(Zte, how, m), data.y_test, data.k
        )
        c = feats.X_train.shape[1]
        heads = init(cfg, feats, seed, STREAM_DELETION, cfg.K, offset=j * cfg.K, head=c)
        heads = fit(plain, heads, feats, ce, cfg.steps, seed)
        Xc, yc = feats.X_train[:CHECKED], feats.y_train[:CHECKED]
        if bool((feats.X_train != feats.X_train[:1]).any()):  # an input to learn from
            check_learned(f"Figure 9 heads ({name})", heads.logits(Xc), yc, cfg, cfg.steps)
        F = heads.logits(feats.X_test)
        out[name] = accuracy(F, data.y_test)
        out[f"{name}_ensemble"] = accuracy(F.mean(0, keepdim=True), data.y_test)
    return out


@cached
def _deletion_unit(cfg: ImageConfig, seed: int) -> dict:
    data = load(cfg, seed)
    return {
        n: a.tolist()
        for n, a in channel_deletion(cfg, trained(cfg, seed, data), data, seed).items()
    }


# ---------------------------------------------------------------------------------------------
# a shipped sweep: every method and Figure 9, by seed

COLUMNS = ("seed", "method", "model", "accuracy")


def seed_rows(cfg: ImageConfig, seed: int) -> list[tuple]:
    """One seed's rows (:data:`COLUMNS`): each model's test accuracy by method of
    :func:`table`, then Figure 9's (``deletion:`` + variant), trained once (cached)."""
    key = replace(cfg, seeds=ImageConfig.seeds, patch=ImageConfig.patch)
    data = load(cfg, seed)
    acc = table(cfg, trained(cfg, seed, data), data)
    acc.update({f"deletion:{n}": np.array(a) for n, a in _deletion_unit(key, seed).items()})
    return [(seed, m, i, float(a)) for m, v in acc.items() for i, a in enumerate(v)]


def source_hash() -> str:
    """The hash of the code that computes a sweep's rows (:func:`mvlib.cache.code_hash`)."""
    return code_hash(seed_rows, _run_unit.__wrapped__, _deletion_unit.__wrapped__)


def sweep(cfg: ImageConfig, out, command: str, progress=print) -> int:
    """Write :func:`seed_rows` of seeds 0..cfg.seeds-1 to the CSV ``out``, a seed at a time,
    resuming after the seeds already there, and after each seed record its provenance
    (:func:`mvlib.provenance.write_provenance`: ``command``, this config, each seed's seconds
    and torch threads: on a CPU the convolutions' last bits, and so the accuracies, depend on the
    thread count). A CSV of another config is refused; one of fewer seeds is extended. Returns
    the number of seeds computed."""
    from mvlib.provenance import read_provenance, write_provenance

    out, config = Path(out), json.loads(json.dumps(asdict(cfg)))
    record = read_provenance(out) or {}
    before = {**record.get("images", config), "seeds": cfg.seeds}
    if out.exists() and before != config:
        raise ValueError(f"--out: {out} holds a sweep of another config: {record['images']}")
    seconds = {int(s): t for s, t in record.get("seconds", {}).items()}
    used = {int(s): n for s, n in record.get("threads", {}).items()}
    if not out.exists():
        out.write_text(",".join(COLUMNS) + "\n")
    with open(out, newline="") as f:
        done = {int(r["seed"]) for r in csv.DictReader(f)}
    todo = [s for s in range(cfg.seeds) if s not in done]
    for seed in todo:
        start = time.time()
        rows = seed_rows(cfg, seed)
        with open(out, "a", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        seconds[seed], used[seed] = round(time.time() - start, 1), torch.get_num_threads()
        write_provenance(out, command, images=config, seconds=seconds, threads=used)
        progress(f"seed {seed}: {len(rows)} rows in {seconds[seed]:.0f} s")
    return len(todo)


def seed_frame(rows) -> pd.DataFrame:
    """A sweep's rows (:data:`COLUMNS`) as one test accuracy per method and seed (columns
    ``method``, ``seed``, ``accuracy``: the mean over a method's models), the frame
    :data:`mvlib.claims.REAL_CLAIMS` read, with the ensembles' gains over their own models:
    ``gain:singles`` (``ensemble_of_singles`` over the members it averages, the first
    ``students``), ``gain:students`` (``ensemble_of_students`` over ``distill``), and
    ``gain:VARIANT`` for Figure 9 (``deletion:VARIANT_ensemble`` over its heads)."""
    import pandas as pd

    df = pd.DataFrame(rows, columns=list(COLUMNS)) if not hasattr(rows, "columns") else rows
    mean = df.groupby(["method", "seed"], sort=False).accuracy.mean()
    S = int(df[df.method == "distill"].groupby("seed").size().iloc[0])
    first = df[(df.method == "single") & (df.model < S)].groupby("seed").accuracy.mean()
    gains = {
        "gain:singles": mean["ensemble_of_singles"] - first,
        "gain:students": mean["ensemble_of_students"] - mean["distill"],
    }
    for name in df.method[df.method.str.endswith("_ensemble")].unique():
        heads = name.removesuffix("_ensemble")
        gains[f"gain:{heads.removeprefix('deletion:')}"] = mean[name] - mean[heads]
    out = [mean.reset_index()]
    out += [g.rename("accuracy").reset_index().assign(method=m) for m, g in gains.items()]
    return pd.concat(out, ignore_index=True)[["method", "seed", "accuracy"]]


def shipped(preset: str = "book") -> pd.DataFrame:
    """The shipped sweep of ``preset`` (``mvlib/sweeps/images_PRESET.csv``) as
    :func:`seed_frame`; ``attrs["config"]`` holds its :class:`ImageConfig`, read from its
    provenance record."""
    from mvlib import maps
    from mvlib.provenance import read_provenance

    name = f"images_{preset}"
    df = seed_frame(maps.shipped(name))
    record = read_provenance(maps.data_dir() / f"{name}.csv") or {}
    if "images" in record:
        config = {k: tuple(v) if isinstance(v, list) else v for k, v in record["images"].items()}
        df.attrs["config"] = ImageConfig(**config)
    return df


# Figure 6 of the full version, its ResNet-28-2 row (test accuracy in %; single: mean ± sd over
# 10 models; ensembles of 10), for the table beside this data's.
PAPER_FIGURE6 = {
    "single": ("95.22 ± 0.14", "76.38 ± 0.23"),
    "ensemble": ("96.33", "81.13"),
    "train_sum": ("95.02", "73.18"),
    "distill": ("96.16", "79.03"),
    "self_distill": ("95.78", "78.12"),
}
FIGURE6_ROWS = ("single", "ensemble", "train_sum", "train_average", "distill", "distill_control",
                "distill_onehot", "distill_permuted", "born_again", "self_distill",
                "self_distill_continue")  # fmt: skip


def figure6_table(rows) -> pd.DataFrame:
    """Figure 6's row on this data from a sweep's rows (:data:`COLUMNS`), in %: per method the
    mean over seeds with its 95% interval, the standard deviation over every model of every
    seed (the paper's ± for single models), and the paper's CIFAR-10 and CIFAR-100 numbers."""
    import pandas as pd

    out = []
    for m in FIGURE6_ROWS:
        of_m = rows[rows.method == m]
        ci = mean_ci(100 * of_m.groupby("seed").accuracy.mean())
        c10, c100 = PAPER_FIGURE6.get(m, ("", ""))
        sd = round(100 * of_m.accuracy.std(), 2) if len(of_m) > ci.n else ""  # several models
        out.append({"method": m, "mean": round(ci.mean, 2), "ci95": f"[{ci.lo:.2f}, {ci.hi:.2f}]",
                    "sd over models": sd, "seeds": ci.n, "paper CIFAR-10": c10,
                    "paper CIFAR-100": c100})  # fmt: skip
    return pd.DataFrame(out).set_index("method")


def figure9_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Figure 9 from :func:`seed_frame`, in %: per variant (``original``, ``split8``, ...) the
    heads' mean accuracy, their ensemble's and the ensemble's gain over them, each a mean over
    seeds with ``_lo`` and ``_hi`` (95% interval)."""
    import pandas as pd

    wide = frame.pivot(index="seed", columns="method", values="accuracy")
    out = []
    for v in (c.removeprefix("deletion:") for c in wide if c.startswith("deletion:")):
        if v.endswith("_ensemble"):
            continue
        row = {"variant": v}
        for name, col in (("single", f"deletion:{v}"), ("ensemble", f"deletion:{v}_ensemble"),
                          ("gain", f"gain:{v}")):  # fmt: skip
            ci = mean_ci(100 * wide[col])
            row.update({name: ci.mean, f"{name}_lo": ci.lo, f"{name}_hi": ci.hi})
        out.append(row)
    return pd.DataFrame(out).set_index("variant")


def reading(table: pd.DataFrame) -> str:
    """The chapter's reading of a :func:`mvlib.claims.claim_table` of
    :data:`mvlib.claims.REAL_CLAIMS`, in Markdown (no dollar math): each claim with its interval
    in points and its verdict in parentheses, then what the verdicts of distillation and its
    dark knowledge say together."""
    from mvlib.claims import DARK_KNOWLEDGE, HOLDS, UNRESOLVED

    t = table.set_index("claim")

    def said(name: str) -> str:
        r = t.loc[name]
        return f"{100 * r['mean']:+.2f} points [{100 * r.lo:+.2f}, {100 * r.hi:+.2f}] ({r.verdict})"

    kd, dk = t.verdict["distillation - single"], [t.verdict[n] for n in DARK_KNOWLEDGE]
    fig8 = "Figure 8: singles' ensemble gain - students'"
    if kd == HOLDS and all(v == HOLDS for v in dk):
        why = "the student's gain comes with the class relations, as Section 2 explains it"
    elif kd == HOLDS:
        why = (
            "the student gains, but not through class relations the controls can tell apart: "
            "reached without the stated mechanism"
        )
    elif kd == UNRESOLVED:
        why = "this run cannot tell whether the ensemble's gain reaches a student"
    else:
        why = "the ensemble's gain does not reach the student here"
    return "\n".join((
        f"- **Figure 6.** The ensemble beats one network by {said('ensemble - single')}. "
        f"Its student against one network: {said('distillation - single')}; of that, label "
        f"smoothing {said('label smoothing: one-hot - single')}, confidence "
        f"{said('confidence: flat - one-hot')}, and the dark knowledge, real − permuted "
        f"{said('dark knowledge: real - permuted')} and real − flat {said('real - flat')}: "
        f"{why}.",
        f"- **Self-distillation** against its continuation: "
        f"{said('self-distillation - continuation')}; against one network "
        f"{said('self-distillation - single')}; the born-again student against one network "
        f"{said('born again - single')}.",
        f"- **Message ④.** The ensemble against the trained sum: "
        f"{said('Message 4: ensemble - trained sum')}; the trained average against the "
        f"ensemble: {said('trained average - ensemble')}.",
        f"- **Figure 8.** The ensemble gain of single models minus that of as many students: "
        f"{said(fig8)}.",
        f"- **Figure 9.** The ensemble's gain over its heads on half of the layer's channels, "
        f"minus its gain on all of them: "
        f"{said('Figure 9: ensemble gain, half the channels - all')}; on averages of 2 "
        f"channels: {said('Figure 9: ensemble gain, averages of 2 - all')}.",
    ))  # fmt: skip


def describe_sweep(cfg: ImageConfig, record: dict | None) -> str:
    """What a shipped sweep trained, in one paragraph (Markdown, no dollar math): its data, its
    networks, its seeds, and how long a seed took where (its provenance ``record``)."""
    images = "the whole training split" if cfg.n_per_class == 0 else f"{cfg.n_per_class:,}"
    net = "ResNet-8" if cfg.arch == "resnet" else "LeNet-style CNN"
    text = (
        f"The sweep trains, for each of {cfg.seeds} seeds, on {images} training images per "
        f"class of {cfg.dataset} (a fresh draw per seed; the test set is fixed and whole), "
        f"K = {cfg.K} networks ({net} of first-layer width {cfg.width}), {cfg.steps} SGD steps "
        f"of batch {cfg.batch_size or 'all'} each, {cfg.students} students per distillation "
        f"target at T = {cfg.T:g} and {cfg.sd_steps} steps of self-distillation."
    )
    if record:
        seconds = sorted(record.get("seconds", {}).values())
        m = record["machine"]
        where = m.get("gpu") or f"{m['cpu_count']} CPU cores"
        if seconds:
            text += (
                f" A seed took {seconds[len(seconds) // 2] / 60:.1f} minutes (median of "
                f"{len(seconds)}) on {where}, torch {m['torch']}, on {record['date'][:10]}."
            )
    return text


def recompute(csv_path, seed: int, cfg: ImageConfig) -> bool:
    """Whether this code computes the rows of ``csv_path`` at ``seed`` byte for byte, with the
    torch thread count its provenance records for that seed (the CPU's convolutions round
    differently at another; none recorded: the current count)."""
    from mvlib.provenance import read_provenance

    with open(csv_path, newline="") as f:
        shipped = [tuple(r.values()) for r in csv.DictReader(f) if r["seed"] == str(seed)]
    before = torch.get_num_threads()
    record = read_provenance(csv_path) or {}
    torch.set_num_threads(record.get("threads", {}).get(str(seed), before))
    try:
        mine = [tuple(str(v) for v in r) for r in seed_rows(cfg, seed)]
    finally:
        torch.set_num_threads(before)
    return bool(shipped) and mine == shipped


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
