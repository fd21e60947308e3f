"""From artifacts to the book: loading runs, the paper's numbers, verdicts and tables.

The notebooks call these functions and explain them; every rule that turns our numbers
into "replicated or not" lives here, once, so the notebook that shows an experiment and the
results notebook that tabulates all of them cannot disagree.
"""
from __future__ import annotations

import csv
import logging
import math
import os
import re
import warnings
from io import StringIO
from pathlib import Path

import numpy as np

from .evaluate import best_bias_shift, errors_against_shift, per_class_errors, shift_biases
from .experiments import (DEFAULT_SEEDS, RunResult, artifact_path, configs_for, load_artifact,
                          run_configs)
from .io import ArtifactError
from .stats import format_mean_sd, mcnemar_exact, paired_difference_ci
from . import verdicts

log = logging.getLogger("kdlib")

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
#: Bias shifts searched: raise the 3 (omit3), lower the 7 and 8 (only78).
OMIT3_SHIFTS = np.round(np.arange(0.0, 10.0001, 0.1), 1)
ONLY78_SHIFTS = np.round(np.arange(-12.0, 0.0001, 0.1), 1)


# ----------------------------------------------------------------------------- loading
def default_results_dir() -> Path:
    """``<repository root>/results``, found from this package's location."""
    return Path(__file__).resolve().parent.parent / "results"


def resolve_results_dir(results_dir=None) -> Path:
    return default_results_dir() if results_dir is None else Path(results_dir)


def load_or_run(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS, *, results_dir=None,
                device="cpu", force: bool = False) -> list[RunResult]:
    """Every run of an experiment: loaded when its artifact exists, else trained (quietly).

    Loading needs no device, so notebooks executed on a GPU machine re-run on a CPU one.
    Training messages go to the ``kdlib`` logger, not into notebook outputs.
    """
    results_dir = resolve_results_dir(results_dir)
    configs = configs_for(experiment, profile, seeds)
    if not force:
        try:
            return [load_artifact(c, results_dir) for c in configs]
        except ArtifactError:
            pass
    with warnings.catch_warnings():  # tqdm.auto warns inside kernels without ipywidgets
        warnings.filterwarnings("ignore", message="IProgress not found")
        return run_configs(configs, device=device, results_dir=results_dir, force=force,
                           progress=False, log=log.info)


def load_available(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS,
                   results_dir=None, validation: bool = False) -> list[RunResult]:
    """The runs of an experiment whose artifacts exist and are valid; never trains.

    A stale or corrupt artifact counts as missing (the reason goes to the ``kdlib`` logger at
    INFO level, so that it does not land on a notebook's stderr).
    """
    results_dir = resolve_results_dir(results_dir)
    out = []
    for cfg in configs_for(experiment, profile, seeds, validation):
        if artifact_path(cfg, results_dir).exists():
            try:
                out.append(load_artifact(cfg, results_dir))
            except ArtifactError as e:
                log.info("%s", e)
    return out


def seed_of(run: RunResult) -> int:
    return int(run.config["member"]["seed"])


def short_commit(commit) -> str:
    """A git commit as a reader wants it: 7 hex digits, "+local changes" for a dirty tree."""
    text = str(commit)
    sha, dirty = text.removesuffix("+dirty"), text.endswith("+dirty")
    short = sha[:7] if len(sha) >= 7 and all(c in "0123456789abcdef" for c in sha) else sha
    return short + (" (with local changes)" if dirty else "")


def short_device(name) -> str:
    """``Intel(R) Xeon(R) Processor (1 threads)`` -> ``Intel Xeon Processor, 1 thread``."""
    text = str(name).replace("(R)", "").replace("(TM)", "").replace("  ", " ").strip()
    m = re.fullmatch(r"(.*?)\s*\((\d+) threads?\)", text)
    if m:
        count = int(m.group(2))
        text = f"{m.group(1)}, {count} thread{'s' if count != 1 else ''}"
    return text


