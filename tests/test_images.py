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
TINY = im.ImageConfig(
    dataset="digits",
    n_per_class=3,
    width=2,
    K=2,
    steps=4,
    sd_steps=2,
    batch_size=0,
    T=2.0,
    students=1,
    seeds=1,
    patch=2,
    thin=(2,),
)


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
        ("thin", (3,)),
        ("thin", (16,)),
    ],
)
def test_config_rejects_bad_values_naming_the_parameter(name, value):
    with pytest.raises(ValueError, match=name):
        replace(im.ImageConfig(), **{name: value})


def test_presets_and_overrides():
    assert {im.get_preset(p).dataset for p in ("ci", "book", "paper")} == {"fashion_mnist"}
    book, paper = im.get_preset("book"), im.get_preset("paper")
    assert book.n_per_class >= 1000 and book.K == 10 and book.seeds >= 5
    assert paper.n_per_class == 0 and paper.arch == "resnet" and paper.augment
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


# ----- the controls, Figure 9, the CPU path, the shipped sweep


def test_cpu_forward_one_model_at_a_time_equals_vmap(tiny_data):
    """On a CPU the K models run one after another (faster there); vmap, the GPU's path,
    computes the same logits."""
    models = im.init(TINY, tiny_data, 0, im.STREAM_MEMBERS, 3)
    call = lambda p, x: torch.func.functional_call(models.net, p, (x,))  # noqa: E731
    batched = torch.func.vmap(call, in_dims=(0, None))(models.params, tiny_data.X_test)
    torch.testing.assert_close(models.forward(tiny_data.X_test), batched, rtol=1e-5, atol=1e-6)


def test_students_learn_from_controls_matched_in_probability(monkeypatch, tiny_data):
    """train_all builds its controls in the probability Hinton's loss reads (softmax at T),
    with a derangement per sample, and adds a born-again student of member 0."""
    from mvlib import teachers

    seen = {}
    real = teachers.targets

    def spy(G, y, generator, which=teachers.SUFFIXES, link=None):
        seen["link"] = link
        return real(G, y, generator, which, link)

    monkeypatch.setattr(im.teachers, "targets", spy)
    run = im.train_all(TINY, tiny_data, 0)
    assert seen["link"] == losses.hinton_link(TINY.T)
    assert set(run.students) == {
        "distill",
        "distill_control",
        "distill_onehot",
        "distill_permuted",
        "born_again",
    }


def test_thinned_splits_and_averages_channels():
    Z = torch.arange(2 * 8 * 1 * 1, dtype=torch.float32).reshape(2, 8, 1, 1)
    assert torch.equal(im.thinned(Z, "split", 4), Z[:, :2])
    avg = im.thinned(Z, "average", 4)
    assert avg.shape == (2, 2, 1, 1)
    assert torch.equal(avg[0, :, 0, 0], torch.tensor([1.5, 5.5]))  # mean of 0..3 and 4..7
    with pytest.raises(ValueError, match="thin"):
        im.thinned(Z, "split", 3)
    with pytest.raises(ValueError, match="how"):
        im.thinned(Z, "drop", 2)
    cfg = replace(TINY, width=8, thin=(2, 4))
    assert list(im.deletion_variants(cfg)) == [
        "original",
        "split2",
        "split4",
        "average2",
        "average4",
    ]


@pytest.mark.parametrize("arch", ["cnn", "resnet"])
def test_channel_deletion_trains_heads_on_member_0s_fixed_trunk(arch, tiny_data):
    cfg = replace(TINY, arch=arch, width=4, thin=(2, 4))
    run = im.train_all(cfg, tiny_data, 0)
    full = run.members.select([0])
    depth = im.TRUNK[arch]
    trunk = torch.nn.Sequential(*list(full.net)[:depth])
    # the trunk's layers are the first layers of the network: its output feeds the rest
    rest = torch.nn.Sequential(*list(full.net)[depth:])
    p0 = {n: v[0] for n, v in full.params.items()}
    X = tiny_data.X_test[:7]
    parts = [(int(i), tail, v) for n, v in p0.items() for i, _, tail in [n.partition(".")]]
    Z = torch.func.functional_call(trunk, {f"{i}.{t}": v for i, t, v in parts if i < depth}, X)
    rest_p = {f"{i - depth}.{tail}": v for i, tail, v in parts if i >= depth}
    torch.testing.assert_close(torch.func.functional_call(rest, rest_p, Z), full.forward(X)[0])
    out = im.channel_deletion(cfg, run, tiny_data, 0)
    names = list(im.deletion_variants(cfg))
    assert list(out) == [n + e for n in names for e in ("", "_ensemble")]
    assert all(out[n].shape == (cfg.K,) and out[n + "_ensemble"].shape == (1,) for n in names)


