"""The claims of Section 3: the paper's numbers, ours, and whether each replicates.

One row per MNIST claim of Hinton, Vinyals & Dean (2015), Section 3: the teacher, student
and distilled error counts, the distilled student's gain, the temperature and capacity
claims, the hard-label weight, and the omitted-digit transfer sets (with the bias shift of
``kdlib.analysis.bias_shift``). The verdict rules themselves are in ``kdlib.analysis.verdicts``; this module
only gathers the numbers each rule is applied to, so the notebook that shows an experiment
and the results chapter that tabulates all of them cannot disagree.
"""
from __future__ import annotations

import numpy as np

from ..runs.experiments import RunResult
from ..runs.student_recipe import RECIPE
from ..runs.recipes import DEFAULT_SEEDS
from . import verdicts
from .bias_shift import OMIT3_SHIFTS, ONLY78_SHIFTS, shift_study
from .results import (
    better_than,
    correct,
    paired_by_seed,
    load_available,
    load_existing,
    markdown_table,
    p_text,
    resolve_results_dir,
    seed_of,
)
from .stats import format_mean_sd, mcnemar_exact, paired_difference_ci

#: Numbers reported in Section 3 of Hinton, Vinyals & Dean (2015).
PAPER = {
    "teacher_errors": 67,
    "student_errors": 146,
    "distilled_errors": 74,
    "omit3_errors": 206,
    "omit3_errors_on_3": 133,
    "omit3_shift": 3.5,
    "omit3_shifted_errors": 109,
    "omit3_shifted_errors_on_3": 14,
    "test_3s": 1010,
    "only78_error_pct": 47.3,
    "only78_shift": -7.6,
    "only78_shifted_error_pct": 13.2,
    "flat_from_temperature": 8.0,
    "small_width": 30,
    "small_width_best_temperatures": (2.5, 4.0),
}


def paired_comparison(runs_a: list[RunResult], runs_b: list[RunResult], labels) -> list[dict]:
    """McNemar's exact test and the 95% CI of the error difference, seed by seed (A vs B)."""
    by_seed_b = {seed_of(r): r for r in runs_b}
    rows = []
    for ra in runs_a:
        rb = by_seed_b.get(seed_of(ra))
        if rb is None:
            continue
        ca, cb = correct(ra, labels), correct(rb, labels)
        only_a, only_b, p = mcnemar_exact(ca, cb)
        d, lo, hi = paired_difference_ci(ca, cb)
        n = len(ca)
        rows.append({"seed": seed_of(ra), "errors_a": int((~ca).sum()), "errors_b": int((~cb).sum()),
                     "only_a_right": only_a, "only_b_right": only_b, "p_value": p,
                     "difference": round(d * n, 1), "ci_low": round(lo * n, 1),
                     "ci_high": round(hi * n, 1)})
    return rows


def gap_recovered(teacher: list[int], student: list[int], distilled: list[int]) -> float:
    """Fraction of the student-teacher error gap closed by distillation (seed means)."""
    t, s, d = (float(np.mean(x)) for x in (teacher, student, distilled))
    if s == t:
        return float("nan")
    return (s - d) / (s - t)


def distillation_gain(comparison: list[dict], alpha: float = 0.05) -> str:
    """Section 3's "the distilled student is better": from ``paired_comparison`` rows
    (distilled as A, baseline as B), significantly better (or worse) only when every seed has
    p < ``alpha`` and fewer (more) errors; otherwise not significantly different."""
    if comparison and all(c["p_value"] < alpha and c["difference"] < 0 for c in comparison):
        return "significantly better than the baseline in every seed"
    if comparison and all(c["p_value"] < alpha and c["difference"] > 0 for c in comparison):
        return "significantly worse than the baseline in every seed"
    k = sum(c["p_value"] < alpha for c in comparison)
    return f"not consistently different from the baseline (p < {alpha:g} in {k} of {len(comparison)} seeds)"


def width_of(run: RunResult) -> int:
    return int(run.config["spec"]["widths"][0])


