"""The student-recipe search on the validation split (Section 3 leaves the student's optimiser,
learning rate, hard-label weight and epochs open).

A staged search in the spirit of Google's tuning playbook, planned before it ran:

1. **Optimiser and learning rate** (``STAGE1``): SGD with momentum over a log-spaced grid,
   Adam, and the teacher's own schedule of Hinton et al. (2012) without its regularisers;
   2x800 students at T = 20 with hard-label weight ``STAGE1_HARD_WEIGHT`` (a "considerably
   lower weight", Section 2), ``SEARCH_EPOCHS`` epochs, seeds 0 and 1. No gradient clipping.
2. **Hard-label weight** (``STAGE2``): the best settings of stage 1 over ``HARD_WEIGHTS``, and
   each setting's student on hard labels only (the reference).
3. **Epochs** (``STAGE3``): the finalists for ``LONG_EPOCHS`` epochs, validation errors after
   every epoch (where each flattens), and for the budgets of ``STAGE3_EPOCHS`` (each its own
   cosine schedule).
4. **Narrow students** (``STAGE4``, added after stages 1-3 chose the recipe): the
   chosen recipe's learning rate is a 2x800 student's; the 2x30 students of the temperature
   sweep (Section 3) collapsed with it at T = 1 to 2.5 on the test split. So each width of
   ``NARROW_WIDTHS`` gets its own rate: the chosen recipe (hard weight, epochs) at every
   temperature of the sweep, over a grid of rates; the rate with the fewest validation errors
   averaged over temperatures and seeds, among rates where no run failed, is that width's.
5. **The label-only student** (``STAGE5``, added after the recipe's test-set runs): stages 1-3
   chose a recipe for distillation; the student it is compared with, the same 2x800 net on
   hard labels only, deserves a recipe chosen for labels, on the same split by the same rule.
   SGD over a rate grid at two budgets, and stage 2's best label-only setting (Adam) at both.

Every student learns from the validation teacher (the paper recipe, 1000 epochs on the first
50,000 training images, seed 0) and is scored on the last 10,000. A setting is chosen by its
mean validation errors over the seeds; a grid whose best value is at its edge is widened
before choosing. A run that diverges or collapses is a result: it is recorded
(``<name>.failed.json``), never retried or hidden.
"""
from __future__ import annotations

from ..core.io import read_json
from ..core.spec import Member
from .student_recipe import RECIPE
from .recipes import (
    DISTILL_TEMPERATURE,
    TEMPERATURES,
    Optimiser,
    RunConfig,
    _profile_spec,
    budget,
    student_recipe,
)

SEARCH_EPOCHS = 30
SEARCH_SEEDS = (0, 1)
STAGE1_HARD_WEIGHT = 0.1
#: widened to 3: with both stage-2 settings the fewest mean errors were at 1 (Adam 129.0,
#: SGD 134.0), the first grid's edge; then to 10 and 30: at 3 again (Adam 126.0, SGD 130.0)
HARD_WEIGHTS = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
LONG_EPOCHS = 500
#: Stage 3's student budgets: first 500 only; the Adam finalist's validation errors rose over
#: its 500 epochs (120.5 after 30 epochs in stage 2, 136-139 from epoch 300 on), so the
#: budget became a grid of its own, bracketing stage 2's 30 on both sides.
STAGE3_EPOCHS = (15, 30, 60, 120, LONG_EPOCHS)

STAGE1 = tuple([Optimiser("sgd", lr) for lr in (1e-3, 3e-3, 1e-2, 3e-2, 1e-1)]
               + [Optimiser("adam", lr) for lr in (1e-4, 3e-4, 1e-3, 3e-3)]
               # widened: 3e-3 had the fewest errors of Adam's first grid (129.5, at its edge)
               + [Optimiser("adam", lr) for lr in (1e-2,)]
               + [Optimiser("hinton2012", lr) for lr in (0.1, 0.3, 1.0)]
               # widened: 0.1 had the fewest errors of its first grid (141.5, at its edge)
               + [Optimiser("hinton2012", lr) for lr in (0.03,)])
