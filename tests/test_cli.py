"""python -m mvlib reproduce: arguments, errors, the table and the stable JSON format."""

import json
import subprocess
import sys

import pytest

from mvlib.__main__ import COLUMNS, columns, main, summarise
from mvlib.experiments import METHODS
from mvlib.metrics import MAGNITUDES
from mvlib.units import method_unit

TINY = [
    "--set",
    "k=4",
    "--set",
    "d=24",
    "--set",
    "P=8",
    "--set",
    "N=60",
    "--set",
    "n_test=40",
    "--set",
    "K=2",
    "--set",
    "steps=20",
    "--set",
    "ntk_steps=10",
    "--set",
    "students=1",
    "--set",
    "sd_steps=10",
    "--set",
    "eta=2",
]


def test_reproduce_writes_stable_json(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert (
        main(
            [
                "reproduce",
                "--preset",
                "ci",
                "--seeds",
                "2",
                "--seed",
                "5",
                "--no-progress",
                *TINY,
                "--json",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    assert doc["preset"] == "ci" and doc["seeds"] == [5, 6]
    assert doc["config"]["k"] == 4 and doc["config"]["N"] == 60
    assert list(doc["results"]) == list(METHODS)
    common = list(doc["results"]["single"])
    for method, row in doc["results"].items():
        assert tuple(row)[: len(COLUMNS)] == COLUMNS  # then any further metric
        # self-distillation's runs add Theorem 4's conclusions to the metrics every method has
        extra = [c for c in row if c not in common]
        assert list(row)[: len(common)] == common
        assert bool(extra) == (method_unit(method) == "self_distill"), (method, extra)
        for c, v in row.items():
            assert len(v) == 2
            fractions = [x for x in v if x is not None and c not in MAGNITUDES]
            assert all(0.0 <= x <= 1.0 for x in fractions), (method, c, v)
            assert c.startswith("union_") or None not in v  # only a union rate can be empty
    table = capsys.readouterr().out
    assert all(m in table for m in METHODS) and "±" in table
    first, header = table.splitlines()[:2]
    assert first.startswith("threads: ") and "torch" in first  # the thread setting comes first
    assert all(c in header for c in doc["results"]["single"])


def test_reproduce_is_deterministic(tmp_path):
    docs = []
    for i in range(2):
        out = tmp_path / f"{i}.json"
        main(["reproduce", "--preset", "ci", "--no-progress", *TINY, "--json", str(out)])
        docs.append(json.loads(out.read_text())["results"])
    assert docs[0] == docs[1]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--set", "foo=1"], "unknown parameter 'foo'"),
        (["--set", "mu=1.5"], r"mu must be a number in \[0.0, 1.0\]"),
        (["--set", "K=0"], r"K must be an integer in \[1, inf\]"),
        (["--set", "k"], "NAME=VALUE"),
        (["--set", "sigma_p=abc"], "sigma_p"),
        (["--seeds", "0"], "--seeds"),
    ],
)
def test_bad_input_is_refused_with_the_parameter_named(args, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "--preset", "ci", "--no-progress", *args])
    assert exc.value.code == 2
    assert pytest.importorskip("re").search(message, capsys.readouterr().err)


def test_summarise_mean_and_spread():
    assert summarise([0.5]) == "0.500 ± 0.000"
    assert summarise([0.4, 0.6]) == "0.500 ± 0.141"


def test_columns_put_the_four_accuracies_first():
    results = {
        "a": {"both_views": 0.1, "overall": 0.2, "train": 0.3},
        "b": {"train": 0.3, "extra": 0.4},
    }
    assert columns(results) == ["train", "overall", "both_views", "extra"]


def test_cache_info_and_clear(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MVLIB_CACHE", str(tmp_path / "cache"))
    main(["reproduce", "--preset", "ci", "--no-progress", *TINY])  # fills the cache
    capsys.readouterr()
    assert main(["cache", "info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["location"] == str(tmp_path / "cache") and info["entries"] > 0
    assert main(["cache", "clear"]) == 0
    assert f"removed {info['entries']} cached results" in capsys.readouterr().out
    main(["cache", "info"])
    assert json.loads(capsys.readouterr().out)["entries"] == 0


def test_module_entry_point_runs():
    for command, flag in [("reproduce", "--seeds"), ("sweep", "--grid"), ("cache", "clear")]:
        proc = subprocess.run(
            [sys.executable, "-m", "mvlib", command, "--help"], capture_output=True, text=True
        )
        assert proc.returncode == 0 and flag in proc.stdout


def test_claims_are_paired_intervals_over_seeds():
    from mvlib.__main__ import claims, claims_table

    results = {
        "single": {"single_view": [0.6, 0.65, 0.62]},
        "ensemble": {"single_view": [0.95, 0.97, 0.96]},
        "distill": {"single_view": [0.9, 0.9, 0.9]},
        "distill_permuted": {"single_view": [0.8, 0.95, 0.7]},
    }
    rows = {r["claim"]: r for r in claims(results)}
    assert rows["ensemble - single"]["holds"]
    assert rows["ensemble - single"]["mean"] == pytest.approx(0.3367, abs=1e-3)
    dk = rows["dark knowledge: real - permuted"]
    assert not dk["holds"] and dk["lo"] < 0 < dk["hi"]
    assert "self-distillation >= 3/4" not in rows  # its methods did not run
    assert "not resolved" in claims_table(list(rows.values()))
    one = claims({m: {"single_view": v["single_view"][:1]} for m, v in results.items()})
    assert not any(r["holds"] for r in one)
    assert {r["verdict"] for r in one} == {"not resolved"} and "1 seed" in claims_table(one)


def test_training_that_goes_wrong_is_a_message_not_a_traceback(capsys):
    code = main(["reproduce", "--preset", "ci", "--no-progress", "--set", "eta=1e6", *TINY[:-2]])
    err = capsys.readouterr().err
    assert code == 3 and err.startswith("error: training exploded") and "eta" in err
    assert "Traceback" not in err
