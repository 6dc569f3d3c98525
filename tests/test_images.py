"""mvlib.images: config, data, batched training of K networks, the table and the probe."""

from __future__ import annotations

import importlib.util
import sys
import types
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from mvlib import images as im
from mvlib import losses
from mvlib.train import TrainingDiverged

CPU = torch.device("cpu")
# A tiny problem: 3 digits per class, 2 members, a few full-batch steps.
TINY = im.ImageConfig(n_per_class=3, width=2, K=2, steps=4, sd_steps=2, students=1, seeds=1)


@pytest.fixture(scope="module")
def tiny_data():
    return im.load(TINY, 0, CPU)


@pytest.mark.parametrize(
    "name, value",
    [
        ("dataset", "mnist"),
        ("arch", "vgg"),
        ("K", 1),
        ("lr", -0.1),
        ("momentum", 1.0),
        ("T", 0.0),
        ("students", 11),
        ("n_per_class", -1),
    ],
)
def test_config_rejects_bad_values_naming_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        replace(im.ImageConfig(), **{name: value})


def test_presets_and_overrides():
    assert im.get_preset("ci").dataset == "digits"
    assert im.get_preset("paper").dataset == "cifar10" and im.get_preset("paper").arch == "resnet"
    assert im.get_preset("ci", K=3).K == 3
    with pytest.raises(ValueError, match="preset"):
        im.get_preset("huge")
    with pytest.raises(ValueError, match="unknown parameters"):
        im.get_preset("ci", epochs=3)


def test_digits_split_is_stratified_normalised_and_seeded(tiny_data):
    d = tiny_data
    assert d.X_train.shape == (30, 1, 8, 8) and d.k == 10
    assert torch.bincount(d.y_train).tolist() == [3] * 10
    assert len(d.y_test) == 899  # half of the 1797 digits
    assert abs(float(d.X_train.mean())) < 1e-5 and abs(float(d.X_train.std()) - 1) < 0.02
    again, other = im.load(TINY, 0, CPU), im.load(TINY, 1, CPU)
    assert torch.equal(again.X_train, d.X_train)
    assert not torch.equal(other.y_train, d.y_train) or not torch.equal(other.X_train, d.X_train)
    assert torch.equal(other.y_test, d.y_test)  # the test set is fixed


@pytest.mark.skipif(
    importlib.util.find_spec("torchvision") is not None, reason="torchvision is installed"
)
def test_cifar10_without_torchvision_says_what_to_install():
    with pytest.raises(ImportError, match="torchvision"):
        im.load(replace(TINY, dataset="cifar10"), 0, CPU)