def provenance_line(runs: list[RunResult]) -> str:
    """One sentence saying which profile, seeds, code and machine produced these runs."""
    if not runs:
        return "no artifacts"

    def values(key, fmt=str):
        return ", ".join(sorted({fmt(r.provenance.get(key, "?")) for r in runs}))

    seeds = ", ".join(str(s) for s in sorted({seed_of(r) for r in runs}))
    profiles = ", ".join(sorted({r.config["profile"] for r in runs}))
    count = f"{len(runs)} run{'s' if len(runs) != 1 else ''}"
    return (f"{count}, profile {profiles}, seed{'s' if ',' in seeds else ''} {seeds}; "
            f"kdlib {values('kdlib_version')}, commit {values('git_commit', short_commit)}, "
            f"torch {values('torch_version')}; {values('device_name', short_device)}")


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def correct(run_or_logits, labels) -> np.ndarray:
    """Boolean per test example: is the prediction right?"""
    logits = run_or_logits.logits() if isinstance(run_or_logits, RunResult) else run_or_logits
    return np.asarray(logits).argmax(-1) == np.asarray(labels)


# ----------------------------------------------------------------------------- verdicts
def counts_agree(ours: list[float], paper: float) -> tuple[bool, float]:
    """Is the paper's error count within two standard deviations of counting noise of ours?

    Both are treated as Poisson counts: the paper's single run has variance ``paper``, the
    mean of our ``k`` seeds ``mean / k``. Returns (agrees, 2 sigma).
    """
    mean = float(np.mean(ours))
    two_sigma = 2 * math.sqrt(paper + mean / len(ours))
    return abs(mean - paper) <= two_sigma, two_sigma


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


def temperature_grid(runs: list[RunResult]) -> dict[int, dict[float, list[int]]]:
    """{width: {temperature: [test errors of each seed]}} of a temperature sweep."""
    grid: dict = {}
    for r in sorted(runs, key=lambda r: (-r.config["spec"]["widths"][0],
                                         r.config["member"]["temperature"], seed_of(r))):
        width, temp = r.config["spec"]["widths"][0], float(r.config["member"]["temperature"])
        grid.setdefault(width, {}).setdefault(temp, []).append(r.test_errors)
    return grid


def flat_above(errors_by_temperature: dict[float, list[int]],
               from_temperature: float = PAPER["flat_from_temperature"]) -> dict:
    """Are the errors at every T >= ``from_temperature`` "fairly similar" (Section 3)?

    Rule: the spread (max - min) of the seed-mean errors over those temperatures is at most
    two standard deviations of the counting noise of two such means, ``2 sqrt((max + min)/k)``
    with ``k`` seeds. ``flat`` is None when fewer than two temperatures qualify.
    """
    high = {t: e for t, e in errors_by_temperature.items() if t >= from_temperature}
    if len(high) < 2:
        return {"flat": None, "temperatures": sorted(high), "spread": None, "two_sigma": None}
    means = {t: float(np.mean(e)) for t, e in high.items()}
    k = min(len(e) for e in high.values())
    hi, lo = max(means.values()), min(means.values())
    two_sigma = 2 * math.sqrt((hi + lo) / k)
    return {"flat": hi - lo <= two_sigma, "temperatures": sorted(high),
            "spread": round(hi - lo, 1), "two_sigma": round(two_sigma, 1)}


def _fewest_mean_errors(errors_by_setting: dict[float, list[int]]) -> tuple[float, float]:
    """The setting with the fewest seed-mean errors (the lowest among ties), its mean."""
    if not errors_by_setting:
        raise ValueError("no runs to choose from")
    means = {k: float(np.mean(e)) for k, e in errors_by_setting.items()}
    best = min(means, key=lambda k: (means[k], k))
    return best, round(means[best], 1)


def best_temperature(errors_by_temperature: dict[float, list[int]]) -> tuple[float, float]:
    """The temperature with the fewest seed-mean errors (the lowest T among ties), its mean."""
    return _fewest_mean_errors(errors_by_temperature)