#: Stage 2's settings: the two best families of stage 1, each at its best (bracketed) rate.
#: Stage 1's means over seeds 0-1 (validation errors after 30 epochs, hard weight 0.1): Adam
#: 3e-3 129.5 (1e-3 141.5, 1e-2 149.0), SGD 0.03 138.0 (0.01 144.5, 0.1 diverged), Hinton-2012
#: 0.1 141.5 (0.03 171.5, 0.3 collapsed, 1 diverged).
STAGE2: tuple = (Optimiser("adam", 3e-3), Optimiser("sgd", 3e-2))
#: Stage 3's (setting, hard weight) finalists: each stage-2 setting at its best hard weight,
#: bracketed (means over seeds 0-1 after 30 epochs): Adam 3e-3 at 10: 120.5 (3: 126.0,
#: 30: 127.5); SGD 0.03 at 10: 125.0 (3: 130.0, 30: diverged). Their hard-label references run
#: at stage 2's budget only (compute): the test-set runs compare with labels at full length.
STAGE3: tuple = ((Optimiser("adam", 3e-3), 10.0), (Optimiser("sgd", 3e-2), 10.0))
#: Stage 4's students and rates (SGD, as the recipe; its 2x800 rate 0.03 is the grid's top).
NARROW_WIDTHS = (30,)
STAGE4 = (tuple(Optimiser("sgd", lr) for lr in (3e-3, 1e-2, 3e-2))
          # widened: 3e-3 had the fewest errors of the first grid (283.1 averaged over the
          # temperatures; 1e-2 288.2; 3e-2 collapsed at T = 1 to 2.5), at its edge
          + (Optimiser("sgd", 1e-3),))


def search_config(setting: Optimiser, hard_weight: float | None, epochs: int, seed: int,
                  profile: str = "full", width: int = 800,
                  temperature: float = DISTILL_TEMPERATURE) -> RunConfig:
    """One validation run of the search: the 2x``width`` student of ``setting`` distilled at
    ``temperature`` from the validation teacher of seed 0; ``hard_weight`` None: the same
    student on hard labels only (no teacher), the reference every distilled setting must beat."""
    spec = _profile_spec(student_recipe(setting, epochs, width), profile, epochs)
    if width != 800 or temperature != DISTILL_TEMPERATURE:  # stage 4
        member = Member(seed=seed, temperature=temperature, soft_weight=1.0, hard_weight=hard_weight)
        return RunConfig("student_search", f"w{width}-{setting.label}-T{temperature:g}-"
                         f"hw{hard_weight:g}-e{epochs}-s{seed}", profile=profile, spec=spec,
                         member=member, teacher_seed=0, validation=True,
                         train_size=budget(profile).train_size)
    if hard_weight is None:
        return RunConfig("student_search", f"{setting.label}-hard-e{epochs}-s{seed}",
                         profile=profile, spec=spec, member=Member(seed=seed), validation=True,
                         train_size=budget(profile).train_size)
    member = Member(seed=seed, temperature=DISTILL_TEMPERATURE, soft_weight=1.0,
                    hard_weight=hard_weight)
    return RunConfig("student_search", f"{setting.label}-hw{hard_weight:g}-e{epochs}-s{seed}",
                     profile=profile, spec=spec, member=member, teacher_seed=0, validation=True,
                     train_size=budget(profile).train_size)


#: Stage 5's label-only settings (optimiser, epochs); stage 2's 30-epoch references (SGD at
#: 0.03: 170.0, Adam at 0.003: 158.5) are two of them.
STAGE5 = (tuple((Optimiser("sgd", lr), e) for lr in (1e-2, 3e-2, 1e-1, 3e-1) for e in (30, 120))
          + tuple((Optimiser("adam", 3e-3), e) for e in (30, 120)))
STAGES = (1, 2, 3, 4, 5)


def stage_grid(stage: int) -> list[tuple]:
    """The (setting, hard weight or None, epochs, width, temperature) of one stage."""
    t = DISTILL_TEMPERATURE
    if stage == 1:
        return [(s, STAGE1_HARD_WEIGHT, SEARCH_EPOCHS, 800, t) for s in STAGE1]
    if stage == 2:
        return [(s, h, SEARCH_EPOCHS, 800, t) for s in STAGE2 for h in (None, *HARD_WEIGHTS)]
    if stage == 3:
        return [(s, h, e, 800, t) for s, h in STAGE3 for e in STAGE3_EPOCHS]
    if stage == 4:
        return [(s, RECIPE.hard_weight, RECIPE.student_epochs, w, temp)
                for w in NARROW_WIDTHS for s in STAGE4 for temp in TEMPERATURES]
    if stage == 5:
        return [(s, None, e, 800, t) for s, e in STAGE5]
    raise ValueError(f"the search has stages {', '.join(map(str, STAGES))}, not {stage!r}")