def test_cifar10_is_never_downloaded_and_missing_data_says_how_to_fetch_it(tmp_path, monkeypatch):
    """A stand-in torchvision records what mvlib asks of it: never a download; where the data
    is missing, the error names MVLIB_DATA's folder and the command that fetches it once."""
    asked = []

    class CIFAR10:
        def __init__(self, root, train, download):
            asked.append(download)
            raise RuntimeError("Dataset not found or corrupted.")  # torchvision's message

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(CIFAR10=CIFAR10)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setenv("MVLIB_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError) as e:
        im.load(replace(TINY, dataset="cifar10"), 0, CPU)
    assert asked == [False]
    assert f"no CIFAR-10 in {tmp_path} (MVLIB_DATA)" in str(e.value)
    assert f"torchvision.datasets.CIFAR10('{tmp_path}', download=True)" in str(e.value)
    monkeypatch.delenv("MVLIB_DATA")
    assert im.data_dir() == Path.home() / ".cache" / "mvlib-data"


def test_forward_shapes_and_init_independent_of_K(tiny_data):
    three = im.init(TINY, tiny_data, 0, im.STREAM_MEMBERS, 3)
    assert three.forward(tiny_data.X_test[:5]).shape == (3, 5, 10)
    two = im.init(TINY, tiny_data, 0, im.STREAM_MEMBERS, 2)
    for n, p in two.params.items():
        assert torch.equal(p, three.params[n][:2])
    other = im.init(TINY, tiny_data, 0, im.STREAM_STUDENTS, 2)
    assert not torch.equal(other.params["0.weight"], two.params["0.weight"])


def test_resnet_batches_under_vmap():
    cfg = replace(TINY, arch="resnet", width=4)
    X = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    data = im.ImageData(X, torch.tensor([0, 1, 2, 3]), X, torch.tensor([0, 1, 2, 3]), 4)
    models = im.init(cfg, data, 0, im.STREAM_MEMBERS, 2)
    F = models.forward(X)
    assert F.shape == (2, 4, 4)
    alone = torch.func.functional_call(models.net, models.select(1).params, (X,))
    torch.testing.assert_close(F[1], alone, rtol=1e-4, atol=1e-5)


def test_K_batched_models_equal_K_trained_one_at_a_time(tiny_data):
    cfg = replace(TINY, steps=6)
    ce = losses.cross_entropy(tiny_data.y_train)
    start = im.init(cfg, tiny_data, 0, im.STREAM_MEMBERS, 3)
    batched = im.fit(cfg, start, tiny_data, ce, cfg.steps, 0)
    for j in range(3):
        alone = im.fit(cfg, start.select(slice(j, j + 1)), tiny_data, ce, cfg.steps, 0)
        for n, p in alone.params.items():
            torch.testing.assert_close(batched.params[n][j : j + 1], p, rtol=1e-4, atol=1e-5)
    moved = sum(float((batched.params[n] - start.params[n]).abs().max()) for n in start.params)
    assert moved > 1e-3  # training did something


def test_fit_is_deterministic_with_minibatches_and_augmentation(tiny_data):
    cfg = replace(TINY, batch_size=8, augment=True)
    ce = losses.cross_entropy(tiny_data.y_train)
    start = im.init(cfg, tiny_data, 0, im.STREAM_MEMBERS, 2)
    a, b = (im.fit(cfg, start, tiny_data, ce, 3, 0) for _ in range(2))
    for n in a.params:
        assert torch.equal(a.params[n], b.params[n])


def test_fit_stops_with_a_clear_error_when_training_diverges(tiny_data):
    cfg = replace(TINY, lr=1e4, momentum=0.0)
    ce = losses.cross_entropy(tiny_data.y_train)
    with pytest.raises(TrainingDiverged, match="lower lr"):
        im.fit(cfg, im.init(cfg, tiny_data, 0, 1, 2), tiny_data, ce, 20, 0)


def test_summed_stacked_scaled_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    F = torch.randn(4, 5, 3, generator=g, requires_grad=True)
    y = torch.randint(0, 3, (5,), generator=g)
    ce = losses.cross_entropy(y)
    loss = im.stacked([(2, losses.summed(ce, 2)), (2, im.scaled(ce, 3.0))])
    value, dLdF = loss(F.detach(), slice(None))
    lp = torch.log_softmax(F[:2].sum(0), -1)
    total = -lp.gather(-1, y[:, None]).sum() + 3 * torch.nn.functional.cross_entropy(
        F[2:].reshape(-1, 3), y.repeat(2), reduction="sum"
    )
    total.backward()
    torch.testing.assert_close(dLdF, F.grad)
    assert value.shape == (4,) and torch.equal(value[0], value[1])


def test_augment_keeps_shape_and_only_flips_without_padding():
    X = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    out = im.augment(X, torch.Generator().manual_seed(0), pad=0)
    assert out.shape == X.shape
    for a, b in zip(out, X):
        assert torch.equal(a, b) or torch.equal(a, b.flip(-1))
    shifted = im.augment(X, torch.Generator().manual_seed(1), pad=2)
    assert shifted.shape == X.shape


def test_occlusion_and_map_agreement():
    X = torch.zeros(3, 1, 4, 4)
    X[:, :, 0, 0] = 1.0
    y = torch.tensor([0, 0, 0])

    # model 0 reads pixel (0, 0) into class 0; model 1 ignores it
    def F_of(Z):
        return torch.stack(
            [torch.cat([Z[:, 0, :1, 0], -Z[:, 0, :1, 0]], -1), torch.zeros(len(Z), 2)]
        )

    M = im.occlusion(F_of, X, y, patch=2)
    assert M.shape == (2, 3, 4)
    assert (M[0, :, 0] > 0.5).all() and (M[0, :, 1:] == 0).all() and (M[1] == 0).all()
    A = torch.tensor([[1.0, 2.0, 3.0]])
    assert float(im.map_correlation(A, 2 * A + 1)) == pytest.approx(1.0)
    assert float(im.map_correlation(A, -A)) == pytest.approx(-1.0)
    members = torch.stack([A, A, -A])[:, None, 0]  # (3, 1, 3)
    assert im.seed_agreement(members).tolist() == pytest.approx([1.0, -1.0, -1.0])
    # member 0's union of the others (A and -A) is flat: correlation 0
    assert im.union_agreement(members, members)[0] == pytest.approx(0.0)
    assert im.union_agreement(A[None], members)[0] == pytest.approx(1 / 3)


def test_tiny_end_to_end_beats_chance():
    cfg = replace(TINY, n_per_class=10, width=4, steps=60, sd_steps=10)
    data = im.load(cfg, 0, CPU)
    run = im.train_all(cfg, data, 0)
    acc = im.table(cfg, run, data)
    assert set(acc) == set(im.METHODS)
    assert acc["single"].shape == (2,) and acc["ensemble"].shape == (1,)
    assert acc["distill_permuted"].shape == (1,) and acc["self_distill"].shape == (1,)
    assert float(acc["single"].mean()) > 0.5  # chance is 0.1
    assert float(acc["ensemble"][0]) > 0.5 and float(acc["distill"][0]) > 0.5


def test_trained_is_train_all_read_from_the_cache(tmp_path, monkeypatch, tiny_data):
    """images.trained gives train_all's models and trains once per (config, seed): a second
    call, also at another number of seeds or probe patch (training reads neither), reads the
    cache; another seed or number of steps is trained."""
    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path))
    data = tiny_data
    direct = im.train_all(TINY, data, 0)
    run = im.trained(TINY, 0, data)

    def untrainable(*args):
        raise RuntimeError("trained again")

    monkeypatch.setattr(im, "train_all", untrainable)
    again = im.trained(replace(TINY, seeds=2, patch=1), 0, data)
    for got in (run, again):
        for name in ("members", "self_distill", "self_distill_continue", "train_sum"):
            for p, q in zip(
                getattr(got, name).params.values(), getattr(direct, name).params.values()
            ):
                assert p.device == q.device and torch.equal(p, q)
        assert got.students.keys() == direct.students.keys()
        F = got.students["distill_permuted"].logits(data.X_test)
        assert torch.equal(F, direct.students["distill_permuted"].logits(data.X_test))
        assert {m: v.tolist() for m, v in im.table(TINY, got, data).items()} == {
            m: v.tolist() for m, v in im.table(TINY, direct, data).items()
        }
    for seed, cfg in ((1, TINY), (0, replace(TINY, steps=5))):
        with pytest.raises(RuntimeError, match="trained again"):
            im.trained(cfg, seed, data)


