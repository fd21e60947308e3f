"""kdlib: a small, fast library for Hinton, Vinyals & Dean (2015), Distilling the Knowledge
in a Neural Network, on MNIST. Modules: data, models, losses, step, train, evaluate,
experiments, search (the student-recipe search on the validation split), results, bias_shift,
verdicts, claims, stats, plots, report."""

__version__ = "0.1.0"
#: Part of every run's config hash: bump when a change alters what a run computes (older
#: artifacts are then retrained), or migrate the artifacts when only the config's form changes
#: (version 2: every field in the config, none left out at its default).
ARTIFACT_VERSION = 2

from .losses import distillation_loss, logit_matching_loss, softmax_with_temperature  # noqa: E402
from . import recipes  # noqa: E402,F401  (registers the studies of kdlib.beyond in EXPERIMENTS)

__all__ = ["distillation_loss", "logit_matching_loss", "softmax_with_temperature",
           "__version__", "ARTIFACT_VERSION"]
