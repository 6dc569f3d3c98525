"""mvlib.metrics on hand-made cases."""

from __future__ import annotations

import pytest
import torch
from _mvhelpers import assert_close

from mvlib.data import MultiViewData
from mvlib.metrics import (
    accuracy,
    accuracy_by_strong_view,
    learned_views,
    margins,
    overall,
    theorem4_bounds,
    union_rates,
)


def test_learned_views_hand_made():
    Phi = torch.tensor(
        [
            [1.0, 0.2],  # only view 0
            [0.3, 0.6],  # 0.3 = 0.5 * 0.6: both (the threshold is inclusive)
            [0.29, 0.6],  # only view 1
            [0.0, 0.0],
        ]
    )  # nothing learned
    expected = torch.tensor([[True, False], [True, True], [False, True], [False, False]])
    assert torch.equal(learned_views(Phi), expected)
    assert torch.equal(
        learned_views(Phi, threshold=0.1),
        torch.tensor([[True, True], [True, True], [True, True], [False, False]]),
    )
    # batched over members (K, k, 2): each member compared with its own maxima
    batched = torch.stack([Phi, Phi.flip(-1)])
    assert torch.equal(learned_views(batched), torch.stack([expected, expected.flip(-1)]))


def test_accuracy_hand_made():
    F = torch.tensor(
        [
            [[3.0, 1.0, 0.0], [0.0, 2.0, 1.0], [5.0, 0.0, 4.0], [0.0, 0.0, 1.0]],
            [[0.0, 1.0, 0.0], [0.0, 2.0, 1.0], [1.0, 0.0, 4.0], [9.0, 0.0, 1.0]],
        ]
    )
    y = torch.tensor([0, 1, 2, 2])
    assert_close(accuracy(F, y), torch.tensor([0.75, 0.5]))


def test_accuracy_counts_ties_as_errors():
    """The documented criterion is strict, F_y > max_{i != y} F_i: a tie is not a correct answer,
    whichever index the tied class has."""
    F = torch.tensor([[[0.0, 0.0, 0.0], [2.0, 2.0, 1.0], [1.0, 3.0, 3.0], [1.0, 3.0, 2.0]]])
    y = torch.tensor([0, 0, 1, 1])
    assert_close(accuracy(F, y), torch.tensor([0.25]))  # only the last sample


def test_overall_mixes_by_mu():
    mv, sv = torch.tensor([1.0, 0.9]), torch.tensor([0.5, 0.1])
    assert_close(overall(mv, sv, 0.2), torch.tensor([0.9, 0.74]))
    assert float(overall(torch.tensor(0.8), torch.tensor(0.4), 0.0)) == pytest.approx(0.8)
    assert float(overall(torch.tensor(0.8), torch.tensor(0.4), 1.0)) == pytest.approx(0.4)


def test_accuracy_by_strong_view_hand_made():
    # k = 2 classes, 4 single-view samples: (y, strong view) = (0,0), (0,1), (1,0), (1,1).
    y = torch.tensor([0, 0, 1, 1])
    strong = torch.tensor([0, 1, 0, 1])
    data = MultiViewData(
        X=torch.zeros(4, 3, 4),
        y=y,
        single=torch.ones(4, dtype=torch.bool),
        strong=strong,
        Z=torch.zeros(4, 2, 2),
        V=torch.zeros(2, 2, 4),
    )
    # member 0 learned v_{0,0} and v_{1,1}; member 1 learned v_{0,0}, v_{0,1} and v_{1,0}
    learned = torch.tensor([[[True, False], [False, True]], [[True, True], [True, False]]])
    # member 0 is right on sample 0 only; member 1 on sample 2 only
    F = torch.tensor(
        [
            [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]],
            [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]],
        ]
    )
    known, unknown = accuracy_by_strong_view(F, data, learned)
    # member 0: learned-view samples {0, 3} -> hits {0}: 1/2; unlearned {1, 2} -> no hits: 0
    # member 1: learned-view samples {0, 1, 2} -> hits {2}: 1/3; unlearned {3} -> no hits: 0
    assert_close(known, torch.tensor([0.5, 1 / 3]))
    assert_close(unknown, torch.tensor([0.0, 0.0]))


def test_accuracy_by_strong_view_empty_group_is_zero():
    y = torch.tensor([0, 1])
    data = MultiViewData(
        X=torch.zeros(2, 3, 4),
        y=y,
        single=torch.ones(2, dtype=torch.bool),
        strong=torch.tensor([1, 0]),
        Z=torch.zeros(2, 2, 2),
        V=torch.zeros(2, 2, 4),
    )
    learned = torch.ones(1, 2, 2, dtype=torch.bool)  # everything learned
    F = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    known, unknown = accuracy_by_strong_view(F, data, learned)
    assert_close(known, torch.tensor([1.0]))
    assert_close(unknown, torch.tensor([0.0]))  # no samples: 0, not NaN


def test_margins_hand_made():
    F = torch.tensor([[3.0, 1.0, 2.5], [0.0, 2.0, 5.0]])
    assert_close(margins(F, torch.tensor([0, 1])), torch.tensor([0.5, -3.0]))


def test_union_rates_split_cells_by_teacher_and_student():
    # one student, k = 2 classes x 2 views: the teacher knows (0,0), (1,1); the student (0,0)
    teacher = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    before = torch.tensor([[[0.95, 0.2], [0.1, 0.3]]])
    # after: the teacher-only cell (1,1) is learned, of the two "neither" cells one is learned
    after = torch.tensor([[[0.97, 0.6], [0.1, 0.9]]])
    r = union_rates(teacher, before, after)
    assert_close(r["teacher_only"], torch.tensor([1.0]))
    assert_close(r["neither"], torch.tensor([0.5]))
    # a cell without single-view test samples (NaN) is in no set: not an unlearned "neither"
    unseen = after.clone()
    unseen[0, 1, 0] = float("nan")  # cell (1, 0): no test sample; (0, 1) stays, learned
    r = union_rates(teacher, before, unseen)
    assert_close(r["neither"], torch.tensor([1.0]))  # 0.5 if the unseen cell counted
    assert_close(r["teacher_only"], torch.tensor([1.0]))
    # a student that already knows every cell the teacher knows has no teacher-only cells
    r = union_rates(teacher, teacher[None], after)
    assert torch.isnan(r["teacher_only"]).all()


def test_theorem4_bounds_read_margin_and_phi_against_stated_levels():
    tau = 0.5  # k = 4: ln 4 = 1.386; 1 / tau^2 = 4
    F = torch.tensor([[[3.0, 1.0, 0.0, 0.0], [0.0, 2.0, 1.0, 0.0]]])  # margins 2.0 and 1.0
    y = torch.tensor([0, 1])
    Phi = torch.tensor([[[3.0, 5.0], [1.0, 0.5], [4.0, 0.1], [0.0, 2.0]]])
    b = theorem4_bounds(F, y, Phi, tau)
    assert_close(b["train_margin"], torch.tensor([0.5]))
    # Phi_i, the class sums: 8.0, 1.5, 4.1, 2.0 against 4: two classes within the bound
    assert_close(b["phi_bounded"], torch.tensor([0.5]))
    assert_close(b["phi_max"], torch.tensor([8.0]))
    assert_close(b["logit_max"], torch.tensor([3.0]))