# ----- Fashion-MNIST: four IDX files, never downloaded


def _write_idx(path: Path, array: torch.Tensor, gz: bool):
    import gzip

    head = bytes([0, 0, 8, array.dim()]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    data = head + array.to(torch.uint8).numpy().tobytes()
    (gzip.open if gz else open)(path.with_name(path.name + (".gz" if gz else "")), "wb").write(data)


def _fashion_standin(folder: Path, n: int = 40, truncate: bool = False):
    """Four small IDX files (images gzipped, labels raw) of n 28x28 images, 10 classes."""
    g = torch.Generator().manual_seed(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, size in (("train", n), ("t10k", n // 2)):
        images = torch.randint(0, 256, (size, 28, 28), generator=g)
        _write_idx(folder / f"{split}-images-idx3-ubyte", images, gz=True)
        _write_idx(folder / f"{split}-labels-idx1-ubyte", torch.arange(size) % 10, gz=False)
    if truncate:
        labels = folder / "t10k-labels-idx1-ubyte"
        labels.write_bytes(labels.read_bytes()[:-3])


@pytest.fixture
def no_debian(monkeypatch, tmp_path):
    """MVLIB_DATA in a fresh folder, and Debian's package folder out of sight."""
    from mvlib import image_data

    monkeypatch.setattr(image_data, "DEBIAN_FASHION", tmp_path / "no-debian")
    monkeypatch.setenv("MVLIB_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.mark.parametrize("layout", [(), ("FashionMNIST", "raw")])
def test_fashion_mnist_reads_idx_files_from_mvlib_data(no_debian, layout):
    _fashion_standin(no_debian.joinpath(*layout))
    cfg = replace(TINY, dataset="fashion_mnist", n_per_class=2)
    d = im.load(cfg, 0, CPU)
    assert d.X_train.shape == (20, 1, 28, 28) and d.X_test.shape == (20, 1, 28, 28)
    assert d.k == 10 and sorted(d.y_test.tolist()) == sorted(list(range(10)) * 2)
    run = im.train_all(cfg, d, 0)  # the image chapter's code runs on it end to end
    assert set(im.table(cfg, run, d)) >= {"single", "ensemble", "distill"}


def test_fashion_mnist_missing_or_truncated_says_where_and_how_to_get_it(no_debian):
    cfg = replace(TINY, dataset="fashion_mnist")
    with pytest.raises(FileNotFoundError) as e:
        im.load(cfg, 0, CPU)
    assert str(no_debian) in str(e.value) and "apt-get install dataset-fashion-mnist" in str(
        e.value
    )
    _fashion_standin(no_debian, truncate=True)
    with pytest.raises(ValueError, match="truncated or corrupt") as e:
        im.load(cfg, 0, CPU)
    assert str(no_debian) in str(e.value) and "dataset-fashion-mnist" in str(e.value)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="no package")
def test_fashion_mnist_from_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("MVLIB_DATA", str(tmp_path))  # empty: the package's folder is read
    d = im.load(replace(TINY, dataset="fashion_mnist", n_per_class=1), 0, CPU)
    assert d.X_train.shape == (10, 1, 28, 28) and d.X_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(d.y_test).tolist() == [1000] * 10