def test_sweep_writes_resumes_and_recomputes_its_rows(tmp_path, monkeypatch):
    """A seed's rows go to the CSV as it finishes; a rerun computes only missing seeds; the
    recompute canary reproduces a seed byte for byte and notices a changed number."""
    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path / "cache"))
    cfg, out = replace(TINY, seeds=2), tmp_path / "images.csv"
    assert im.sweep(cfg, out, "cmd", progress=lambda _: None) == 2
    text = out.read_text()
    assert text.splitlines()[0] == ",".join(im.COLUMNS)
    assert {line.split(",")[0] for line in text.splitlines()[1:]} == {"0", "1"}
    from mvlib.provenance import read_provenance

    threads = read_provenance(out)["threads"]  # the CPU's convolutions round by thread count
    assert threads == {"0": torch.get_num_threads(), "1": torch.get_num_threads()}
    assert im.sweep(cfg, out, "cmd", progress=lambda _: None) == 0 and out.read_text() == text
    with pytest.raises(ValueError, match="another config"):
        im.sweep(replace(cfg, steps=5), out, "cmd")
    assert im.sweep(replace(cfg, seeds=3), out, "cmd", progress=lambda _: None) == 1  # extended
    assert out.read_text().startswith(text)
    monkeypatch.setenv("MVLIB_CACHE", "off")
    assert im.recompute(out, 1, cfg)
    lines = text.splitlines()
    i = next(j for j, line in enumerate(lines) if line.startswith("1,single,0,"))
    lines[i] = "1,single,0,0.5"
    out.write_text("\n".join(lines) + "\n")
    assert not im.recompute(out, 1, cfg)


def test_cli_images_writes_the_csv_and_its_provenance(tmp_path, monkeypatch):
    import json

    from mvlib.__main__ import main
    from mvlib.provenance import computed_here, read_provenance

    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "images.csv"
    sets = ["dataset=digits", "n_per_class=3", "width=2", "K=2", "steps=2", "sd_steps=1"]
    sets += ["batch_size=0", "students=1", "seeds=1", "thin=2"]
    argv = ["images", "--preset", "ci", "--out", str(out), "--threads", "1"]
    assert main(argv + [a for s in sets for a in ("--set", s)]) == 0
    record = read_provenance(out)
    assert record["images"]["thin"] == [2] and record["images"]["K"] == 2
    assert record["command"].startswith("python -m mvlib images --preset ci")
    assert set(record["seconds"]) == {"0"}
    assert computed_here(json.loads(json.dumps(record)))
    with pytest.raises(SystemExit):
        main(["images", "--out", str(out), "--set", "K=two"])


@pytest.mark.parametrize(
    "raw, message", [({"epochs": "3"}, "unknown parameter"), ({"augment": "maybe"}, "augment")]
)
def test_image_overrides_are_typed_and_named(raw, message):
    from mvlib.image_data import parse_overrides

    assert parse_overrides({"K": "4", "lr": "0.1", "augment": "true", "thin": "2,4"}) == {
        "K": 4,
        "lr": 0.1,
        "augment": True,
        "thin": (2, 4),
    }
    with pytest.raises(ValueError, match=message):
        parse_overrides(raw)


def test_paper_recipe_runs_end_to_end_on_a_fashion_standin(no_debian):
    """The paper preset's code path (ResNet, crops and flips, minibatches, Figure 9 on its
    trunk) at a tiny size on the CPU, on the IDX stand-in."""
    _fashion_standin(no_debian, n=60)
    tiny = dict(n_per_class=4, width=8, K=2, steps=2, sd_steps=1, batch_size=8, students=1)
    cfg = im.get_preset("paper", **tiny, seeds=1)
    rows = im.seed_rows(cfg, 0)
    methods = {m for _, m, _, _ in rows}
    assert set(im.METHODS) <= methods and "deletion:average4_ensemble" in methods
    assert all(0.0 <= a <= 1.0 for *_, a in rows)


