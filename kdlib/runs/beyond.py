"""The studies beyond Section 3 (issue 15): their configs, and load-or-train runs.

* ``soft_targets`` (Section 6, soft targets as a regulariser): 2x800 students on a stratified
  fraction of the training images, hard labels against the teacher's soft targets, both with
  the same number of updates as on all the data.
* ``ensemble`` (Section 4): students distilled from one teacher and from the ensemble of the
  teachers (averaged softened distributions, ``kdlib.core.ensembles``); the hard-label students
  are the ``student`` experiment's.
* ``specialists`` (Section 5): a 2x800 generalist on hard labels, and specialists
  initialised from it on enriched transfer sets with a dustbin class (``kdlib.core.specialists``);
  their combination is computed when the results are read (``combined_probabilities``).

Every run is a ``StudyConfig``: a ``RunConfig`` that also names, with their config hashes,
the runs it is made from (teachers, generalist), so its artifact goes stale when they change.
The teacher of all three is the paper-recipe teacher of each seed, as in Section 3.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # kdlib.runs.experiments imports kdlib.runs.recipes, which registers these studies
    from .experiments import RunResult
from ..core.spec import Member, TrainSpec
from ..core.specialists import combine_specialists, confusable_groups
from ..core.train import predict_logits
from ..core.transfer import TransferSet
from .recipes import (
    DISTILL_TEMPERATURE,
    STUDENT,
    RunConfig,
    budget,
    distill_member,
    distill_spec,
    paper_teacher_configs,
)

# ----------------------------------------------------------------------------- choices
#: The soft-targets study records test errors after every epoch on this class-stratified
#: share of the test set (1,000 images; the final errors are on all 10,000): a 1% run has
#: 4,000 epochs.
CURVE_TEST_SHARE = 0.1
#: Specialists' groups come from the generalist's training-set predictions at this
#: temperature (at T = 1 a network that fits its training set predicts nearly one-hot there,
#: and the covariance would be the labels').
GROUP_TEMPERATURE = DISTILL_TEMPERATURE
#: A specialist is fine-tuned from the generalist (ours: a tenth of its learning rate, 10
#: epochs of the enriched set, with the teacher's 2-pixel jitter so it sees images the
#: generalist has not fitted already).
SPECIALIST = replace(STUDENT, epochs=10, lr=STUDENT.lr / 10, jitter=2)
#: The generalist's n most probable classes decide the active specialists (Section 5.4: n = 1).
TOP_N = 1


@dataclass(frozen=True)
class StudyBudget:
    """What a profile spends on the three studies (``recipes.PROFILES`` for Section 3's)."""

    fractions: tuple                 # of the training images (Section 6 uses 3%)
    ensemble_seeds: tuple            # the teachers whose ensemble is distilled (Section 4: 10)
    cluster_ks: tuple                # K-means with each k, every cluster a specialist
    specialist_epochs: int | None    # None: SPECIALIST's


#: smoke: of its 10,000 images, two teachers, small k, one specialist epoch.
STUDY_BUDGETS = {
    "smoke": StudyBudget(fractions=(0.03, 1.0), ensemble_seeds=(0, 1), cluster_ks=(2, 3),
                         specialist_epochs=1),
    "full": StudyBudget(fractions=(0.01, 0.03, 0.1, 1.0), ensemble_seeds=(0, 1, 2),
                        cluster_ks=(3, 4, 5), specialist_epochs=None),
}


def study_budget(profile: str) -> StudyBudget:
    budget(profile)  # the same error for an unknown profile as everywhere
    return STUDY_BUDGETS[profile]


def study_teacher_configs(profile: str, seeds, validation: bool = False) -> list[RunConfig]:
    """The teacher of the three studies, one config per seed: the paper-recipe teacher, as in
    Section 3."""
    return paper_teacher_configs(profile, list(seeds), validation)


@dataclass(frozen=True)
class StudyConfig(RunConfig):
    """A run of a study; ``sources`` are "experiment/name@hash" of the runs it is made from."""

    sources: tuple = ()


def ref(cfg: RunConfig) -> str:
    return f"{cfg.experiment}/{cfg.name}@{cfg.hash}"


def scaled_spec(spec: TrainSpec, profile: str, scale: float = 1.0) -> TrainSpec:
    """``spec`` with the profile's epochs (smoke: 3) times ``scale``, warm-up and checkpoints alike."""
    b = budget(profile)
    epochs = b.epochs or spec.epochs
    every = b.checkpoint_every or spec.checkpoint_every
    return replace(spec, epochs=max(1, round(epochs * scale)),
                   warmup_epochs=round(min(spec.warmup_epochs, epochs - 1) * scale),
                   checkpoint_every=max(1, round(every * scale)))


def _data(profile, validation):
    return dict(profile=profile, validation=validation, train_size=budget(profile).train_size)


def _distilled_member(seed):
    return distill_member(seed)


# ----------------------------------------------------------------------------- configs
def fractions(profile: str) -> tuple:
    return study_budget(profile).fractions


def soft_target_configs(profile, seeds, validation=False) -> list[StudyConfig]:
    """Per fraction f and seed: hard labels and the chapter-2 distillation recipe (T = 20) from
    the teacher of that seed, on the same stratified subset, for 1/f times the epochs."""
    teachers = dict(zip(seeds, study_teacher_configs(profile, seeds, validation)))
    out = []
    for f in fractions(profile):
        spec = scaled_spec(distill_spec(), profile, 1 / f)
        common = dict(spec=spec, transfer=str(TransferSet("subset", fraction=f)),
                      **_data(profile, validation))
        for s in seeds:
            out.append(StudyConfig("soft_targets", f"f{100 * f:g}-hard-s{s}", member=Member(seed=s),
                                   **common))
            out.append(StudyConfig("soft_targets", f"f{100 * f:g}-soft-s{s}", teacher_seed=s,
                                   member=_distilled_member(s), sources=(ref(teachers[s]),), **common))
    return out


def subset_fraction(transfer: str) -> float | None:
    """The fraction f of a "subset:f" transfer set (the soft-targets study), else None."""
    return TransferSet.parse(transfer).fraction


def curve_every(cfg: RunConfig) -> int:
    """Epochs between two points of a run's test-error curve: one point per pass over as many
    images as the whole training set (a run on a fraction f has 1/f times the epochs)."""
    fraction = subset_fraction(cfg.transfer)
    return 1 if fraction is None else max(1, round(1 / fraction))


def ensemble_members(profile: str, validation: bool = False) -> list[RunConfig]:
    seeds = study_budget(profile).ensemble_seeds
    return study_teacher_configs(profile, list(seeds), validation)


def ensemble_configs(profile, seeds, validation=False) -> list[StudyConfig]:
    """Per seed: the distilled 2x800 recipe from the teacher of that seed and from the ensemble."""
    members = ensemble_members(profile, validation)
    spec = scaled_spec(distill_spec(), profile)
    common = dict(spec=spec, **_data(profile, validation))
    singles = study_teacher_configs(profile, seeds, validation)
    return ([StudyConfig("ensemble", f"from-teacher-s{s}", member=_distilled_member(s), teacher_seed=s,
                         sources=(ref(t),), **common) for s, t in zip(seeds, singles)]
            + [StudyConfig("ensemble", f"from-ensemble{len(members)}-s{s}", member=_distilled_member(s),
                           sources=tuple(ref(t) for t in members), **common) for s in seeds])


def cluster_ks(profile: str) -> tuple:
    return study_budget(profile).cluster_ks


def generalist_configs(profile, seeds, validation=False) -> list[RunConfig]:
    """The student recipe on hard labels, weights stored: what specialists start from."""
    return [RunConfig("specialists", f"generalist-s{s}", spec=scaled_spec(STUDENT, profile),
                      member=Member(seed=s), store_weights=True, **_data(profile, validation))
            for s in seeds]


def specialist_configs(profile, seeds, validation=False) -> list[RunConfig]:
    """Generalists, and per seed one specialist per cluster j of each k (``transfer`` "k<k>g<j>")."""
    generalists = generalist_configs(profile, seeds, validation)
    spec = scaled_spec(SPECIALIST, profile)
    spec = replace(spec, epochs=study_budget(profile).specialist_epochs or spec.epochs)
    return generalists + [
        StudyConfig("specialists", f"spec-k{k}g{j}-s{s}", spec=spec, member=Member(seed=s),
                    transfer=str(TransferSet("specialist", clusters=k, group=j)), sources=(ref(g),),
                    **_data(profile, validation))
        for s, g in zip(seeds, generalists) for k in cluster_ks(profile) for j in range(k)]


CONFIGS = {"soft_targets": soft_target_configs, "ensemble": ensemble_configs,
           "specialists": specialist_configs}


# ----------------------------------------------------------------------------- reading results
def stacked_logits(model, images) -> torch.Tensor:
    """Logits (K, N, C) of a model of K members, whatever shape ``predict_logits`` gives."""
    out = predict_logits(model, images)
    return out.reshape(-1, len(images), out.shape[-1])


def seed_groups(generalist_train_logits, ks, seed: int) -> dict[int, list[tuple]]:
    """{k: the k confusable groups} of one generalist (K-means seeded with the run's seed)."""
    return {k: confusable_groups(generalist_train_logits, k, GROUP_TEMPERATURE, seed) for k in ks}


def specialist_logits(run: RunResult) -> torch.Tensor:
    """A specialist's test logits with the dustbin correction added (Section 5.2)."""
    z = torch.as_tensor(run.logits(), dtype=torch.float64).clone()
    z[:, -1] += run.metrics["dustbin_correction"]
    return z


def combined_probabilities(generalist: RunResult, specialists: list[RunResult],
                           top_n: int = TOP_N) -> torch.Tensor:
    """Section 5.4's q (N, C) from a generalist's and its specialists' stored test logits."""
    groups = [tuple(r.metrics["classes"]) for r in specialists]
    return combine_specialists(torch.as_tensor(generalist.logits()),
                               [specialist_logits(r) for r in specialists], groups, top_n)


def specialists_of(runs: list[RunResult], seed: int, ks) -> list[RunResult]:
    """The specialists of one seed whose k is in ``ks`` (name spec-k<k>g<j>-s<seed>)."""
    return [r for r in runs if r.config["name"].startswith("spec-")
            and r.config["member"]["seed"] == seed
            and int(r.config["transfer"].split(":k")[1].split("g")[0]) in ks]


def specialist_combinations(runs: list[RunResult], seeds, ks, labels) -> tuple[list, dict]:
    """Per seed, which test digits the generalist gets right, and for i = 1..len(ks) which the
    combination with the specialists of the first i values of k gets right (each digit then
    covered by i specialists): (generalist [array per seed], {i: [array per seed]})."""
    labels = np.asarray(labels)
    by_name = {r.config["name"]: r for r in runs}
    generalists = [by_name[f"generalist-s{s}"] for s in seeds]
    combined = {i: [combined_probabilities(g, specialists_of(runs, s, ks[:i])).numpy().argmax(-1) == labels
                    for g, s in zip(generalists, seeds)]
                for i in range(1, len(ks) + 1)}
    return [g.logits().argmax(-1) == labels for g in generalists], combined