def hard_weight_grid(runs: list[RunResult]) -> dict[float, list[int]]:
    """{hard-label weight: [test errors of each seed]} of a hard-weight sweep."""
    grid: dict = {}
    for r in sorted(runs, key=lambda r: (float(r.config["member"]["hard_weight"]), seed_of(r))):
        grid.setdefault(float(r.config["member"]["hard_weight"]), []).append(r.test_errors)
    return grid


def best_hard_weight(runs: list[RunResult]) -> tuple[float, float]:
    """The hard-label weight with the fewest seed-mean errors (the lowest among ties), its mean."""
    if not runs:
        raise ValueError("no hard-weight runs")
    return _fewest_mean_errors(hard_weight_grid(runs))


def validation_hard_weight_sweep(results_dir=None, profile: str = "full") -> list[RunResult]:
    """The hard-weight sweep on the validation split (train on 50,000, count errors on the
    last 10,000 training images) that chose ``kdlib.experiments.HARD_WEIGHT``; never trains."""
    return load_available("hard_weight", profile, DEFAULT_SEEDS[:1], results_dir, validation=True)


# ----------------------------------------------------------------------------- bias shifts
def shifted_errors(logits, labels, classes, shift: float, of_class: int | None = None):
    """(errors, errors on ``of_class``) after adding ``shift`` to the biases of ``classes``."""
    shifted = shift_biases(logits, classes, shift)
    per_class = per_class_errors(shifted, np.asarray(labels))
    return int(sum(per_class)), (None if of_class is None else int(per_class[of_class]))


def shift_tuned_on_test_set(logits, labels, classes, shifts) -> float:
    """The paper's protocol: the shift with the fewest errors *on the test set itself*."""
    return best_bias_shift(logits, labels, classes, shifts)[0]


def prior_matching_shift(train_logits, train_labels, classes, shifts) -> float:
    """A shift chosen without the test set and without pairing images with labels.

    The student predicts on every training image (those left out of its transfer set
    included); the shift is the one (smallest in magnitude among ties) whose fraction of
    predictions in ``classes`` comes closest to those classes' share of the training labels,
    i.e. only the class frequencies are used.
    """
    train_logits = np.asarray(train_logits, dtype=np.float32)
    train_labels = np.asarray(train_labels)
    if len(train_logits) != len(train_labels) or len(train_labels) == 0:
        raise ValueError(f"train_logits ({len(train_logits)}) and train_labels "
                         f"({len(train_labels)}) must describe the same, non-empty set of images")
    target = float(np.isin(train_labels, classes).mean())
    shifts = np.asarray(shifts, dtype=np.float64)
    cols = list(classes)
    gaps = []
    for s in shifts:
        bumped = train_logits.copy()
        bumped[:, cols] += np.float32(s)
        gaps.append(abs(float(np.isin(bumped.argmax(-1), cols).mean()) - target))
    best = min(range(len(shifts)), key=lambda i: (round(gaps[i], 12), abs(shifts[i])))
    return float(shifts[best])


def train_labels_of(run: RunResult, train_labels) -> np.ndarray:
    """The labels of the training images a run's ``train_logits`` were computed on."""
    labels = np.asarray(train_labels)
    if run.config.get("validation"):
        labels = labels[:50000]
    if run.config.get("train_size"):
        labels = labels[:run.config["train_size"]]
    return labels


def shift_study(run: RunResult, test_labels, train_labels, classes, shifts,
                of_class: int | None = None, paper_shift: float | None = None) -> dict:
    """Errors before and after a bias shift: chosen on the test set, the paper's value, and
    (when the artifact holds training-set logits) chosen by prior matching on training images.

    Error entries are (errors, errors on ``of_class``); ``curve`` is errors against ``shifts``.
    """
    logits = run.logits()
    out = {"seed": seed_of(run), "errors": shifted_errors(logits, test_labels, classes, 0.0, of_class)}
    if paper_shift is not None:
        out["paper_shifted"] = shifted_errors(logits, test_labels, classes, paper_shift, of_class)
    s_test = shift_tuned_on_test_set(logits, test_labels, classes, shifts)
    out["test_shift"] = s_test
    out["test_shifted"] = shifted_errors(logits, test_labels, classes, s_test, of_class)
    train_logits = run.train_logits()
    if train_logits is None:
        out["prior_shift"], out["prior_shifted"] = None, None
    else:
        s_prior = prior_matching_shift(train_logits, train_labels_of(run, train_labels), classes,
                                       shifts)
        out["prior_shift"] = s_prior
        out["prior_shifted"] = shifted_errors(logits, test_labels, classes, s_prior, of_class)
    out["curve"] = errors_against_shift(logits, np.asarray(test_labels), classes, shifts)
    if of_class is not None:
        mask = np.asarray(test_labels) == of_class
        out["class_curve"] = errors_against_shift(logits[mask], np.asarray(test_labels)[mask],
                                                  classes, shifts)
    return out


