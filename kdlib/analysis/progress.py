"""How far a long run has got, and where its test-error curve is heading.

Serves Section 3's teacher ("This net achieved 67 test errors"): the paper-recipe teacher of
chapter 6 trains for a thousand epochs over several sessions; the book shows its curves and
a power law fitted to them (where more epochs would lead: a guess, not a result).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import curve_fit

#: The shortest curve ``fit_learning_curve`` fits (it uses the second half, at least 5 epochs).
MIN_FIT_EPOCHS = 10


def power_law(epoch, floor, scale, exponent):
    """errors(epoch) = floor + scale * epoch^(-exponent)."""
    return floor + scale * np.power(epoch, -exponent)


def fit_learning_curve(errors, from_epoch: int | None = None) -> dict:
    """Least-squares fit of ``power_law`` to a test-error curve (one value per epoch, epoch 1
    first), over epochs >= ``from_epoch`` (default: the second half of the curve).

    Returns ``{"floor", "scale", "exponent", "from_epoch", "to_epoch"}``. A projection, not a
    measurement: a schedule that still changes (momentum ramp, learning-rate decay) bends the
    curve in ways the fit cannot know.
    """
    y = np.asarray(errors, dtype=np.float64)
    if y.ndim != 1 or len(y) < MIN_FIT_EPOCHS or not np.all(np.isfinite(y)):
        raise ValueError(f"need a finite curve of at least {MIN_FIT_EPOCHS} epochs to fit, "
                         f"got {y.shape}")
    start = max(1, len(y) // 2) if from_epoch is None else int(from_epoch)
    if not 1 <= start <= len(y) - 5:
        raise ValueError(f"from_epoch must be in 1..{len(y) - 5}, got {from_epoch}")
    epochs = np.arange(start, len(y) + 1, dtype=np.float64)
    part = y[start - 1:]
    guess = (max(part.min() * 0.8, 0.0), (part[0] - part.min() * 0.8) * start ** 0.5 + 1.0, 0.5)
    (floor, scale, exponent), _ = curve_fit(
        power_law, epochs, part, p0=guess, bounds=([0.0, 0.0, 1e-3], [np.inf, np.inf, 5.0]),
        maxfev=20000)
    return {"floor": float(floor), "scale": float(scale), "exponent": float(exponent),
            "from_epoch": start, "to_epoch": len(y)}


def projection(curves, epochs_total: int) -> dict | None:
    """The power-law fit of the seed-mean curve (``fit_learning_curve``) with its continuation
    to ``epochs_total`` (``"epochs"``, ``"errors"``); None while the runs are too short to fit."""
    mean = mean_curve(curves)
    if len(mean) < MIN_FIT_EPOCHS:
        return None
    fit = fit_learning_curve(mean)
    ahead = np.arange(fit["to_epoch"], epochs_total + 1)
    return {**fit, "epochs": ahead, "errors": project(fit, ahead)}


def project(fit: dict, epoch) -> np.ndarray:
    """The fitted curve at ``epoch`` (scalar or array)."""
    return power_law(np.asarray(epoch, dtype=np.float64), fit["floor"], fit["scale"], fit["exponent"])


def epoch_reaching(fit: dict, target: float) -> float | None:
    """First epoch at which the fitted curve reaches ``target`` errors; None if it never does."""
    if target <= fit["floor"] or fit["scale"] <= 0:
        return None
    return float(((target - fit["floor"]) / fit["scale"]) ** (-1.0 / fit["exponent"]))


def mean_curve(curves) -> np.ndarray:
    """Mean over runs of per-epoch curves, over the epochs every run has reached."""
    curves = [np.asarray(c, dtype=np.float64) for c in curves if len(c)]
    if not curves:
        raise ValueError("no curve to average")
    length = min(len(c) for c in curves)
    return np.mean([c[:length] for c in curves], axis=0)


def run_progress(configs, results_dir) -> dict[str, dict]:
    """How far each run of ``configs`` has got, by run name: ``{"seed", "validation", "epoch",
    "epochs", "test_errors", "finished"}`` from its artifact when finished, else from its
    checkpoint (``experiments.training_progress``); runs not started are left out."""
    from ..runs import experiments  # experiments -> recipes -> ...: import when used
    out = {}
    for cfg in configs:
        try:
            run = experiments.load_artifact(cfg, results_dir)
            state = {"epoch": cfg.spec.epochs, "epochs": cfg.spec.epochs,
                     "test_errors": run.metrics["test_errors_curve"]}
        except experiments.ArtifactError:
            state = experiments.training_progress(cfg, results_dir)
            if state is None:
                continue
        out[cfg.name + (" (validation)" if cfg.validation else "")] = {
            "seed": cfg.member.seed, "validation": cfg.validation, "epoch": state["epoch"],
            "epochs": state["epochs"], "test_errors": list(state["test_errors"]),
            "finished": state["epoch"] == state["epochs"]}
    return out


#: The columns of ``status_rows``.
STATUS_HEADER = ["Run", "Split", "Epochs trained", "Errors after the last epoch", "State"]


def status_rows(runs: dict[str, dict]) -> list[list]:
    """One row per run of ``run_progress`` (columns ``STATUS_HEADER``): its errors after the
    last epoch it trained, never its best epoch."""
    return [[name, "validation" if p["validation"] else "test", f"{p['epoch']} of {p['epochs']}",
             p["test_errors"][-1] if p["test_errors"] else "-",
             "finished" if p["finished"] else "in progress"] for name, p in runs.items()]


def test_split_summary(runs: dict[str, dict], paper: float | None = None) -> dict:
    """The test-split runs of ``run_progress`` in numbers: ``{"runs", "finished"`` (how many
    trained every epoch), ``"errors"`` (after each one's last epoch), ``"mean", "sd"`` (once
    every run finished; sd from two runs on), ``"verdict"}``: the count rule of the results
    chapter (``verdicts.count_verdict``) against ``paper`` once every run finished, if it has a
    band (three runs or more), else None."""
    from .verdicts import count_verdict
    tests = sorted((p for p in runs.values() if not p["validation"]), key=lambda p: p["seed"])
    errors = [p["test_errors"][-1] for p in tests if p["test_errors"]]
    done = bool(tests) and all(p["finished"] for p in tests)
    verdict = count_verdict(errors, paper) if done and paper is not None else None
    return {"runs": len(tests), "finished": sum(p["finished"] for p in tests), "errors": errors,
            "mean": float(np.mean(errors)) if done else None,
            "sd": float(np.std(errors, ddof=1)) if done and len(errors) > 1 else None,
            "verdict": verdict if verdict is not None and verdict["low"] is not None else None}
