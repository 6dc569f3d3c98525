"""mvlib.claims: verdicts (holds / equivalent to zero / fails / not resolved) and Theorem 4's
conclusions read from a run's metrics."""

from __future__ import annotations

import pytest

from mvlib import claims as cl


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.10, 0.12, 0.11, 0.13], cl.HOLDS),
        ([-0.10, -0.12, -0.11, -0.13], cl.FAILS),
        # tiny and tight around 0: equivalent within the 0.02 margin
        ([0.002, -0.003, 0.001, 0.0, -0.001], cl.EQUIVALENT),
        # significantly below 0, yet inside the margin: equivalence is the informative reading
        ([-0.004, -0.005, -0.006, -0.005], cl.EQUIVALENT),
        # wide around 0: an interval that holds 0 is not "nothing"
        ([0.08, -0.07, 0.05, -0.06], cl.UNRESOLVED),
        ([0.5], cl.UNRESOLVED),  # one seed decides nothing
    ],
)
def test_verdicts(values, expected):
    assert cl.verdict(values) == expected


def test_a_bound_missed_significantly_fails_however_small_the_miss():
    short = [-0.004, -0.0041, -0.0039]  # e.g. test error 0.030 against 0.26 mu = 0.026
    assert cl.verdict(short, margin=0.005) == cl.EQUIVALENT  # a comparison: no difference
    assert cl.verdict(short, margin=0.005, bound=True) == cl.FAILS  # a bound: broken
    row = _by_name(
        cl.paired_claims(
            _sd_run([0.8, 0.9, 0.85], [0.2, 0.3, 0.25], overall=(0.97, 0.9699, 0.9701)),
            cl.THEOREM4_CLAIMS,
            {"mu": 0.1},
        )
    )["T4 test error <= 0.26 mu: overall - (1 - 0.26 mu)"]
    assert row["verdict"] == cl.FAILS


def test_verdict_margin_is_stated_and_checked():
    x = [0.01, 0.012, 0.008, 0.011, -0.03]
    assert cl.verdict(x, margin=0.1) == cl.EQUIVALENT
    assert cl.verdict(x, margin=0.005) == cl.UNRESOLVED
    with pytest.raises(ValueError, match="margin"):
        cl.verdict(x, margin=0)


def _sd_run(union_teacher, union_neither, overall=(0.98, 0.97, 0.985)):
    return {
        "single": {"single_view": [0.6, 0.62, 0.61], "multi_view": [0.99, 0.99, 0.98]},
        "self_distill": {
            "single_view": [0.8, 0.78, 0.79],
            "multi_view": [0.95, 0.94, 0.95],  # below the single model's: a conclusion broken
            "overall": list(overall),
            "train_margin": [1.0, 1.0, 1.0],
            "phi_bounded": [0.2, 0.0, 0.1],  # Phi far past 1/tau^2: saturated
            "union_teacher_only": list(union_teacher),
            "union_neither": list(union_neither),
        },
    }


def _by_name(rows):
    return {r["claim"]: r for r in rows}


def test_theorem4_is_read_on_each_conclusion():
    rows = _by_name(
        cl.paired_claims(
            _sd_run([0.8, 0.9, 0.85], [0.2, 0.3, 0.25]), cl.THEOREM4_CLAIMS, {"mu": 0.1}
        )
    )
    assert rows["T4 training: margin >= ln k on 99% of Z"]["verdict"] == cl.HOLDS
    assert rows["T4 Phi_i <= 1/tau^2 on 99% of classes"]["verdict"] == cl.FAILS
    assert rows["T4 multi-view: self-distillation - single"]["verdict"] == cl.FAILS
    assert rows["T4 union: teacher-only - neither, learned"]["verdict"] == cl.HOLDS
    # 1 - 0.26 mu = 0.974 at mu = 0.1: 0.978 on average is not enough to decide
    err = rows["T4 test error <= 0.26 mu: overall - (1 - 0.26 mu)"]
    assert err["level"] == pytest.approx(0.974) and err["verdict"] == cl.UNRESOLVED
    # the continuation ran nowhere here: the claims that need it are left out, not failed
    assert "T4 union, continuation (control)" not in rows
    assert "T4 union: teacher-only learned, - continuation" not in rows
    # without the run's parameters, the level that depends on mu is left out too
    names = _by_name(cl.paired_claims(_sd_run([0.8, 0.9, 0.85], [0.2, 0.3, 0.25])))
    assert "T4 test error <= 0.26 mu: overall - (1 - 0.26 mu)" not in names
    assert "T4 union: teacher-only - neither, learned" in names


def test_a_generic_push_is_no_union_and_the_level_follows_mu():
    run = _sd_run([0.5, 0.52, 0.49], [0.5, 0.51, 0.5], overall=(0.93, 0.935, 0.932))
    rows = _by_name(cl.paired_claims(run, cl.THEOREM4_CLAIMS, {"mu": 0.4}))
    assert rows["T4 union: teacher-only - neither, learned"]["verdict"] == cl.EQUIVALENT
    # at mu = 0.4 the level is 0.896, which 0.932 clears on every seed
    assert rows["T4 test error <= 0.26 mu: overall - (1 - 0.26 mu)"]["verdict"] == cl.HOLDS


def test_claims_skip_seeds_without_a_union_cell_and_sweeps_without_the_metric():
    run = _sd_run([0.8, float("nan"), 0.85], [0.2, 0.3, float("nan")])
    row = _by_name(cl.paired_claims(run, cl.THEOREM4_CLAIMS, {"mu": 0.1}))[
        "T4 union: teacher-only - neither, learned"
    ]
    assert row["seeds"] == 1 and row["verdict"] == cl.UNRESOLVED
    frame = cl.as_frame({"self_distill": {"single_view": [0.8, 0.7]}})
    assert cl.claim_table(frame, cl.THEOREM4_CLAIMS, grid=[]).empty
