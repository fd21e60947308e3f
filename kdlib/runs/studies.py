"""The studies beyond Section 3 (chapters 7-9): their run configs (``kdlib.runs.runner`` runs them).

* ``soft_targets`` (Section 6, soft targets as a regulariser): 2x800 students on a stratified
  fraction of the training images, hard labels against the teacher's soft targets, both with
  the same number of updates as on all the data.
* ``ensemble`` (Section 4): students distilled from one teacher and from the ensemble of the
  teachers (averaged softened distributions, ``kdlib.core.ensembles``); the hard-label students
  are the ``student`` experiment's.
* ``specialists`` (Section 5): a 2x800 generalist on hard labels, and specialists
  initialised from it on enriched transfer sets with a dustbin class (``kdlib.core.specialists``);
  their combination is computed when the results are read
  (``kdlib.analysis.study_claims.combined_probabilities``).

Every run is a ``StudyConfig``: a ``RunConfig`` that also names, with their config hashes,
the runs it is made from (teachers, generalist), so its artifact goes stale when they change.
The teacher of all three is the paper-recipe teacher of each seed, as in Section 3.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from ..core.spec import Member, TrainSpec
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
