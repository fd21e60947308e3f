"""A protocol's choices made on the validation split (``kdlib.protocols``, issue 11).

Each distillation protocol fixes some settings (the hard-label weight, the student epochs) by
a sweep on the validation split: students trained on the first 50,000 training images, errors
counted on the last 10,000. These functions read those sweeps (never train) and say which
setting the rule picks (``claims.validation_choice``: fewest seed-mean errors, bracketed or
not) and which one the protocol uses; ``python -m kdlib select`` and chapter 6 print them.
"""
from __future__ import annotations

from .claims import errors_by, hard_weight_grid, validation_choice
from .experiments import RunResult
from .protocols import protocol
from .recipes import DEFAULT_SEEDS
from .results import load_if_chosen
from .stats import format_mean_sd


def student_epochs_grid(runs: list[RunResult]) -> dict[int, list[int]]:
    """{student epochs: [validation errors of each seed]} of the student-epochs sweep."""
    return errors_by(runs, lambda r: int(r.config["spec"]["epochs"]))


def validation_choices(results_dir=None, profile: str = "full") -> list[dict]:
    """The current protocol's choices made on the validation split (``kdlib.protocols``): for
    the hard-label weight, then the student epochs, the sweep so far ({setting: errors per
    seed}), the setting it picks (``validation_choice``: fewest seed-mean errors, bracketed or
    not) and the value set in the protocol (None: not set yet). Never trains; a sweep that
    cannot be built yet (its step needs an earlier choice) has an empty grid."""
    p = protocol()
    steps = [("hard-label weight", "hard_weight", hard_weight_grid, 0.0, p.hard_weight),
             ("student epochs", "student_epochs", student_epochs_grid, None, p.student_epochs)]
    out = []
    for what, experiment, grid_of, floor, chosen_value in steps:
        grid = grid_of(load_if_chosen(experiment, profile, DEFAULT_SEEDS, results_dir,
                                      validation=True))  # empty: it needs the hard weight first
        complete = bool(grid) and len({len(e) for e in grid.values()}) == 1
        choice = validation_choice(grid, floor=floor) if grid else None
        out.append({"what": what, "experiment": experiment, "grid": grid, "complete": complete,
                    "choice": choice, "set": chosen_value})
    return out


def validation_choices_table(choices: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of ``validation_choices``: each setting tried, its validation errors
    (mean ± sd over seeds), and which one the rule picks and the protocol uses."""
    rows = []
    for c in choices:
        if not c["grid"]:
            rows.append([c["what"], "-", "not run yet", "", ""])
            continue
        for setting, errors in c["grid"].items():
            marks = []
            if c["choice"] and setting == c["choice"]["best"]:
                marks.append("fewest" + ("" if c["choice"]["bracketed"] else " (at the grid's edge)"))
            if c["set"] is not None and float(setting) == float(c["set"]):
                marks.append("used")
            rows.append([c["what"], f"{setting:g}", format_mean_sd(errors, 1, count=False), str(len(errors)),
                         ", ".join(marks)])
    return ["choice", "setting", "validation errors (mean ± sd)", "seeds", ""], rows


def protocol_choices() -> list[tuple[str, str, str]]:
    """(what the paper leaves open, our choice, why) under the reported protocol, for the
    results chapter; values read from the recipes and ``kdlib.protocols``."""
    from . import recipes as rc
    p = protocol()
    d = rc.distill_spec()
    teacher = rc.protocol_teacher_spec()
    hard_weight, sweep_epochs = rc.sweep_settings()
    searched = p.optimiser is not None
    optimiser = ({"sgd": f"SGD, momentum {d.momentum:g}", "adam": "Adam"}.get(d.optimizer, d.optimizer)
                 + f", batch {d.batch_size}")
    narrow = "".join(f"; 2x{w} students {lr:g}" for w, lr in p.width_lrs)
    epochs_why = (f"chosen on the validation split among {', '.join(map(str, p.student_epoch_grid))}"
                  if p.student_epoch_grid else "fixed a priori")
    return [
        ("Optimiser (students)", optimiser,
         "chosen on the validation split with its learning rate (chapter 6: SGD, Adam and the "
         "schedule of Hinton et al. 2012)" if searched else
         "plain SGD as in Hinton et al. (2012); batch 128 keeps > 460 updates per epoch"),
        ("Learning rate and schedule (students)",
         f"{d.lr:g}{narrow}; linear warm-up over {d.warmup_epochs} epochs, then cosine decay to 0",
         ("chosen on the validation split (narrow students: their own search stage); "
          if searched else "no schedule to tune; ")
         + "the last epoch is reported, never the best one; without the warm-up a 2x800 student "
           "at T = 20 collapsed to one class in its first epoch"),
        ("Teacher", f"{teacher.epochs} epochs, dropout {teacher.input_dropout:g} input / "
         f"{teacher.hidden_dropout:g} hidden, max-norm {teacher.max_norm:.3g}, jitter up to "
         f"{teacher.jitter} px" + (", the schedule of Hinton et al. (2012)"
                                   if teacher.schedule == "hinton2012" else ""),
         "the recipe the paper cites (Hinton et al. 2012; chapter 6 lists our deviations)"
         if p.teacher == "paper_teacher" else "what 2 CPU cores allowed per seed"),
        ("Student budget", f"{p.student_epochs} epochs for every student"
         if searched and sweep_epochs == p.student_epochs else
         f"hard labels {rc.STUDENT.epochs} epochs; distilled {p.student_epochs}; sweeps {sweep_epochs}",
         f"the distilled student's epochs {epochs_why}"),
        ("Distillation loss", f"soft weight {rc.SOFT_WEIGHT:g} x T^2, hard weight "
         f"{p.hard_weight:g}, T = {rc.DISTILL_TEMPERATURE:g}",
         f"T from Section 3; the hard weight chosen on the validation split among "
         f"{', '.join(f'{w:g}' for w in p.hard_weights)}"
         + ("" if hard_weight == p.hard_weight else
            f"; the temperature sweep keeps the a-priori {hard_weight:g}")),
        ("Arithmetic (students)", f"{d.precision} matrix products, float32 weights and update",
         "speed on CPUs with AVX-512 BF16; parity with float32 measured on the validation split "
         "(benchmarks/README.md)"),
        ("Gradient clipping", "none" if p.max_grad_norm is None else
         f"each distilled student's gradient to L2 norm {p.max_grad_norm:g}",
         "not needed by the searched recipe" if searched else
         "fixed a priori: a teacher with large logits made students diverge or collapse"),
        ("Transfer set", "the 60,000 training images, no jitter, teacher logits computed once",
         "Section 3: the transfer set has no translations"),
        ("Initialisation", "U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per member seed",
         "PyTorch's nn.Linear default; the paper does not say"),
        ("Tuning", "nothing tuned on the test set; the validation split (`--validation`) trains "
         "teacher and students on the first 50,000 training images and counts errors on the "
         "last 10,000", "the student recipe was chosen there (chapter 6)"),
    ]
