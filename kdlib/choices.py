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