def errors_by(runs: list[RunResult], setting) -> dict:
    """{setting(run): [test errors of each seed, in seed order]}, settings ascending: the grid
    of a sweep (``setting``: e.g. ``width_of``, or a run's temperature or hard-label weight)."""
    grid: dict = {}
    for r in sorted(runs, key=lambda r: (setting(r), seed_of(r))):
        grid.setdefault(setting(r), []).append(r.test_errors)
    return grid


def temperature_grid(runs: list[RunResult]) -> dict[int, dict[float, list[int]]]:
    """{width: {temperature: [test errors of each seed]}} of a temperature sweep, widest first."""
    widths = sorted({width_of(r) for r in runs}, reverse=True)
    return {w: errors_by([r for r in runs if width_of(r) == w],
                         lambda r: float(r.config["member"]["temperature"])) for w in widths}


def _fewest_mean_errors(errors_by_setting: dict[float, list[int]]) -> tuple[float, float]:
    """The setting with the fewest seed-mean errors (the lowest among ties), its mean."""
    if not errors_by_setting:
        raise ValueError("no runs to choose from")
    means = {k: float(np.mean(e)) for k, e in errors_by_setting.items()}
    best = min(means, key=lambda k: (means[k], k))
    return best, round(means[best], 1)


def validation_choice(errors_by_setting: dict[float, list[int]], floor: float | None = None) -> dict:
    """A setting chosen on the validation split: the fewest seed-mean errors (lowest among
    ties), and whether the grid brackets it (a tried value on each side, or the best is the
    smallest possible value ``floor``, like a hard weight of 0). An unbracketed choice says
    the optimum may lie outside the grid."""
    best, mean = _fewest_mean_errors(errors_by_setting)
    settings = sorted(errors_by_setting)
    below = best > settings[0] or (floor is not None and best == floor)
    return {"best": best, "mean": mean, "bracketed": below and best < settings[-1]}


def best_temperature(errors_by_temperature: dict[float, list[int]]) -> tuple[float, float]:
    """The temperature with the fewest seed-mean errors (the lowest T among ties), its mean."""
    return _fewest_mean_errors(errors_by_temperature)


def width_errors(runs: list[RunResult]) -> dict[int, list[int]]:
    """{width: [test errors of each seed]} of hard-label baselines (experiment "baseline"),
    widest first."""
    return dict(sorted(errors_by(runs, width_of).items(), reverse=True))


def distillation_vs_baseline(sweep: list[RunResult], baseline: list[RunResult], test_labels,
                             temperature: float | None = None) -> list[dict]:
    """Per width: distilled at ``temperature`` (None: the one with the fewest mean test errors,
    a choice made on the test set, so its p-value is optimistic) against the same width
    trained on hard labels for as many epochs, pooled McNemar over the seeds both have. Ours,
    not a claim of the paper, which gives no hard-label baseline for 2x300 and 2x30."""
    grid, rows = temperature_grid(sweep), []
    for width, errors in width_errors(baseline).items():
        if width not in grid or (temperature is not None and temperature not in grid[width]):
            continue
        best_t = best_temperature(grid[width])[0] if temperature is None else temperature
        at_t = [r for r in sweep if width_of(r) == width
                and float(r.config["member"]["temperature"]) == best_t]
        hard = [r for r in baseline if width_of(r) == width]
        test = better_than(at_t, hard, test_labels)
        rows.append({"width": width, "best_temperature": best_t,
                     "distilled": grid[width][best_t], "hard": errors, **test})
    return rows


def hard_weight_grid(runs: list[RunResult]) -> dict[float, list[int]]:
    """{hard-label weight: [test errors of each seed]} of a hard-weight sweep."""
    return errors_by(runs, lambda r: float(r.config["member"]["hard_weight"]))


def best_hard_weight(runs: list[RunResult]) -> tuple[float, float]:
    """The hard-label weight with the fewest seed-mean errors (the lowest among ties), its mean."""
    if not runs:
        raise ValueError("no hard-weight runs")
    return _fewest_mean_errors(hard_weight_grid(runs))


