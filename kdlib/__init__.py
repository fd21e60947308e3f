"""kdlib: a small, fast library for Hinton, Vinyals & Dean (2015), Distilling the Knowledge
in a Neural Network, on MNIST, in three layers along the data flow (each imports only from
its own layer or one below):

* ``kdlib.core``: MNIST and transfer sets (data, transfer), a run's hyper-parameters and
  their checks (spec), the networks and their dropout (models, dropout; Section 3), the loss
  and its gradient (losses, derivations; Section 2, equations 1-4), one training step (step),
  the loop and its checks (train, checks), error counts (evaluate), atomic files (io), tables,
  and the building blocks of Sections 4-6 (subsets, ensembles, specialists)
* ``kdlib.runs``: the student recipe (student_recipe), every experiment's run configs
  (recipes: Section 3; studies: Sections 4-6; catalogue: all by name), the search that chose
  the recipe (search), one run's artifact (experiments), whole experiments (runner),
  provenance, the earlier recipes' runs (history), envcheck
* ``kdlib.analysis``: loading runs and pairing them by seed (results), statistics and verdicts
  (stats, verdicts), the claims (claims, bias_shift, study_claims), the search read
  back (search_results), figures (plots), long-run status (progress) and the README's and
  entry page's tables (report)
"""

__version__ = "0.1.0"
#: Part of every run's config hash: bump when a change alters what a run computes (older
#: artifacts are then retrained), or migrate the artifacts when only the config's form changes
#: (version 2: every field in the config, none left out at its default; version 3: the config
#: holds no recipe number and no teacher epochs, the code building one student recipe).
ARTIFACT_VERSION = 3

from .core.losses import distillation_loss, logit_matching_loss, softmax_with_temperature  # noqa: E402

__all__ = ["distillation_loss", "logit_matching_loss", "softmax_with_temperature",
           "__version__", "ARTIFACT_VERSION"]