def stage_configs(stage: int, profile: str = "full", seeds=SEARCH_SEEDS) -> list[RunConfig]:
    """The runs of one stage that its grids define so far."""
    return [search_config(s, h, e, seed, profile, w, t)
            for s, h, e, w, t in stage_grid(stage) for seed in seeds]


def search_configs(profile: str = "full", seeds=SEARCH_SEEDS, validation: bool = True):
    """Every run of every stage defined so far (the ``student_search`` experiment)."""
    if not validation:
        raise ValueError("student_search chooses a recipe: validation split only (--validation)")
    return [c for stage in STAGES for c in stage_configs(stage, profile, seeds)]


def shard(configs: list[RunConfig], i: int, n: int) -> list[RunConfig]:
    """The ``i``-th of ``n`` shares of ``configs`` (one per core), whole stacks kept together."""
    keys = list(dict.fromkeys(c.group_key() for c in configs))
    mine = set(keys[i::n])
    return [c for c in configs if c.group_key() in mine]


def run_search(configs, *, results_dir="results", log=print, **kwargs) -> list[dict]:
    """Load or train the configs (those of one student and teacher stacked); a run that
    diverges or collapses is recorded as such (``kdlib.runs.experiments.FailedRun``).

    Returns one record per config: ``{"name", "status": "done"|"diverged"|"collapsed",
    "errors": final validation errors or None, "curve": errors after each epoch}``.
    """
    from .experiments import FailedRun, run_configs
    return [r.record if isinstance(r, FailedRun) else
            {"name": r.config["name"], "status": "done", "errors": r.test_errors,
             "curve": r.metrics["test_errors_curve"]}
            for r in run_configs(list(configs), results_dir=results_dir, log=log, **kwargs)]


def search_table(results_dir="results", profile: str = "full", seeds=SEARCH_SEEDS) -> list[dict]:
    """Every run of the search defined so far, one row per (stage, setting, hard weight, epochs):
    ``{"stage", "family", "lr", "hard_weight", "epochs", "errors": [per seed or None],
    "mean", "status"}``; ``status`` is "done", "running" (not every seed has finished),
    or the failure ("diverged", "collapsed") of any seed. Never trains."""
    from .experiments import ArtifactError, failure_path, load_artifact
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


def main(argv=None) -> int:
    """``python -m kdlib.runs.search STAGE [--profile P] [--shard I/N] [--results-dir D]``, or
    ``python -m kdlib.runs.search table``: every run so far and each stage's best (never trains)."""
    import argparse
    p = argparse.ArgumentParser(prog="python -m kdlib.runs.search", description=__doc__.split("\n\n")[0])
    p.add_argument("stage", choices=(*map(str, STAGES), "table"))
    p.add_argument("--profile", default="full")
    p.add_argument("--shard", default="0/1", help="I/N: every N-th run from the I-th (one per core)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.stage == "table":
        from ..core.tables import markdown_table
        rows = search_table(args.results_dir, args.profile)
        print(markdown_table(*search_markdown_rows(rows)))
        for stage in (1, 2, 3):
            for r in best_rows(rows, stage):
                print(f"stage {stage}: best {r['family']} lr {r['lr']:g} hard weight "
                      f"{r['hard_weight']:g} epochs {r['epochs']}: {r['mean']:.1f}"
                      f"{'' if r['bracketed'] else ' (at the grid edge)'}")
        best = label_recipe(rows)
        if best is not None:
            print(f"stage 5: labels only, best {best['family']} lr {best['lr']:g} epochs "
                  f"{best['epochs']}: {best['mean']:.1f}"
                  f"{'' if best['bracketed'] else ' (at the grid edge)'}")
        for o in narrow_rates(rows):
            state = (f"{o['mean']:.1f}" if o["mean"] is not None else
                     f"failed at T = {', '.join(f'{t:g} ({s})' for t, s in o['failed'])}"
                     if o["failed"] else "incomplete")
            print(f"stage 4: 2x{o['width']} at lr {o['lr']:g}: {state}"
                  f"{' <- chosen' if o['chosen'] else ''}"
                  f"{' (at the grid edge)' if o['chosen'] and not o['bracketed'] else ''}")
        return 0
    i, n = (int(v) for v in args.shard.split("/"))
    configs = shard(stage_configs(int(args.stage), args.profile), i, n)
    for r in run_search(configs, results_dir=args.results_dir, device=args.device,
                        progress=not args.no_progress):
        print(f"{r['name']:36s} {r['status']:9s} {r['errors']}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
