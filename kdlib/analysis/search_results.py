"""The search that chose the student recipe (``kdlib.runs.search``), read back from its
artifacts: one row per setting, each stage's best, the narrow students' rates, the label-only
recipe, and the book's tables and curves. Never trains."""
from __future__ import annotations

from ..core.io import read_json
from ..runs.experiments import ArtifactError, failure_path, load_artifact
from ..runs.search import LONG_EPOCHS, SEARCH_SEEDS, STAGES, search_config, stage_grid


def search_table(results_dir="results", profile: str = "full", seeds=SEARCH_SEEDS) -> list[dict]:
    """Every run of the search defined so far, one row per (stage, setting, hard weight, epochs):
    ``{"stage", "family", "lr", "hard_weight", "epochs", "errors": [per seed or None],
    "mean", "status"}``; ``status`` is "done", "running" (not every seed has finished),
    or the failure ("diverged", "collapsed") of any seed. Never trains."""
    rows = []
    for stage in STAGES:
        for setting, hw, epochs, width, temperature in stage_grid(stage):
            errors, curves, failed, wall = [], [], None, 0.0
            for seed in seeds:
                cfg = search_config(setting, hw, epochs, seed, profile, width, temperature)
                path = failure_path(cfg, results_dir)
                if path.exists():
                    failed = read_json(path)["record"]["status"]
                    errors.append(None)
                    continue
                try:
                    res = load_artifact(cfg, results_dir)
                except ArtifactError:
                    errors.append(None)
                    continue
                errors.append(res.test_errors)
                curves.append(res.metrics["test_errors_curve"])
                wall += res.metrics["wall_time_s"]
            done = [e for e in errors if e is not None]
            rows.append({"stage": stage, "family": setting.family, "lr": setting.lr,
                         "hard_weight": hw, "epochs": epochs, "errors": errors,
                         "width": width, "temperature": temperature,
                         "mean": sum(done) / len(done) if done and not failed else None,
                         "curves": curves, "wall_s": wall,
                         "status": failed or ("done" if len(done) == len(seeds)
                                              else "running" if done else "not run")})
    return rows


def best_rows(rows, stage: int, key=("family",)) -> list[dict]:
    """Per group of ``key`` (e.g. each optimiser family), the finished row of ``stage`` with the
    fewest mean errors, with ``bracketed``: whether a worse finished (or failed) value lies on
    each side of it in its learning-rate (stage 1) or hard-weight (stage 2) grid."""
    axis = {1: "lr", 2: "hard_weight", 3: "epochs"}[stage]
    out = []
    groups: dict = {}
    for r in rows:
        if r["stage"] == stage and r["hard_weight"] is not None:  # distilled rows only
            groups.setdefault(tuple(r[k] for k in key), []).append(r)
    for group in groups.values():
        done = [r for r in group if r["mean"] is not None and r["status"] == "done"]
        if not done:
            continue
        best = min(done, key=lambda r: r["mean"])
        values = sorted(r[axis] for r in group)
        inside = values[0] < best[axis] < values[-1]
        out.append({**best, "bracketed": inside})
    return sorted(out, key=lambda r: r["mean"])


def narrow_rates(rows) -> list[dict]:
    """Stage 4, per (width, rate): validation errors averaged over the temperatures and seeds
    (None when a run failed or is missing), the failures, and ``chosen``: the width's rate
    with the fewest, among rates where nothing failed (``bracketed``: inside its grid)."""
    out = {}
    for r in rows:
        if r["stage"] != 4:
            continue
        o = out.setdefault((r["width"], r["lr"]), {"width": r["width"], "lr": r["lr"], "by_t": {},
                                                    "failed": [], "complete": True})
        o["by_t"][r["temperature"]] = r["mean"]
        if r["status"] in ("diverged", "collapsed"):
            o["failed"].append((r["temperature"], r["status"]))
        elif r["mean"] is None:
            o["complete"] = False
    for o in out.values():
        means = list(o["by_t"].values())
        ok = o["complete"] and not o["failed"]
        o["mean"] = sum(means) / len(means) if ok else None
        o["chosen"] = o["bracketed"] = False
    for width in {w for w, _ in out}:
        rates = sorted((o for (w, _), o in out.items() if w == width), key=lambda o: o["lr"])
        done = [o for o in rates if o["mean"] is not None]
        if done and all(o["complete"] for o in rates):
            best = min(done, key=lambda o: o["mean"])
            best["chosen"] = True
            best["bracketed"] = rates[0] is not best and rates[-1] is not best
    return sorted(out.values(), key=lambda o: (o["width"], o["lr"]))


