"""kdlib: a small, fast library for Hinton, Vinyals & Dean (2015), Distilling the Knowledge
in a Neural Network, on MNIST. Modules: data, models, losses, step, train, evaluate,
experiments, search (the student-recipe search on the validation split), results, bias_shift,
verdicts, claims, stats, plots, report."""

__version__ = "0.1.0"
#: Bump when a change alters what a run computes; older artifacts are then retrained.
ARTIFACT_VERSION = 1

from .losses import distillation_loss, logit_matching_loss, softmax_with_temperature  # noqa: E402
from . import recipes  # noqa: E402,F401  (registers the studies of kdlib.beyond in EXPERIMENTS)

__all__ = ["distillation_loss", "logit_matching_loss", "softmax_with_temperature",
           "__version__", "ARTIFACT_VERSION"]