def contrasting_examples(logits, labels, true_class: int, a: int, b: int,
                         min_confidence: float = 0.9) -> tuple[int, int]:
    """Two test examples of ``true_class`` the model gets right with probability at least
    ``min_confidence``: the one it finds most like ``a`` rather than ``b`` and the one most
    like ``b`` rather than ``a`` (by the difference of their logits)."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    shifted = np.exp(logits - logits.max(-1, keepdims=True))
    confidence = (shifted / shifted.sum(-1, keepdims=True)).max(-1)
    candidates = np.flatnonzero((labels == true_class) & (logits.argmax(-1) == true_class)
                                & (confidence >= min_confidence))
    if len(candidates) == 0:
        raise ValueError(f"no test example of class {true_class} is classified correctly with "
                         f"probability >= {min_confidence}")
    gap = logits[candidates, a] - logits[candidates, b]
    return int(candidates[gap.argmax()]), int(candidates[gap.argmin()])


# ----------------------------------------------------------------------------- the claims table
def _verdict(ok) -> str:
    return "not testable" if ok is None else ("yes" if ok else "no")


def _count_row(claim, paper, ours, scale=1.0, decimals=1):
    """A numeric claim: the paper's value within our mean ± 2 sd (``kdlib.verdicts``)."""
    if not ours:
        return {"claim": claim, "paper": f"{paper:g}", "ours": "missing", "replicated": "not run",
                "rule": "count"}
    verdict = verdicts.count_verdict(ours, paper)["verdict"]
    return {"claim": claim, "paper": f"{paper:g}", "ours": format_mean_sd(ours, decimals),
            "replicated": verdict, "rule": "count"}


def claims_table(results_dir=None, profile: str = "full", seeds=DEFAULT_SEEDS,
                 test_labels=None, train_labels=None) -> list[dict]:
    """Every MNIST claim of Section 3: paper value, ours (mean ± sd over seeds), verdict.

    Reads artifacts only (never trains): a claim whose runs are missing says so.
    Labels default to the MNIST test and training labels.
    """
    if test_labels is None or train_labels is None:
        from .data import load_mnist
        data = load_mnist()
        test_labels = data.test_labels.numpy() if test_labels is None else test_labels
        train_labels = data.train_labels.numpy() if train_labels is None else train_labels
    test_labels = np.asarray(test_labels)

    def runs(name):
        return load_available(name, profile, seeds, results_dir)

    teacher, student, distilled = runs("teacher"), runs("student"), runs("distilled")
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
    return rows


def _correct_by_seed(runs: list[RunResult], labels) -> dict[int, np.ndarray]:
    return {seed_of(r): correct(r, labels) for r in runs}


def _paired(a: dict[int, np.ndarray], b: dict[int, np.ndarray]):
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


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
    test = verdicts.better_verdict(*_paired(_correct_by_seed(distilled, test_labels),
                                            _correct_by_seed(student, test_labels)))
    gap = gap_recovered(*([r.test_errors for r in rs] for rs in (teacher, student, distilled)))
    ours = (f"{gap:.0%} of the gap; {test['errors_a']} vs {test['errors_b']} errors over "
            f"{test['seeds']} seeds, p = {test['p_value']:.2g}")
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
    runs = [r for r in sweep if r.config["spec"]["widths"][0] == small]
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
                              f"p = {test[k]['p_value']:.2g}" for k in ("below", "above") if k in test)
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
    test = verdicts.better_verdict(*_paired(by_w[weight], by_w[1.0]))
    ours = (f"best lower weight {weight:g}: {format_mean_sd(grid[weight], count=False)} errors vs "
            f"{format_mean_sd(grid[1.0], count=False)} at 1, p = {test['p_value']:.2g}")
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


