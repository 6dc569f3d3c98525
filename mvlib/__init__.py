"""mvlib: the multi-view setting of Allen-Zhu & Li (ICLR 2023) as a small PyTorch library.

- :mod:`mvlib.data`        multi-view data, Def. 3.1 / 3.3
- :mod:`mvlib.model`       the learner, Def. 3.4, and its NTK linearisation
- :mod:`mvlib.losses`      cross-entropy, distillation (eq. 4.2/4.3, Hinton), training the average
- :mod:`mvlib.train`       full-batch gradient descent, eq. 3.1, and Phi_{i,l}(t)
- :mod:`mvlib.metrics`     accuracy by view type, the learned-view map
- :mod:`mvlib.experiments` ensembles, students, NTK contrast; ``reproduce``
- :mod:`mvlib.presets`     ``ci``, ``book``, ``paper``
"""
from mvlib.data import MultiViewConfig, MultiViewData
from mvlib.experiments import METHODS, ExperimentConfig, reproduce
from mvlib.model import LearnerConfig
from mvlib.presets import PRESETS, get_preset
from mvlib.train import TrainingDiverged

__all__ = ["METHODS", "PRESETS", "ExperimentConfig", "LearnerConfig", "MultiViewConfig", "MultiViewData",
           "TrainingDiverged", "get_preset", "reproduce"]
__version__ = "0.1.0"
