"""kdlib: a small, fast library for Hinton, Vinyals & Dean (2015), Distilling the Knowledge
in a Neural Network, on MNIST. Its modules, along the data flow:

* data, transfer: MNIST as tensors on the device, the transfer set as a typed value, batched
  jitter (Section 3)
* models, spec: the MLPs and a run's training recipe (``TrainSpec``, ``Member``)
* losses, derivations: softmax with a temperature, the distillation loss and its gradient,
  logit matching (Section 2, equations 1-4)
* step, checks, train, evaluate: one update written out, divergence and collapse checks, the
  training loop, error counts
* protocols, recipes, catalogue, search: the student recipe, every experiment's run configs
  (Section 3 and chapters 7-9), the staged search that chose the recipe on the validation split
* experiments, io, provenance, progress: artifacts (atomic, resumable, with provenance)
* results, history: loading the runs the book reports, and the earlier recipes' runs
* stats, verdicts, claims, bias_shift, choices, beyond, beyond_run, beyond_claims, ensembles,
  specialists, subsets: the numbers and verdicts of each claim (Sections 3-6)
* plots, tables, report: figures, tables, and the README's and entry page's tables
"""

__version__ = "0.1.0"
#: Part of every run's config hash: bump when a change alters what a run computes (older
#: artifacts are then retrained), or migrate the artifacts when only the config's form changes
#: (version 2: every field in the config, none left out at its default).
ARTIFACT_VERSION = 2

from .losses import distillation_loss, logit_matching_loss, softmax_with_temperature  # noqa: E402

__all__ = ["distillation_loss", "logit_matching_loss", "softmax_with_temperature",
           "__version__", "ARTIFACT_VERSION"]
