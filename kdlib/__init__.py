"""kdlib: a small, fast library for Hinton, Vinyals & Dean (2015), Distilling the Knowledge
in a Neural Network, on MNIST. Modules: data, models, losses, train, evaluate, stats,
experiments, plots."""

__version__ = "0.1.0"
#: Bump when a change alters what a run computes; older artifacts are then retrained.
ARTIFACT_VERSION = 1

from .losses import distillation_loss, logit_matching_loss, softmax_with_temperature  # noqa: E402
from . import experiments  # noqa: E402,F401  (first, so kdlib.beyond may import it in any order)

__all__ = ["distillation_loss", "logit_matching_loss", "softmax_with_temperature",
           "__version__", "ARTIFACT_VERSION"]
