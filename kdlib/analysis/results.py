"""Loading the runs behind every number of Section 3, and saying where they came from.

Each experiment of Hinton, Vinyals & Dean (2015), Section 3 (teacher, students, the
temperature and hard-weight sweeps, the omitted-digit transfer sets) is a set of runs whose
artifacts live under ``results/``. The notebooks load them here (training only what is
missing), and every table says which profile, seeds, code and machine produced its runs.

Loading, by level: an experiment's runs with ``load_or_run`` (trains what is missing),
``load_available`` (never trains) and ``load_failures`` (runs that diverged or collapsed); a
list of configs with ``load_existing``; one config's artifact with
``kdlib.runs.experiments.load_artifact``; a run of an earlier recipe with ``kdlib.runs.history.load``
(both through ``kdlib.runs.experiments.read_run``). Runs of two experiments are compared seed by
seed (``correct_by_seed``, ``paired_by_seed``, ``better_than``).
"""
from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path

import numpy as np

from ..core.io import ArtifactError
from ..core.models import parameter_count
from ..core.tables import html_table, markdown_table  # noqa: F401 (the chapters call results.markdown_table)
from ..runs.student_recipe import RECIPE
from ..runs.catalogue import EXPERIMENTS, configs_for
from ..runs.experiments import (
    FailedRun,
    RunResult,
    artifact_path,
    load_artifact,
    load_failure,
    run_configs,
    seed_of,
)
from ..runs.recipes import DEFAULT_SEEDS, PAPER_TEACHER
from . import verdicts
from .verdicts import ALPHA

log = logging.getLogger("kdlib")


def default_results_dir() -> Path:
    """``<repository root>/results``, found from this package's location."""
    return Path(__file__).resolve().parents[2] / "results"


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
        runs = run_configs(configs, device=device, results_dir=results_dir, force=force,
                           progress=False, log=log.info)
    return [r for r in runs if isinstance(r, RunResult)]  # failures: ``load_failures``


def hard_label_students(profile: str = "full", seeds=DEFAULT_SEEDS, *, results_dir=None,
                        device="cpu", force: bool = False) -> list[RunResult]:
    """The label-only student of every sweep width (``load_or_run``): the ``baseline``
    experiment, and where it leaves out the 2x800, the
    ``student`` experiment's runs, so that one set of runs is the 2x800 baseline everywhere."""
    runs = load_or_run("baseline", profile, seeds, results_dir=results_dir, device=device, force=force)
    from ..runs.recipes import budget
    have = {int(c.spec.widths[0]) for c in configs_for("baseline", profile, seeds)}
    if any(w in budget(profile).sweep_widths and w not in have
           for w in (int(c.spec.widths[0]) for c in configs_for("student", profile, seeds))):
        runs = load_or_run("student", profile, seeds, results_dir=results_dir, device=device,
                           force=force) + runs
    return runs


def load_runs(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS, *, train: bool,
              results_dir=None, device="cpu", force: bool = False) -> list[RunResult]:
    """``load_or_run`` when ``train``, else ``load_available``: a notebook re-executed on the
    full profile shows the runs that exist (possibly none) and never starts hours of training."""
    if train:
        return load_or_run(experiment, profile, seeds, results_dir=results_dir, device=device,
                           force=force)
    return load_available(experiment, profile, seeds, results_dir)


def load_available(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS,
                   results_dir=None, validation: bool = False) -> list[RunResult]:
    """The runs of an experiment whose artifacts exist and are valid; never trains.

    A stale or corrupt artifact counts as missing (the reason goes to the ``kdlib`` logger at
    INFO level, so that it does not land on a notebook's stderr).
    """
    return load_existing(configs_for(experiment, profile, seeds, validation),
                          resolve_results_dir(results_dir))


def load_failures(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS,
                  results_dir=None, validation: bool = False) -> list[FailedRun]:
    """The runs of an experiment that diverged or collapsed (recorded failures); never trains."""
    results_dir = resolve_results_dir(results_dir)
    found = (load_failure(c, results_dir) for c in configs_for(experiment, profile, seeds, validation))
    return [f for f in found if f is not None]


