"""The student recipes this book reported before its current one, read from committed tables.

The code builds only the book's recipe (``kdlib.runs.student_recipe``). The earlier two, their claims,
their choices and their runs were frozen into ``results/history/`` when they left the code:
``recipes.csv`` (each recipe, when it was reported, why it was replaced), ``claims_by_recipe.csv``
(every Section 3 claim under each), ``second_recipe_choices.csv`` (the second recipe's
validation sweeps), ``changes.csv`` (every change that superseded results) and
``superseded_runs.csv`` (each run of an earlier recipe: its artifact, result and cost). The
runs themselves stay in ``results/``; ``load`` reads one by its recorded path.
"""
from __future__ import annotations

import csv
from pathlib import Path

from .experiments import RunResult, read_run

ROOT = Path(__file__).resolve().parents[2]
HISTORY_DIR = ROOT / "results" / "history"
TABLES = ("recipes", "claims_by_recipe", "second_recipe_choices", "changes", "superseded_runs")


def table(name: str) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the committed table ``results/history/<name>.csv``."""
    if name not in TABLES:
        raise ValueError(f"unknown history table {name!r}; choose one of {', '.join(TABLES)}")
    with open(HISTORY_DIR / f"{name}.csv", newline="") as f:
        header, *rows = list(csv.reader(f))
    return header, rows


def superseded_runs() -> list[dict]:
    """Every run of an earlier recipe, one dict per run with numeric fields as numbers (the
    same keys as ``kdlib.analysis.results.provenance_rows`` plus ``recipe`` and ``path``)."""
    header, rows = table("superseded_runs")
    out = []
    for row in rows:
        r = dict(zip(header, row))
        r.update(seed=int(r["seed"]), test_errors=int(r["test_errors"]),
                 wall_time_s=float(r["wall_time_s"]), flops=float(r["flops"]), steps=float(r["steps"]),
                 status=f"superseded ({r['recipe']})")
        out.append(r)
    return out


def load(row: dict, root: Path = ROOT) -> RunResult:
    """The artifact of a row of ``superseded_runs`` (its path is relative to the repository)."""
    return read_run(Path(root) / row["path"])


def runs(recipe: str, experiment: str, names=None) -> list[RunResult]:
    """The superseded runs of ``recipe`` in ``experiment`` (only ``names`` when given), in the
    table's order."""
    rows = [r for r in superseded_runs() if r["recipe"] == recipe and r["experiment"] == experiment
            and (names is None or r["run"] in names)]
    if not rows:
        raise ValueError(f"no superseded runs of {recipe!r} in {experiment!r}"
                         + (f" named {sorted(names)}" if names else ""))
    return [load(r) for r in rows]


def by_recipe_and_experiment(rows: list[dict]) -> list[tuple[str, str, list[dict]]]:
    """``superseded_runs`` grouped: (recipe, experiment, its rows), in the table's order."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["recipe"], r["experiment"]), []).append(r)
    return [(recipe, experiment, group) for (recipe, experiment), group in groups.items()]
