"""Shared fixtures of the mvlib unit tests (helpers live in _mvhelpers.py)."""

from __future__ import annotations

import pytest
import torch
from _mvhelpers import gen, tiny_data_config

from mvlib.data import MultiViewConfig, features, sample
from mvlib.model import LearnerConfig

# One intra-op thread: the tests are tiny and the machine may be shared, so extra threads only add
# scheduling noise to the run time.
torch.set_num_threads(1)


@pytest.fixture
def data_cfg() -> MultiViewConfig:
    return tiny_data_config()


@pytest.fixture
def tiny_sample(data_cfg):
    """40 samples of the tiny distribution (fixed seed)."""
    g = gen(1)
    V = features(data_cfg, g)
    return sample(data_cfg, 40, V, g)


@pytest.fixture
def learner_cfg() -> LearnerConfig:
    # varrho small enough that random weights put pre-activations in all three regimes of ReLU~.
    return LearnerConfig(m=3, q=4, varrho=0.5, sigma0=0.3)