def load_existing(configs, results_dir) -> list[RunResult]:
    """The valid artifacts of ``configs`` (stale or corrupt ones logged at INFO, skipped)."""
    out = []
    for cfg in configs:
        if artifact_path(cfg, results_dir).exists():
            try:
                out.append(load_artifact(cfg, results_dir))
            except ArtifactError as e:
                log.info("%s", e)
    return out


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


def provenance_box(runs_by_name: dict):
    """The provenance lines of named groups of runs, folded into a details box for the book
    (an IPython Markdown object: the reader opens it when wanted)."""
    from IPython.display import Markdown
    lines = "\n".join(f"- {name}: {provenance_line(runs)}" for name, runs in runs_by_name.items())
    return Markdown(f"<details><summary>Which runs these are (provenance)</summary>\n\n{lines}\n\n"
                    "</details>")


def dropout_text(spec) -> str:
    """A recipe's dropout as the recipe table of chapter 2 states it (Section 3: the teacher
    uses dropout on inputs and hidden units): '20% input, 50% hidden', or 'none'."""
    if not (spec.input_dropout or spec.hidden_dropout):
        return "none"
    return f"{spec.input_dropout:.0%} input, {spec.hidden_dropout:.0%} hidden"


def errors_text(errors) -> str:
    """(errors, errors on the omitted class) of ``bias_shift.shift_study`` as '206 (133)'
    (Section 3, the transfer set without 3s)."""
    return f"{errors[0]} ({errors[1]})"


def shift_errors_text(shift, errors) -> str:
    """A chosen bias shift and the errors it leaves, '+3.5: 109 (14)', or 'no train logits'
    when the shift could not be chosen (``shift`` None)."""
    return "no train logits" if shift is None else f"{shift:+.1f}: {errors_text(errors)}"


def error_percent(errors, total: int) -> float:
    """Errors as a percentage of ``total`` test cases (Section 3 reports the 7s-and-8s
    transfer set's errors in percent)."""
    return 100.0 * errors / total


def shift_percent_text(shift, errors, total: int) -> str:
    """A chosen bias shift and the test error it leaves in percent, '-7.6: 13.2%', or
    'no train logits' when the shift could not be chosen (``shift`` None)."""
    if shift is None:
        return "no train logits"
    return f"{shift:+.1f}: {error_percent(errors[0], total):.1f}%"


def correct(run_or_logits, labels) -> np.ndarray:
    """Boolean per test example: is the prediction right?"""
    logits = run_or_logits.logits() if isinstance(run_or_logits, RunResult) else run_or_logits
    return np.asarray(logits).argmax(-1) == np.asarray(labels)


def _search_runs(profile, results_dir):
    """The student-recipe search's runs (validation split; they chose the reported recipe)."""
    from ..runs.search import search_configs
    return load_existing(search_configs(profile), resolve_results_dir(results_dir))


def provenance_rows(results_dir=None, profile: str = "full", seeds=DEFAULT_SEEDS) -> list[dict]:
    """One row per available run behind the book's results (test-set runs, then validation-split
    runs, the student-recipe search last): what made it, how long it took, what it computed.
    The runs of earlier recipes are ``kdlib.runs.history.superseded_runs``."""
    rows = []
    for validation in (False, True):
        for name in [*EXPERIMENTS, *(["student_search"] if validation else [])]:
            found = (_search_runs(profile, results_dir) if name == "student_search" else
                     load_available(name, profile, seeds, results_dir, validation))
            for r in found:
                p = r.provenance
                rows.append({"experiment": f"{name} (validation)" if validation else name,
                             "run": r.config["name"], "seed": seed_of(r),
                             "test_errors": r.test_errors,
                             "commit": short_commit(p.get("git_commit", "?")),
                             "kdlib": p.get("kdlib_version", "?"),
                             "torch": p.get("torch_version", "?"),
                             "device": short_device(p.get("device_name",
                                                          p.get("device", "?"))),
                             "wall_time_s": float(r.metrics.get("wall_time_s", 0.0)),
                             **training_work(r)})
    return rows


