"""mvlib: the multi-view setting of Allen-Zhu & Li (ICLR 2023) as a small PyTorch library.

Flat, one module per role:

- :mod:`mvlib.config`      ``ExperimentConfig``, overrides, the device, random streams, presets
- :mod:`mvlib.data`        multi-view data, Def. 3.1 / 3.3
- :mod:`mvlib.model`       the learner, Def. 3.4, and its NTK linearisation
- :mod:`mvlib.losses`      cross-entropy, distillation (eq. 4.2/4.3, Hinton), the sum, the average
- :mod:`mvlib.teachers`    the real teacher and its controls: one-hot, flat, permuted
- :mod:`mvlib.train`       full-batch gradient descent, eq. 3.1, Phi_{i,l}(t), training guards
- :mod:`mvlib.trainers`    the data of a seed; ensembles, students, self-distillation, NTK; scores
- :mod:`mvlib.units`       the table of cached units: ``METHODS``, keys, step counts, ``reproduce``
- :mod:`mvlib.width`       Message 4: the sum, the average and the width
- :mod:`mvlib.claims`      the paper's claims and their verdicts (the only place one is computed)
- :mod:`mvlib.maps`        regime maps from sweeps, the live slice, Theorem 1's k-scaling
- :mod:`mvlib.provenance`  how a shipped sweep was made, and whether this code made it
- :mod:`mvlib.experiments`, :mod:`mvlib.regimes`  the chapters' namespaces over the modules above
- :mod:`mvlib.metrics`, :mod:`mvlib.stats`, :mod:`mvlib.decomposition`  accuracies, intervals, gains
- :mod:`mvlib.sweep`, :mod:`mvlib.cache`  grids on joblib or Dask; the cache, keyed on the code run
- :mod:`mvlib.threads`     torch's thread count, chosen so that runs side by side do not thrash
- :mod:`mvlib.gaussian`    Gaussian inputs (the paper's Figure 7)
- :mod:`mvlib.image_data`, :mod:`mvlib.images`  real images: Fashion-MNIST (Figures 6, 8, 9)
- :mod:`mvlib.report`, :mod:`mvlib.plots`, :mod:`mvlib.evidence`  the chapters' analyses and
  figures (:mod:`mvlib.evidence`: forest plots and curves with their intervals)
- :mod:`mvlib.presets`     ``ci``, ``book``, ``paper``
"""

from mvlib.config import ExperimentConfig
from mvlib.data import MultiViewConfig, MultiViewData
from mvlib.model import LearnerConfig
from mvlib.presets import PRESETS, get_preset
from mvlib.train import TrainingCollapsed, TrainingDiverged, TrainingExploded, TrainingStalled
from mvlib.units import METHODS, reproduce

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