def validation_hard_weight_sweep(results_dir=None, profile: str = "full") -> list[RunResult]:
    """The hard-weight sweep on the validation split (train on 50,000, count errors on the
    last 10,000 training images) that chose the recipe's hard weight: the student-recipe
    search's stage 2 for the chosen optimiser (``kdlib.runs.search``); never trains."""
    return load_existing(_searched_hard_weight_configs(profile), resolve_results_dir(results_dir))


def validation_hard_weight_failures(results_dir=None, profile: str = "full") -> list[float]:
    """The hard weights of the validation sweep (search stage 2, the chosen optimiser) at which
    a run diverged or collapsed: a result, and a bracket of the choice like a worse value."""
    from ..runs.experiments import load_failure
    folder = resolve_results_dir(results_dir)
    return sorted({c.member.hard_weight for c in _searched_hard_weight_configs(profile)
                   if load_failure(c, folder) is not None})


def _searched_hard_weight_configs(profile: str) -> list:
    """The runs of search stage 2 with the recipe's optimiser, distilled (not labels only)."""
    from ..runs import search
    from ..runs.recipes import Optimiser
    setting = Optimiser(*RECIPE.optimiser)
    return [search.search_config(setting, h, search.SEARCH_EPOCHS, seed, profile)
            for s, h, _, _, _ in search.stage_grid(2) if s == setting and h is not None
            for seed in search.SEARCH_SEEDS]


# ----------------------------------------------------------------------------- the claims table
def _verdict(ok) -> str:
    return "not testable" if ok is None else ("yes" if ok else "no")


def _count_row(claim, paper, ours, scale=1.0, decimals=1):
    """A numeric claim: the paper's value within our mean ± 2 sd (``kdlib.analysis.verdicts``)."""
    if not ours:
        return {"claim": claim, "paper": f"{paper:g}", "ours": "missing", "replicated": "not run",
                "rule": "count"}
    verdict = verdicts.count_verdict(ours, paper)["verdict"]
    return {"claim": claim, "paper": f"{paper:g}", "ours": format_mean_sd(ours, decimals),
            "replicated": verdict, "rule": "count", "mean": float(np.mean(ours)), "paper_value": paper}


def claims_table(results_dir=None, profile: str = "full", seeds=DEFAULT_SEEDS,
                 test_labels=None, train_labels=None) -> list[dict]:
    """Every MNIST claim of Section 3: paper value, ours (mean ± sd over seeds), verdict.

    The teacher is the paper-recipe teacher (chapter 6), the one every student learns from.
    Reads artifacts only (never trains): a claim whose runs are missing says so.
    Labels default to the MNIST test and training labels.
    """
    if test_labels is None or train_labels is None:
        from ..core.data import load_mnist
        data = load_mnist()
        test_labels = data.test_labels.numpy() if test_labels is None else test_labels
        train_labels = data.train_labels.numpy() if train_labels is None else train_labels
    test_labels = np.asarray(test_labels)

    def runs(name):
        return load_available(name, profile, seeds, results_dir)

    teacher, student, distilled = runs("paper_teacher"), runs("student"), runs("distilled")
    errs = {k: [r.test_errors for r in v] for k, v in
            (("teacher", teacher), ("student", student), ("distilled", distilled))}
    rows = [
        _count_row("Teacher 2x1200 (dropout, jitter): test errors", PAPER["teacher_errors"],
                   errs["teacher"]),
        _count_row("Student 2x800, hard labels only: test errors", PAPER["student_errors"],
                   errs["student"]),
        _count_row("Student 2x800 distilled at T = 20: test errors", PAPER["distilled_errors"],
                   errs["distilled"]),
        _gap_row(teacher, student, distilled, test_labels),
    ]
    rows += temperature_claims(runs("temperature"), test_labels)
    rows += hard_weight_claim(runs("hard_weight"), validation_hard_weight_sweep(results_dir, profile),
                              test_labels)
    rows += _omitted_rows(runs("omit3"), runs("only78"), test_labels, train_labels)
    return [{**r, "number": i + 1} for i, r in enumerate(rows)]  # kept when rows are filtered