def training_work(run: RunResult) -> dict:
    """What a run computed, for a cost estimate on other hardware: ``flops`` (multiply-adds
    x 2 of its forward and backward passes over the transfer set, every epoch, plus the
    forward passes that label a jittered transfer set and count the test errors after each
    epoch) and ``steps`` (its updates, shared with the runs stacked with it)."""
    spec, m = run.config["spec"], run.metrics
    n = m.get("transfer_set_size", 60000)
    epochs, params = spec["epochs"], parameter_count(spec["widths"])
    curve_images = m.get("curve_test_images", m.get("test_size", 10000))
    flops = epochs * (6 * params * n + 2 * params * curve_images)
    if run.config.get("teacher_seed") is not None and spec.get("jitter"):  # the teacher labels each batch
        flops += epochs * 2 * parameter_count(PAPER_TEACHER.widths) * n
    steps = epochs * math.ceil(n / spec["batch_size"]) / m.get("stacked_with", 1)
    return {"flops": float(flops), "steps": float(steps)}


#: The stated GPU throughput of ``gpu_hours_estimate`` (not measured): bfloat16 matrix products
#: of these small layers at about a tenth of an H100's dense peak, and the launch cost of one
#: compiled update step (forward, backward, update: a few kernels).
GPU_TFLOPS, GPU_SECONDS_PER_STEP = 100.0, 50e-6


def gpu_hours_estimate(rows: list[dict], tflops: float = GPU_TFLOPS,
                       seconds_per_step: float = GPU_SECONDS_PER_STEP) -> float:
    """An estimate, not a measurement: hours the runs of ``provenance_rows`` would take on one
    GPU at ``tflops`` sustained and ``seconds_per_step`` per update, one run after another."""
    return sum(r["flops"] / (tflops * 1e12) + r["steps"] * seconds_per_step for r in rows) / 3600


def compute_table(reported: list[dict], superseded: list[dict]) -> tuple[list[str], list[list]]:
    """(header, rows): training hours measured on the CPU and minutes estimated for one GPU
    (``gpu_hours_estimate``) by experiment, then all reported runs, then the superseded ones
    (``kdlib.runs.history.superseded_runs``)."""
    def row(name, rows):
        return [name, len(rows), f"{total_compute_hours(rows):.2f}",
                f"{60 * gpu_hours_estimate(rows):.1f}"]
    names = list(dict.fromkeys(r["experiment"] for r in reported))
    return (["Experiment", "Runs", "Training time, CPU (h, measured)", "One GPU (min, estimate)"],
            [row(n, [r for r in reported if r["experiment"] == n]) for n in names]
            + [row("all runs behind the reported results", reported),
               row("superseded runs (earlier recipes; the history page)", superseded)])


def seconds_per_epoch(run: RunResult) -> float:
    """A run's seconds per epoch, measured over its last stretch (a run resumed across
    sessions whose earlier stretches were not timed keeps that one apart)."""
    last = run.metrics.get("wall_time_last_stretch_s", run.metrics["wall_time_s"])
    return last / (run.config["spec"]["epochs"] - run.metrics.get("resumed_from_epoch", 0))


def total_compute_hours(rows: list[dict]) -> float:
    return round(sum(r["wall_time_s"] for r in rows) / 3600, 2)



def direction_text(test: dict, alpha: float = 0.05) -> str:
    """A paired comparison (``errors_a``, ``errors_b``, ``p_value``) in words, from A's side:
    "significantly better", "significantly worse" or "not significantly different"."""
    if test["p_value"] >= alpha or test["errors_a"] == test["errors_b"]:
        return "not significantly different"
    return f"significantly {'better' if test['errors_a'] < test['errors_b'] else 'worse'}"