def test_seed_frame_averages_models_and_adds_the_ensembles_gains():
    """Per seed: a method's mean over its models; Figure 8's gains over the models each
    ensemble averages (the first ``students`` members; the students); Figure 9's over heads."""
    from mvlib.claims import REAL_CLAIMS, claim_table

    rows = []
    for seed in (0, 1, 2):
        rows += [(seed, "single", i, a) for i, a in enumerate((0.80, 0.82, 0.90))]
        rows += [(seed, "distill", i, 0.85 + 0.01 * seed) for i in range(2)]
        rows += [(seed, "ensemble_of_singles", 0, 0.86), (seed, "ensemble_of_students", 0, 0.86)]
        rows += [(seed, "deletion:split8", i, 0.70) for i in range(2)]
        rows += [(seed, "deletion:split8_ensemble", 0, 0.75 + 0.001 * seed)]
    f = im.seed_frame(rows).set_index(["method", "seed"]).accuracy
    assert f["single", 0] == pytest.approx(0.84)
    assert f["gain:singles", 1] == pytest.approx(0.86 - 0.81)  # over members 0 and 1 only
    assert f["gain:students", 2] == pytest.approx(0.86 - 0.87)
    assert f["gain:split8", 2] == pytest.approx(0.052)
    fig8 = [c for c in REAL_CLAIMS if c.name.startswith("Figure 8")]
    t = claim_table(im.seed_frame(rows), fig8).iloc[0]
    assert t.verdict == "holds" and t["mean"] == pytest.approx(0.05)


def test_a_model_left_at_chance_stops_training_with_the_cause():
    from mvlib.train import TrainingCollapsed

    y = torch.arange(40) % 10
    F = torch.zeros(2, 40, 10)
    F[0, torch.arange(40), y] = 1.0  # model 0 learned, model 1 predicts class 0 for all
    with pytest.raises(TrainingCollapsed, match=r"students: models \[1\].*lower lr"):
        im.check_learned("students", F, y, TINY, steps=600)
    im.check_learned("students", F, y, TINY, steps=10)  # too short to have learned: no check
    im.check_learned("students", F[:1], y, TINY, steps=600)


def test_cifar10_path_runs_the_paper_recipe_on_a_cifar_shaped_standin(tmp_path, monkeypatch):
    """dataset='cifar10' reads torchvision's CIFAR10 (here a stand-in of its shape: uint8
    (n, 32, 32, 3) images, integer targets) and the paper recipe trains on it end to end."""
    g = torch.Generator().manual_seed(0)

    class CIFAR10:
        def __init__(self, root, train, download):
            n = 40 if train else 20
            self.data = torch.randint(0, 256, (n, 32, 32, 3), generator=g).to(torch.uint8).numpy()
            self.targets = (torch.arange(n) % 10).tolist()

    fake = types.ModuleType("torchvision")
    fake.datasets = types.SimpleNamespace(CIFAR10=CIFAR10)
    monkeypatch.setitem(sys.modules, "torchvision", fake)
    monkeypatch.setenv("MVLIB_CACHE", "off")
    tiny = dict(n_per_class=3, width=8, K=2, steps=2, sd_steps=1, batch_size=8, students=1)
    cfg = im.get_preset("paper", dataset="cifar10", **tiny, seeds=1)
    data = im.load(cfg, 0, CPU)
    assert data.X_train.shape == (30, 3, 32, 32) and data.X_test.shape == (20, 3, 32, 32)
    rows = im.seed_rows(cfg, 0)
    assert {"single", "distill_permuted", "deletion:split4_ensemble"} <= {m for _, m, _, _ in rows}


def test_figure9_heads_on_a_dead_layer_are_measured_at_chance_not_stopped(tiny_data):
    """Where the kept channels never fire, the heads have nothing to learn: chance, measured."""
    cfg = replace(TINY, steps=100, thin=(2,))
    run = im.train_all(replace(cfg, steps=4), tiny_data, 0)
    run.members.params["0.weight"][0].zero_()  # member 0's first convolution: ReLU(-1) = 0
    run.members.params["0.bias"][0].fill_(-1.0)
    out = im.channel_deletion(cfg, run, tiny_data, 0)
    share = torch.bincount(tiny_data.y_test).max().item() / len(tiny_data.y_test)
    assert all(float(out[v].max()) <= share + 1e-9 for v in ("original", "split2", "average2"))
