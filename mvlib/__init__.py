"""mvlib: the multi-view setting of Allen-Zhu & Li (ICLR 2023) as a small PyTorch library.

- :mod:`mvlib.data`        multi-view data, Def. 3.1 / 3.3
- :mod:`mvlib.model`       the learner, Def. 3.4, and its NTK linearisation
- :mod:`mvlib.losses`      cross-entropy, distillation (eq. 4.2/4.3, Hinton), the sum, the average
- :mod:`mvlib.teachers`    the real teacher and its controls: one-hot, flat, permuted
- :mod:`mvlib.train`       full-batch gradient descent, eq. 3.1, Phi_{i,l}(t), training guards
- :mod:`mvlib.metrics`     accuracy by view type, learned views (by behaviour, and by Phi)
- :mod:`mvlib.experiments` ensembles, students, self-distillation, NTK; cached; ``reproduce``
- :mod:`mvlib.decomposition`, :mod:`mvlib.regimes`, :mod:`mvlib.stats`  gains, claims, intervals
- :mod:`mvlib.sweep`, :mod:`mvlib.cache`  grids on joblib or Dask; the result cache
- :mod:`mvlib.gaussian`    Gaussian inputs (the paper's Figure 7)
- :mod:`mvlib.images`      real images: digits on a CPU, CIFAR-10 on a GPU
- :mod:`mvlib.report`, :mod:`mvlib.plots`  the chapters' analyses and figures
- :mod:`mvlib.presets`     ``ci``, ``book``, ``paper``
"""

from mvlib.data import MultiViewConfig, MultiViewData
from mvlib.experiments import METHODS, ExperimentConfig, reproduce
from mvlib.model import LearnerConfig
from mvlib.presets import PRESETS, get_preset
from mvlib.train import TrainingCollapsed, TrainingDiverged, TrainingExploded, TrainingStalled

__all__ = [
    "METHODS",
    "PRESETS",
    "ExperimentConfig",
    "LearnerConfig",
    "MultiViewConfig",
    "MultiViewData",
    "TrainingCollapsed",
    "TrainingDiverged",
    "TrainingExploded",
    "TrainingStalled",
    "get_preset",
    "reproduce",
]
__version__ = "0.1.0"