def p_text(p: float, with_p: bool = False) -> str:
    """A p-value for the reader, two significant digits ("p = 0.012" with ``with_p``; more where
    two would print the 5% level itself, which the verdicts compare with); "< 1e-300"
    below that, where the float underflows and the printed digits would depend on the
    process's denormal mode (training sets flush-to-zero: the same test printed 1e-323 or 0)."""
    if p < 1e-300:
        return "p < 1e-300" if with_p else "< 1e-300"
    text, digits = f"{p:.2g}", 2
    while float(text) == ALPHA != p and digits < 6:  # never print a p on either side as 0.05
        digits += 1
        text = f"{p:.{digits}g}"
    return f"p = {text}" if with_p else text


def clipped_share_curves(runs: list[RunResult]) -> dict[str, dict[str, np.ndarray]]:
    """{"2x<width>": {"T = <t>": seed mean of the share of clipped updates per epoch}} of the
    runs that recorded it (``clipped_share_curve``; clipped runs since 1705e41), e.g. a
    temperature sweep; runs without the record are left out."""
    grouped: dict[str, dict[str, list]] = {}
    for r in sorted(runs, key=lambda r: (-r.config["spec"]["widths"][0],
                                         r.config["member"]["temperature"])):
        share = r.metrics.get("clipped_share_curve")
        if share:
            width, t = r.config["spec"]["widths"][0], r.config["member"]["temperature"]
            grouped.setdefault(f"2x{width}", {}).setdefault(f"T = {t:g}", []).append(share)
    return {w: {t: np.mean(curves, axis=0) for t, curves in by_t.items()}
            for w, by_t in grouped.items()}


def recipe_table() -> tuple[list[str], list[list[str]]]:
    """(header, rows) of chapter 2's recipe table: the teacher, the hard-label student and the
    distilled student (``kdlib.runs.student_recipe``), read from the specs."""
    from ..runs.recipes import DISTILL_TEMPERATURE, SOFT_WEIGHT, distill_spec
    teacher = PAPER_TEACHER
    distilled = distill_spec()
    student = configs_for("student", "full", [0])[0].spec
    specs = {"Teacher": (teacher, "hard labels"), "Student": (student, "hard labels"),
             "Distilled student": (distilled, f"T = {DISTILL_TEMPERATURE:g}, soft weight "
                                              f"{SOFT_WEIGHT:g}, hard weight {RECIPE.hard_weight:g}")}

    def momentum(s):
        rising = (f", rising to {s.momentum_final:g} over {s.momentum_epochs} epochs"
                  if s.momentum_final is not None else "")
        return f"SGD, momentum {s.momentum:g}{rising}, batch {s.batch_size}"

    def learning_rate(s):
        decay = (f", times {s.lr_decay:g} after each epoch (the schedule of Hinton et al. 2012, "
                 "who start at 10)"
                 if s.schedule == "hinton2012" else ", cosine decay to 0")
        warmup = f" after a {s.warmup_epochs}-epoch warm-up" if s.warmup_epochs else ""
        clip = f"; gradient norm clipped at {s.max_grad_norm:g}" if s.max_grad_norm else ""
        return f"{s.lr:g}{decay}{warmup}{clip}"
    rows = [["Hidden layers"] + [" x ".join(map(str, s.widths)) + " ReLU" for s, _ in specs.values()],
            ["Targets"] + [t for _, t in specs.values()],
            ["Epochs"] + [str(s.epochs) for s, _ in specs.values()],
            ["Optimiser"] + [momentum(s) for s, _ in specs.values()],
            ["Learning rate"] + [learning_rate(s) for s, _ in specs.values()],
            ["Dropout"] + [dropout_text(s) for s, _ in specs.values()],
            ["Max-norm of each unit's weights"] + [f"{s.max_norm:.3g}" if s.max_norm else "none"
                                                   for s, _ in specs.values()],
            ["Input jitter"] + [f"up to {s.jitter} pixels" if s.jitter else "none"
                                for s, _ in specs.values()],
            ["Matrix products"] + [s.precision for s, _ in specs.values()]]
    return [""] + list(specs), rows