def _gap_row(teacher, student, distilled, test_labels) -> dict:
    """The paper's comparison: the distilled student against the hard-label student (and how
    much of the gap to the teacher it closes, reported, not thresholded)."""
    claim = ("The distilled 2x800 student is significantly better than the same net trained "
             "on hard labels (share of the student-teacher gap it closes)")
    paper = gap_recovered([PAPER["teacher_errors"]], [PAPER["student_errors"]],
                          [PAPER["distilled_errors"]])
    if not (teacher and student and distilled):
        return {"claim": claim, "paper": f"{paper:.0%}", "ours": "missing", "replicated": "not run",
                "rule": "better"}
    test = better_than(distilled, student, test_labels)
    gap = gap_recovered(*([r.test_errors for r in rs] for rs in (teacher, student, distilled)))
    ours = (f"{gap:.0%} of the gap; {test['errors_a']} vs {test['errors_b']} errors over "
            f"{test['seeds']} seeds, {p_text(test['p_value'], True)}")
    return {"claim": claim, "paper": f"{paper:.0%}", "ours": ours, "replicated": test["verdict"],
            "rule": "better"}


def temperature_claims(sweep: list[RunResult], test_labels) -> list[dict]:
    grid = temperature_grid(sweep)
    t8 = PAPER["flat_from_temperature"]
    claim = f"2x300 and 2x800: all T >= {t8:g} give fairly similar errors"
    wide = {w: verdicts.similar_verdict({t: e for t, e in grid[w].items() if t >= t8})
            for w in grid if w >= 300}
    if wide:
        testable = [v for v in wide.values() if "spread" in v]
        ok = (all(v["verdict"] == "yes" for v in wide.values()) if len(testable) == len(wide)
              else None)
        ours = "; ".join(f"2x{w}: spread {v['spread']:g} vs {v['bound']:g}" if "spread" in v
                         else f"2x{w}: {v['verdict']}" for w, v in wide.items())
        rows = [{"claim": claim, "paper": "similar", "ours": ours, "replicated": _verdict(ok),
                 "rule": "similar"}]
    else:
        rows = [{"claim": claim, "paper": "similar", "ours": "missing", "replicated": "not run",
                 "rule": "similar"}]
    small = PAPER["small_width"]
    lo, hi = PAPER["small_width_best_temperatures"]
    claim = (f"2x{small}: T between {lo:g} and {hi:g} works significantly better than higher "
             "or lower T")
    runs = [r for r in sweep if width_of(r) == small]
    if runs:
        by_t: dict[float, dict[int, np.ndarray]] = {}
        for r in runs:
            by_t.setdefault(float(r.config["member"]["temperature"]), {})[seed_of(r)] = \
                correct(r, test_labels)
        seeds = sorted(set.intersection(*(set(v) for v in by_t.values())))
        test = verdicts.best_in_range_verdict({t: [v[s] for s in seeds] for t, v in by_t.items()},
                                              lo, hi)
        if "best_inside" in test:
            sides = "; ".join(f"vs T = {test[k]['setting']:g} ({test[k]['errors']}): "
                              f"{p_text(test[k]['p_value'], True)}" for k in ("below", "above") if k in test)
            ours = f"best inside T = {test['best_inside']:g} ({test['errors_inside']} errors); {sides}"
        else:
            ours = test["verdict"]
        rows.append({"claim": claim, "paper": f"{lo:g} to {hi:g}", "ours": ours,
                     "replicated": test["verdict"], "rule": "range"})
    else:
        rows.append({"claim": claim, "paper": f"{lo:g} to {hi:g}", "ours": "missing",
                     "replicated": "not run", "rule": "range"})
    return rows