def claims_markdown(rows: list[dict]) -> str:
    """The claims table, then the verdict rule of each kind of row (``kdlib.verdicts``)."""
    table = markdown_table(["#", "Claim (Section 3)", "Paper", "Ours (mean ± sd over seeds)",
                            "Replicated", "Rule"],
                           [[i + 1, r["claim"], r["paper"], r["ours"], r["replicated"],
                             r.get("rule", "")] for i, r in enumerate(rows)])
    used = [k for k in verdicts.RULES if any(r.get("rule") == k for r in rows)]
    return table + "\n\n" + "\n".join(f"- **{k}**: {verdicts.RULES[k]}" for k in used)


# ----------------------------------------------------------------------------- provenance
def provenance_rows(results_dir=None, profile: str = "full", seeds=DEFAULT_SEEDS) -> list[dict]:
    """One row per available run of every experiment (test-set runs, then validation-split
    runs): what made it and how long it took."""
    from .experiments import EXPERIMENTS
    rows = []
    for validation in (False, True):
        for name in EXPERIMENTS:
            for r in load_available(name, profile, seeds, results_dir, validation):
                p = r.provenance
                rows.append({"experiment": f"{name} (validation)" if validation else name,
                             "run": r.config["name"], "seed": seed_of(r),
                             "test_errors": r.test_errors,
                             "commit": short_commit(p.get("git_commit", "?")),
                             "kdlib": p.get("kdlib_version", "?"),
                             "torch": p.get("torch_version", "?"),
                             "device": short_device(p.get("device_name",
                                                          p.get("device", "?"))),
                             "wall_time_s": float(r.metrics.get("wall_time_s", 0.0))})
    return rows


def total_compute_hours(rows: list[dict]) -> float:
    return round(sum(r["wall_time_s"] for r in rows) / 3600, 2)


def compute_hours_by_experiment(rows: list[dict]) -> dict[str, float]:
    """{experiment: hours of training} from ``provenance_rows``, in their order."""
    out: dict[str, float] = {}
    for r in rows:
        out[r["experiment"]] = out.get(r["experiment"], 0.0) + r["wall_time_s"] / 3600
    return {k: round(v, 2) for k, v in out.items()}


# ----------------------------------------------------------------------------- README
README_START, README_END = "<!-- results-table:start -->", "<!-- results-table:end -->"


def _marked_text(path: Path) -> str:
    """The text of ``path``, which must hold the generated-table markers (checked before any
    artifact is read)."""
    text = path.read_text()
    if README_START not in text or README_END not in text:
        raise ValueError(f"{path}: no {README_START} ... {README_END} markers")
    return text


def _replace_marked(path: Path, block: str) -> None:
    """Replace what lies between the markers of ``path`` by ``block`` (atomic write)."""
    from .io import atomic_write_bytes
    head, rest = _marked_text(path).split(README_START, 1)
    new = head + README_START + "\n" + block + "\n" + README_END + rest.split(README_END, 1)[1]
    atomic_write_bytes(path, new.encode())


def update_readme(readme="README.md", results_dir=None, profile: str = "full") -> str:
    """Rewrite the README's results table (between its markers) from the artifacts."""
    path = Path(readme)
    _marked_text(path)
    rows = claims_table(results_dir, profile)
    runs = provenance_rows(results_dir, profile)
    seeds = sorted({r["seed"] for r in runs})
    table = (f"Generated from `results/{profile}/` by `python -m kdlib.report --readme` "
             f"({len(runs)} runs, seeds {', '.join(map(str, seeds))}, "
             f"{total_compute_hours(runs)} h of compute; where only one seed exists the "
             "spread is not yet measured). Details, figures and the verdict rules: "
             "`notebooks/05_results.ipynb`.\n\n" + claims_markdown(rows))
    _replace_marked(path, table)
    return table