def label_recipe(rows) -> dict | None:
    """Stage 5's choice: the finished label-only setting with the fewest mean validation
    errors, once every setting of the stage has finished or failed (None before), with
    ``bracketed``: a worse (or failed) rate on each side of it in its family and budget."""
    stage = [r for r in rows if r["stage"] == 5]
    if not stage or any(r["status"] in ("running", "not run") for r in stage):
        return None
    best = min((r for r in stage if r["mean"] is not None), key=lambda r: r["mean"])
    rates = sorted(r["lr"] for r in stage if (r["family"], r["epochs"]) == (best["family"], best["epochs"]))
    return {**best, "bracketed": rates[0] < best["lr"] < rates[-1]}


def narrow_markdown_rows(rows) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of stage 4 for the book, one row per temperature (the table fits the
    page) and one column per width and rate: the mean validation errors of seeds 0-1 (or how
    a run failed), then their mean over temperatures."""
    rates = narrow_rates(rows)
    temps = sorted({t for o in rates for t in o["by_t"]})
    header = ["Distilled at"] + [f"2x{o['width']}, rate {o['lr']:g}" for o in rates]
    body = [[f"T = {t:g}"] + [dict(o["failed"]).get(t) or ("-" if o["by_t"].get(t) is None
                                                           else f"{o['by_t'][t]:.1f}")
                              for o in rates] for t in temps]
    body.append(["mean over T"] + ["-" if o["mean"] is None else
                                   f"{o['mean']:.1f}" + (" (chosen)" if o["chosen"] else "")
                                   for o in rates])
    return header, body


SHORT_NAMES = {"sgd": "SGD", "adam": "Adam", "hinton2012": "Hinton 2012"}
FAMILY_NAMES = {"sgd": "SGD, momentum 0.9", "adam": "Adam", "hinton2012": "Hinton et al. (2012) schedule"}


def search_markdown_rows(rows) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the whole search for the book: every setting tried, in order (errors:
    validation errors of seeds 0 and 1; "labels only": no soft term)."""
    header = ["Stage", "Optimiser", "Rate", "Hard weight", "Epochs", "Errors", "Mean"]
    body, shown = [], set()
    for r in rows:
        if r["stage"] == 4:  # per temperature: ``narrow_rates``
            continue
        setting = (r["family"], r["lr"], r["hard_weight"], r["epochs"])
        if setting in shown:  # stage 3's 30-epoch budget is stage 2's run
            continue
        shown.add(setting)
        errors = ", ".join("-" if e is None else str(e) for e in r["errors"])
        mean = r["status"] if r["mean"] is None else f"{r['mean']:.1f}"
        body.append([str(r["stage"]), SHORT_NAMES[r["family"]], f"{r['lr']:g}",
                     "labels only" if r["hard_weight"] is None else f"{r['hard_weight']:g}",
                     str(r["epochs"]), errors, mean])
    return header, body


def finalist_curves(rows) -> dict[str, list]:
    """Validation errors after every epoch of each stage-3 finalist, by label."""
    return {f"{SHORT_NAMES[r['family']]} at {r['lr']:g}, {_hard(r['hard_weight'])}": r["curves"]
            for r in rows if r["stage"] == 3 and r["epochs"] == LONG_EPOCHS and r["curves"]}


def _hard(hard_weight) -> str:
    return "hard labels only" if hard_weight is None else f"hard weight {hard_weight:g}"
