"""The experiments of Section 3 as recipes: every run's config, for each profile's budget.

Every run is one ``RunConfig`` (architecture and optimiser ``TrainSpec``, the member's seed
and loss, the transfer set, the teacher it distils from, the profile); its hash names its
artifact (``kdlib.runs.experiments``). The recipes are one block of constants; a profile is a
row of ``PROFILES`` (a ``Budget``: how many training images and epochs, which sweep grids),
not a branch in the config builders.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Callable

from .. import ARTIFACT_VERSION
from ..core.spec import Member, TrainSpec, fingerprint
from ..core.transfer import TransferSet
from .student_recipe import LOW_HARD_WEIGHT, RECIPE

TEMPERATURES = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0, 10.0, 20.0)
SWEEP_WIDTHS = (800, 300, 30)
DEFAULT_SEEDS = (0, 1, 2)

# ----------------------------------------------------------------------------- recipes
#: A short dropout teacher (60 epochs, cosine schedule; 20% input / 50% hidden dropout,
#: max-norm, 2 px jitter): the teacher workload of the benchmarks. The book's students learn
#: from ``PAPER_TEACHER``.
TEACHER = TrainSpec(widths=(1200, 1200), epochs=60, batch_size=128, lr=0.1, momentum=0.9,
                    input_dropout=0.2, hidden_dropout=0.5, max_norm=3.5, jitter=2)
#: Students: no regularisation at all, un-jittered data (Section 3).
STUDENT = TrainSpec(widths=(800, 800), epochs=40, batch_size=128, lr=0.1, momentum=0.9)
#: Distillation: T = 20 (Section 3); the hard-label weight is the student recipe's, chosen on
#: the validation split (``kdlib.runs.student_recipe``), not the paper's "considerably lower weight".
DISTILL_TEMPERATURE, SOFT_WEIGHT, HARD_WEIGHT = 20.0, 1.0, RECIPE.hard_weight
#: Distilled students warm the learning rate up over 2 epochs: the soft-target gradient T (q - p)
#: is up to T times a hard-label one (without, a T = 20 omitted-3 student collapsed in epoch 1).
DISTILL_WARMUP_EPOCHS = 2
#: The teacher of the paper's reference (Hinton et al. 2012, Appendix A, MNIST), as published:
#: batch 100, weights N(0, 0.01^2), learning rate 10 decaying by 0.998 per epoch, momentum
#: 0.5 rising linearly to 0.99 over 500 epochs (update v = p v - (1 - p) lr grad), max-norm
#: on each hidden unit's incoming weights (squared length 15, L2 norm sqrt(15)), not on the
#: output units; dropout 20% input / 50% hidden; plus the distillation paper's jitter of up to
#: 2 px. Deviations: 1000 epochs instead of about 3000 (compute), bfloat16 GEMMs (speed),
#: dropout drawn from random bytes (p = 0.2 realised as 51/256), and learning rate 1 instead
#: of 10, chosen on the validation split (``PAPER_TEACHER_LR_PROBE``).
PAPER_TEACHER = TrainSpec(widths=(1200, 1200), epochs=1000, batch_size=100, lr=1.0,
                          momentum=0.5, momentum_final=0.99, momentum_epochs=500,
                          schedule="hinton2012", lr_decay=0.998, init_std=0.01,
                          input_dropout=0.2, hidden_dropout=0.5, max_norm=15 ** 0.5,
                          max_norm_output=False, jitter=2, precision="bfloat16",
                          checkpoint_every=10)
@dataclass(frozen=True)
class Optimiser:
    """A student optimiser of the recipe search (kdlib.runs.search): "sgd" (momentum 0.9, cosine
    decay after a 2-epoch warm-up), "adam" (the same schedule) or "hinton2012" (the teacher's
    schedule of Hinton et al. 2012: momentum 0.5 rising to 0.99 over 500 epochs, step
    (1 - p) lr 0.998^epoch, N(0, 0.01^2) weights, batch 100), at learning rate ``lr``."""

    family: str
    lr: float

    @property
    def label(self) -> str:
        return f"{self.family}-lr{self.lr:g}"


def student_recipe(optimiser: Optimiser, epochs: int, width: int = 800) -> TrainSpec:
    """A 2x``width`` student trained by ``optimiser``: bfloat16 GEMMs, no regularisation, no
    clipping (the search's recipes, and so the book's)."""
    base = replace(STUDENT, widths=(width, width), epochs=epochs, lr=optimiser.lr,
                   precision="bfloat16", checkpoint_every=10)
    if optimiser.family == "sgd":
        return replace(base, warmup_epochs=DISTILL_WARMUP_EPOCHS)
    if optimiser.family == "adam":
        return replace(base, optimizer="adam", warmup_epochs=DISTILL_WARMUP_EPOCHS)
    if optimiser.family == "hinton2012":
        return replace(base, schedule="hinton2012", batch_size=100, momentum=0.5,
                       momentum_final=0.99, momentum_epochs=500, lr_decay=0.998, init_std=0.01)
    raise ValueError(f"unknown optimiser family {optimiser.family!r}; use sgd, adam or hinton2012")


def distill_spec(width: int = 800, epochs: int | None = None) -> TrainSpec:
    """The 2x``width`` student of the student recipe: its optimiser (a width's own learning rate
    where it has one) for ``epochs`` (default: the recipe's)."""
    family, lr = RECIPE.optimiser
    return student_recipe(Optimiser(family, dict(RECIPE.width_lrs).get(width, lr)),
                          epochs or RECIPE.student_epochs, width)


def distill_member(seed: int, hard_weight: float | None = None,
                   temperature: float = DISTILL_TEMPERATURE) -> Member:
    """A distilled student's loss (Section 2): T^2-scaled soft term, the recipe's hard weight."""
    hw = RECIPE.hard_weight if hard_weight is None else hard_weight
    return Member(seed=seed, temperature=temperature, soft_weight=SOFT_WEIGHT, hard_weight=hw)


#: The probe that chose PAPER_TEACHER's learning rate (4 epochs, first 10,000 images, errors on the
#: last 10,000, seed 0, after 653f1ed); at 10 (published) and 3 every ReLU fell silent in epoch 1.
PAPER_TEACHER_LR_PROBE = {10.0: [9009, 8936, 8970, 9039], 3.0: [5987, 7454, 6910, 7673],
                          2.0: [4179, 2528, 2446, 2065], 1.0: [1516, 856, 697, 676],
                          0.2: [2995, 1627, 1099, 897]}


@dataclass(frozen=True)
class Budget:
    """What a profile spends on a recipe; None keeps the recipe's own value."""

    train_size: int | None         # training images (the first ones); None: all 60,000
    epochs: int | None             # every run's epochs; None: the recipe's (or its sweep's)
    checkpoint_every: int | None   # None: the recipe's
    sweep_widths: tuple            # the temperature x capacity sweep ...
    temperatures: tuple
    hard_weights: tuple | None     # ... and the hard-label weight sweep (None: the recipe's)


#: full: the recipes as they are. smoke: same code, a 10,000-image subset, 3 epochs, small sweeps.
PROFILES = {
    "smoke": Budget(train_size=10000, epochs=3, checkpoint_every=1, sweep_widths=(300, 30),
                    temperatures=(1.0, 4.0, 20.0), hard_weights=(0.0, 1.0)),
    "full": Budget(train_size=None, epochs=None, checkpoint_every=None,
                   sweep_widths=SWEEP_WIDTHS, temperatures=TEMPERATURES,
                   hard_weights=None),
}


@dataclass(frozen=True)
class RunConfig:
    """One training run; its hash names its artifact."""

    experiment: str
    name: str
    profile: str
    spec: TrainSpec
    member: Member
    transfer: str = "all"          # kdlib.core.transfer: "all", "drop:3", "keep:7,8", ...
    teacher_seed: int | None = None
    train_size: int | None = None  # None: all 60,000
    validation: bool = False       # train on the first 50,000, test on the last 10,000
    store_weights: bool = False
    logits_dtype: str = "float32"

    def __post_init__(self):
        TransferSet.parse(self.transfer)  # a bad transfer set is named when the run is made

    def to_dict(self) -> dict:
        d = asdict(self)
        d["spec"]["widths"] = list(self.spec.widths)
        return d

    @property
    def hash(self) -> str:
        return config_hash(self.to_dict())

    def group_key(self):
        """Runs that can be trained together as one stacked model."""
        return (self.spec, self.transfer, self.teacher_seed, self.train_size, self.validation,
                self.profile)


def config_hash(config: dict) -> str:
    """The name of a run's config (``RunConfig.to_dict``) under this ``ARTIFACT_VERSION``."""
    return fingerprint({"config": config, "artifact_version": ARTIFACT_VERSION})


def budget(profile: str) -> Budget:
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[profile]


def _profile_spec(spec: TrainSpec, profile: str, epochs: int | None = None) -> TrainSpec:
    """``spec`` within the profile's budget; ``epochs`` (a sweep's) where the budget keeps the
    recipe's epochs."""
    b = budget(profile)
    n = b.epochs or epochs or spec.epochs
    return replace(spec, epochs=n, checkpoint_every=b.checkpoint_every or spec.checkpoint_every,
                   warmup_epochs=min(spec.warmup_epochs, n - 1))


def _common(profile, validation):
    return dict(profile=profile, validation=validation, train_size=budget(profile).train_size)


def paper_teacher_configs(profile, seeds, validation=False):
    """The teacher recipe of Hinton et al. (2012) with jitter (``PAPER_TEACHER``), every seed."""
    return [RunConfig("paper_teacher", f"paper-teacher-s{s}", spec=_profile_spec(PAPER_TEACHER, profile),
                      member=Member(seed=s), store_weights=True, **_common(profile, validation))
            for s in seeds]


def student_configs(profile, seeds, validation=False):
    """The 2x800 student on hard labels only, by the recipe chosen for it on the validation
    split (``StudentRecipe.label_recipe``, search stage 5)."""
    (family, lr), epochs = RECIPE.label_recipe
    spec = _profile_spec(student_recipe(Optimiser(family, lr), epochs), profile)
    return [RunConfig("student", f"student-s{s}", spec=spec, member=Member(seed=s),
                      **_common(profile, validation)) for s in seeds]


def _distilled(experiment, name, profile, seed, validation, *, teacher_seed=None, width=800,
               temperature=DISTILL_TEMPERATURE, hard_weight=None, transfer="all",
               epochs=None, logits_dtype="float32", jitter=0):
    """A distilled student of the recipe; ``teacher_seed`` None: its own seed's;
    ``jitter``: the transfer set jittered, the teacher labelling every batch as it is seen."""
    spec = replace(_profile_spec(distill_spec(width, epochs), profile, epochs), jitter=jitter)
    return RunConfig(experiment, name, spec=spec,
                     member=distill_member(seed, hard_weight, temperature),
                     transfer=transfer, teacher_seed=seed if teacher_seed is None else teacher_seed,
                     logits_dtype=logits_dtype, **_common(profile, validation))


def distilled_configs(profile, seeds, validation=False):
    """2x800 student at T=20 from the teacher of the same seed, un-jittered transfer set."""
    return [_distilled("distilled", f"distilled-T20-s{s}", profile, s, validation) for s in seeds]


def soft_only_configs(profile, seeds, validation=False):
    """The distilled recipe with no hard-label term at all (soft targets only, hard weight 0)."""
    return [_distilled("soft_only", f"soft-only-T20-s{s}", profile, s, validation, hard_weight=0.0)
            for s in seeds]


def capacity_configs(profile, seeds, validation=False):
    """The distilled recipe with a 2x1200 student (the teacher's shape, without its dropout and
    jitter): whether the student's size or the transfer set limits it (beyond the paper)."""
    return [_distilled("capacity", f"w1200-T20-s{s}", profile, s, validation, width=1200)
            for s in seeds]


def jittered_transfer_configs(profile, seeds, validation=False):
    """The distilled recipe on a jittered transfer set (up to ``PAPER_TEACHER.jitter`` px, the
    teacher labelling every jittered batch): beyond the paper, whose transfer set had no
    translations; how much of what remains is the transfer set."""
    return [_distilled("jittered_transfer", f"distilled-T20-jitter{PAPER_TEACHER.jitter}-s{s}",
                       profile, s, validation, jitter=PAPER_TEACHER.jitter) for s in seeds]


def sweep_settings() -> tuple[float, int]:
    """The hard-label weight and epochs of the temperature sweep: the recipe's."""
    return RECIPE.hard_weight, RECIPE.student_epochs


def baseline_configs(profile, seeds, validation=False):
    """Hard-label students of the sweep widths other than 2x800, by the distilled recipe's
    optimiser and epochs: the baseline each width's temperature sweep is compared with (the
    2x800 one is the ``student`` experiment; ``kdlib.analysis.results.hard_label_students``)."""
    return [RunConfig("baseline", f"w{w}-hard-s{s}", spec=_profile_spec(distill_spec(w), profile),
                      member=Member(seed=s), **_common(profile, validation))
            for w in budget(profile).sweep_widths if w != STUDENT.widths[0] for s in seeds]


def temperature_configs(profile, seeds, validation=False):
    """Widths 800/300/30 over the T grid, every seed, each from its own seed's teacher (Section 3)."""
    b = budget(profile)
    return [_distilled("temperature", f"w{w}-T{t:g}-s{s}", profile, s, validation, width=w,
                       temperature=t, logits_dtype="float16")
            for w in b.sweep_widths for t in b.temperatures for s in seeds]


def hard_weight_configs(profile, seeds, validation=False):
    """Weight of the hard-label term at T=20, 2x800, every seed from its own seed's teacher
    (on the validation split: from the validation teacher, seed 0's)."""
    return [_distilled("hard_weight", f"hw{h:g}-s{s}", profile, s, validation, hard_weight=h,
                       teacher_seed=seeds[0] if validation else None, logits_dtype="float16")
            for h in budget(profile).hard_weights or RECIPE.test_hard_weights for s in seeds]


def omit3_configs(profile, seeds, validation=False):
    """Transfer set with every 3 removed (Section 3)."""
    return [_distilled("omit3", f"omit3-s{s}", profile, s, validation, transfer="drop:3")
            for s in seeds]


def only78_configs(profile, seeds, validation=False):
    """Transfer set of only 7s and 8s (Section 3)."""
    return [_distilled("only78", f"only78-s{s}", profile, s, validation, transfer="keep:7,8")
            for s in seeds]


def omitted_low_hard_weight_configs(profile, seeds, validation=False):
    """Both omitted-digit transfer sets with the low hard weight ``LOW_HARD_WEIGHT``: the
    sensitivity rows (the hard labels push the student away from the missing classes)."""
    return [_distilled("omitted_low_hw", f"{kind}-hw{LOW_HARD_WEIGHT:g}-s{s}", profile, s, validation,
                       transfer=transfer, hard_weight=LOW_HARD_WEIGHT)
            for kind, transfer in (("omit3", "drop:3"), ("only78", "keep:7,8")) for s in seeds]


#: The experiments of Section 3 by name (``kdlib.runs.catalogue`` adds the studies of chapters 7-9).
SECTION_3: dict[str, Callable] = {
    "student": student_configs,
    "distilled": distilled_configs,
    "temperature": temperature_configs,
    "hard_weight": hard_weight_configs,
    "omit3": omit3_configs,
    "only78": only78_configs,
    "omitted_low_hw": omitted_low_hard_weight_configs,
    "soft_only": soft_only_configs,
    "baseline": baseline_configs,
    "paper_teacher": paper_teacher_configs,
    "capacity": capacity_configs,
    "jittered_transfer": jittered_transfer_configs,
}


def paper_teacher_runs(profile: str = "full", seeds=DEFAULT_SEEDS) -> list[RunConfig]:
    """Chapter 6's runs: each seed's paper-recipe teacher, then the first seed's on the validation split."""
    return (paper_teacher_configs(profile, list(seeds))
            + paper_teacher_configs(profile, list(seeds)[:1], validation=True))


def teacher_config_of(cfg: RunConfig) -> RunConfig:
    """The teacher run a distilled run ``cfg`` distils from: the paper-recipe teacher of its
    ``teacher_seed``."""
    return paper_teacher_configs(cfg.profile, [cfg.teacher_seed], cfg.validation)[0]