# ----------------------------------------------------------------------------- the book
BOOK_INTRO = "book/intro.md"
BOOK_DATA = "book/data"


def claims_csv(rows: list[dict]) -> str:
    """The claims table as CSV (one row per claim, the columns of ``claims_markdown``)."""
    out = StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "claim", "paper", "ours", "replicated", "rule"])
    writer.writerows([i + 1, r["claim"], r["paper"], r["ours"], r["replicated"], r.get("rule", "")]
                     for i, r in enumerate(rows))
    return out.getvalue()


def runs_csv(rows: list[dict]) -> str:
    """Every run's provenance (``provenance_rows``) as CSV."""
    out = StringIO()
    fields = ["experiment", "run", "seed", "test_errors", "commit", "kdlib", "torch", "device",
              "wall_time_s"]
    writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def verdict_sentence(rows: list[dict]) -> str:
    """How many claims replicate, as one sentence (for the book's entry page)."""
    tested = [r for r in rows if r["replicated"] == "yes" or r["replicated"].startswith("no")]
    yes = [i + 1 for i, r in enumerate(rows) if r["replicated"] == "yes"]
    missing = len(rows) - len(tested)
    text = (f"Of the {len(rows)} claims, {len(tested)} could be tested and {len(yes)} replicate by "
            f"the rule of the results chapter (claims {', '.join(map(str, yes)) or 'none'})")
    return text + (f"; {missing} have no runs yet." if missing else ".")


def update_book(intro=BOOK_INTRO, data_dir=BOOK_DATA, results_dir=None,
                profile: str = "full") -> str:
    """Rewrite the entry page's verdict and claims table (between its markers) and write the
    CSV files the book links to (``claims.csv``, ``runs.csv`` in ``data_dir``)."""
    from .io import atomic_write_bytes
    path = Path(intro)
    _marked_text(path)
    rows = claims_table(results_dir, profile)
    runs = provenance_rows(results_dir, profile)
    seeds = sorted({r["seed"] for r in runs})
    data = Path(data_dir)
    data.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(data / "claims.csv", claims_csv(rows).encode())
    atomic_write_bytes(data / "runs.csv", runs_csv(runs).encode())
    link = Path(os.path.relpath(data / "claims.csv", path.parent)).as_posix()
    runs_link = Path(os.path.relpath(data / "runs.csv", path.parent)).as_posix()
    # The {table} directive holds exactly one table; the rules listed under it follow it.
    lines = claims_markdown(rows).splitlines()
    table = "\n".join(line for line in lines if line.startswith("|"))
    notes = "\n".join(line for line in lines if line.strip() and not line.startswith("|"))
    block = (f"{verdict_sentence(rows)}\n\n"
             f"```{{table}} The claims of Section 3: the paper's numbers and ours (mean ± sd "
             f"over seeds, {len(runs)} runs, seeds {', '.join(map(str, seeds))}, "
             f"{total_compute_hours(runs)} h of compute)\n:name: tab-claims\n\n"
             + table + "\n```\n\n" + (notes + "\n\n" if notes else "")
             + f"Download: {{download}}`this table as CSV <{link}>`, "
             f"{{download}}`every run's provenance as CSV <{runs_link}>`. Generated from the "
             f"artifacts in `results/{profile}/` by `python -m kdlib.report --book`.")
    _replace_marked(path, block)
    return block


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m kdlib.report")
    parser.add_argument("--readme", nargs="?", const="README.md", default="README.md",
                        help="README to update (default README.md)")
    parser.add_argument("--book", action="store_true",
                        help=f"also update {BOOK_INTRO} and the CSV files in {BOOK_DATA}")
    parser.add_argument("--profile", default="full")
    args = parser.parse_args()
    print(update_readme(args.readme, profile=args.profile))
    if args.book:
        print(update_book(profile=args.profile))