def clipping_by_setting(runs: list[RunResult]) -> list[dict]:
    """Per hidden width and temperature (seed means): the share of all updates whose gradient
    was clipped, and the test errors; with each width's Spearman rank correlation of the two
    over temperatures ("rho", "p"; None below 3 temperatures). An association across
    temperatures, not a cause: temperature changes more than the gradient's size."""
    from scipy.stats import spearmanr
    by: dict[tuple, list] = {}
    for r in runs:
        share = r.metrics.get("clipped_share_curve")
        if share:
            key = (r.config["spec"]["widths"][0], r.config["member"]["temperature"])
            by.setdefault(key, []).append((float(np.mean(share)), r.test_errors))
    rows = [{"width": w, "temperature": t, "share": float(np.mean([s for s, _ in v])),
             "errors": float(np.mean([e for _, e in v])), "seeds": len(v)}
            for (w, t), v in sorted(by.items(), key=lambda kv: (-kv[0][0], kv[0][1]))]
    for w in {r["width"] for r in rows}:
        mine = [r for r in rows if r["width"] == w]
        rho, p = (spearmanr([r["share"] for r in mine], [r["errors"] for r in mine])
                  if len(mine) >= 3 and len({r["share"] for r in mine}) > 1 else (None, None))
        for r in mine:
            r["rho"], r["p"] = (None, None) if rho is None else (float(rho), float(p))
    return rows


def mean_logit_sd(runs: list[RunResult]) -> float | None:
    """Seed mean of the standard deviation of each run's stored test logits: how large a
    teacher's logits are (chapter 6: the soft-target gradient grows with them); None: no run."""
    return float(np.mean([r.logits().std() for r in runs])) if runs else None


def parity_rows(paths) -> tuple[list[str], list[list[str]], list[float]]:
    """(header, rows, pooled p-values) of the bfloat16-vs-float32 parity runs written by
    ``benchmarks/parity.py`` (one JSON file each in ``paths``): per run, the errors of each seed
    in both precisions, the difference of the means against the float32 seed sd, the pooled
    McNemar p."""
    import json
    rows, p_values = [], []
    for path in paths:
        doc = json.loads(Path(path).read_text())
        teacher = doc["hard_weight"] is None
        for r in doc["rows"]:
            name = "paper-recipe teacher" if teacher else f"2x800 student, {r['student']}"
            p = r["pooled_mcnemar"]["p_value"]
            rows.append([f"{name}, {doc['epochs']} epochs", ", ".join(map(str, r["bfloat16_errors"])),
                         ", ".join(map(str, r["float32_errors"])),
                         f"{r['difference_of_means']:+.1f} (seed sd {r['seed_sd_float32']:.1f})",
                         p_text(p)])
            p_values.append(p)
    return (["Run", "bfloat16 errors (per seed)", "float32 errors", "difference of means",
             "pooled p"], rows, p_values)


# ----------------------------------------------------------------------------- pairing by seed
def correct_by_seed(runs: list[RunResult], labels) -> dict[int, np.ndarray]:
    """{seed: which test digits the run of that seed gets right}."""
    return {seed_of(r): correct(r, labels) for r in runs}


def paired_by_seed(a: dict[int, np.ndarray], b: dict[int, np.ndarray]):
    """The arrays of the seeds both ``a`` and ``b`` have, in seed order: (list of a's, list of b's)."""
    seeds = sorted(set(a) & set(b))
    return [a[s] for s in seeds], [b[s] for s in seeds]


def better_than(runs_a: list[RunResult], runs_b: list[RunResult], test_labels) -> dict:
    """The results table's rule "better" (``verdicts.better_verdict``): A against B, McNemar's
    exact test on the test digits of every seed both have, pooled."""
    return verdicts.better_verdict(*paired_by_seed(correct_by_seed(runs_a, test_labels),
                                                   correct_by_seed(runs_b, test_labels)))