def hard_weight_claim(sweep: list[RunResult], validation: list[RunResult] = (),
                      test_labels=None) -> list[dict]:
    """"A considerably lower weight on the hard-label term works best": the best weight below
    the soft term's (1) against weight 1, pooled McNemar over seeds."""
    claim = "A hard-label weight well below the soft term's (1) works significantly better than 1"
    grid = hard_weight_grid(sweep)
    if len(grid) < 2 or 1.0 not in grid:
        return [{"claim": claim, "paper": "lower", "ours": "missing", "replicated": "not run",
                 "rule": "better"}]
    lower = {w: e for w, e in grid.items() if w < 1.0}
    weight, _ = _fewest_mean_errors(lower)
    by_w: dict[float, dict[int, np.ndarray]] = {}
    for r in sweep:
        by_w.setdefault(float(r.config["member"]["hard_weight"]), {})[seed_of(r)] = \
            correct(r, test_labels)
    test = verdicts.better_verdict(*paired_by_seed(by_w[weight], by_w[1.0]))
    seeds = test["seeds"]
    ours = (f"best lower weight {weight:g}: {format_mean_sd(grid[weight], count=False)} errors vs "
            f"{format_mean_sd(grid[1.0], count=False)} at 1 ({seeds} seed{'s' * (seeds != 1)}), "
            f"{p_text(test['p_value'], True)}")
    if len(hard_weight_grid(validation)) >= 2:
        ours += f"; best on the validation split {best_hard_weight(validation)[0]:g}"
    return [{"claim": claim, "paper": "lower", "ours": ours, "replicated": test["verdict"],
             "rule": "better"}]


def _omitted_rows(omit3, only78, test_labels, train_labels) -> list[dict]:
    n = len(test_labels)
    o3 = [shift_study(r, test_labels, train_labels, [3], OMIT3_SHIFTS, of_class=3) for r in omit3]
    o78 = [shift_study(r, test_labels, train_labels, [7, 8], ONLY78_SHIFTS) for r in only78]
    shifts3 = ", ".join(f"{s['test_shift']:+g}" for s in o3) or "-"
    shifts78 = ", ".join(f"{s['test_shift']:+g}" for s in o78) or "-"
    return [
        _count_row("No 3s in the transfer set: test errors", PAPER["omit3_errors"],
                   [s["errors"][0] for s in o3]),
        _count_row("... of which on the 1010 test 3s", PAPER["omit3_errors_on_3"],
                   [s["errors"][1] for s in o3]),
        _count_row(f"... after raising the bias of 3 (paper: +{PAPER['omit3_shift']:g}; ours: "
                   f"{shifts3}; tuned on the test set): test errors",
                   PAPER["omit3_shifted_errors"], [s["test_shifted"][0] for s in o3]),
        _count_row("... of which on 3s", PAPER["omit3_shifted_errors_on_3"],
                   [s["test_shifted"][1] for s in o3]),
        _count_row("Only 7s and 8s in the transfer set: test error (%)", PAPER["only78_error_pct"],
                   [100.0 * s["errors"][0] / n for s in o78], scale=n / 100),
        _count_row(f"... after lowering the biases of 7 and 8 (paper: {PAPER['only78_shift']:g}; "
                   f"ours: {shifts78}; tuned on the test set): test error (%)",
                   PAPER["only78_shifted_error_pct"],
                   [100.0 * s["test_shifted"][0] / n for s in o78], scale=n / 100),
    ]


def claims_markdown(rows: list[dict], claims_of: str = "Section 3") -> str:
    """The claims table, then the verdict rule of each kind of row (``kdlib.analysis.verdicts``); a row
    keeps its own ``number`` (``claims_table``'s) when a filtered table shows it."""
    table = markdown_table(["#", f"Claim ({claims_of})", "Paper", "Ours (mean ± sd over seeds)",
                            "Replicated", "Rule"],
                           [[r.get("number", i + 1), r["claim"], r["paper"], r["ours"], r["replicated"],
                             r.get("rule", "")] for i, r in enumerate(rows)])
    used = [k for k in verdicts.RULES if any(r.get("rule") == k for r in rows)]
    return table + "\n\n" + "\n".join(f"- **{k}**: {verdicts.RULES[k]}" for k in used)
