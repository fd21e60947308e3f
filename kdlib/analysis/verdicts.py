"""When does a claim of Section 3 replicate? The verdict rules, in one place.

Each rule returns a dict with ``verdict`` ("yes", "no (ours higher)", "no", "not testable:
...") and the numbers it was decided on, and each says in its docstring where a threshold is
ours rather than the paper's.

* **Counts** ("67 test errors"): the paper's number replicates when it lies within our
  seed-to-seed spread, mean ± 2 sd over at least ``MIN_SEEDS`` seeds (sample sd). Not a
  Poisson band: both counts come from the same 10,000 test digits, so counting noise
  between them is not independent; what varies between runs is the training.
* **Comparisons** ("significantly better", "works best"): a paired test of that comparison
  on the same test digits, McNemar's exact test on the examples pooled over seeds (each
  seed's pair of runs shares its teacher and test set). The 5% level is ours (convention).
* **Similarity** ("fairly similar"): the spread of the seed means is within what seed noise
  gives for the difference of two means, 2 x sqrt(2 / k) x the pooled seed sd (ours).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from .stats import mcnemar_exact

MIN_SEEDS = 3
ALPHA = 0.05


def _direction(ours: float, paper: float) -> str:
    return "no (ours lower)" if ours < paper else "no (ours higher)"


def count_verdict(ours: Sequence[float], paper: float) -> dict:
    """Is ``paper`` within mean ± 2 sd of our seeds? (needs >= ``MIN_SEEDS`` seeds)"""
    ours = [float(v) for v in ours]
    if len(ours) < MIN_SEEDS:
        return {"verdict": f"not testable: {len(ours)} seed(s), need {MIN_SEEDS}",
                "low": None, "high": None}
    mean, sd = float(np.mean(ours)), float(np.std(ours, ddof=1))
    low, high = mean - 2 * sd, mean + 2 * sd
    ok = low <= paper <= high
    return {"verdict": "yes" if ok else _direction(mean, paper), "low": round(low, 1),
            "high": round(high, 1), "mean": round(mean, 1), "sd": round(sd, 1)}


def pooled_mcnemar(correct_a: Sequence[np.ndarray], correct_b: Sequence[np.ndarray]) -> dict:
    """McNemar's exact test of A vs B on the examples of every seed pooled.

    ``correct_a[i]`` and ``correct_b[i]`` are the per-example correctness of seed i's two runs
    on the same test digits. Returns errors of each (summed), discordant counts, p-value.
    """
    if len(correct_a) != len(correct_b) or not correct_a:
        raise ValueError("need the same number (>= 1) of paired runs on each side")
    a, b = np.concatenate(list(correct_a)), np.concatenate(list(correct_b))
    only_a, only_b, p = mcnemar_exact(a, b)
    return {"errors_a": int((~a).sum()), "errors_b": int((~b).sum()), "only_a_right": only_a,
            "only_b_right": only_b, "p_value": p, "seeds": len(correct_a)}


def better_verdict(correct_a, correct_b) -> dict:
    """Is A significantly better than B (fewer errors, pooled McNemar p < ``ALPHA``)?"""
    test = pooled_mcnemar(correct_a, correct_b)
    ok = test["errors_a"] < test["errors_b"] and test["p_value"] < ALPHA
    return {"verdict": "yes" if ok else "no", **test}


def best_in_range_verdict(correct_by_setting: dict[float, list[np.ndarray]],
                          low: float, high: float) -> dict:
    """"Settings in [low, high] work significantly better than higher or lower ones."

    The best setting inside the range (fewest errors over the seeds) against the best one
    below it and the best one above it: both comparisons must be significant (each side
    that has settings). Choosing the best inside and the strongest rival outside keeps the
    rule conservative about the rivals and generous about the range (say so in the book).
    """
    def errors(s):
        return sum(int((~c).sum()) for c in correct_by_setting[s])

    inside = [s for s in correct_by_setting if low <= s <= high]
    below = [s for s in correct_by_setting if s < low]
    above = [s for s in correct_by_setting if s > high]
    if not inside or not (below or above):
        return {"verdict": "not testable: no settings inside and outside the range"}
    best = min(inside, key=lambda s: (errors(s), s))
    out = {"best_inside": best, "errors_inside": errors(best)}
    ok = True
    for side, rivals in (("below", below), ("above", above)):
        if not rivals:
            continue
        rival = min(rivals, key=lambda s: (errors(s), s))
        test = better_verdict(correct_by_setting[best], correct_by_setting[rival])
        out[side] = {"setting": rival, "errors": errors(rival), "p_value": test["p_value"]}
        ok = ok and test["verdict"] == "yes"
    out["verdict"] = "yes" if ok else "no"
    return out


def similar_verdict(errors_by_setting: dict[float, Sequence[float]]) -> dict:
    """"Fairly similar": the spread of the seed means <= 2 sqrt(2/k) x pooled seed sd."""
    groups = {s: [float(v) for v in e] for s, e in errors_by_setting.items()}
    if len(groups) < 2:
        return {"verdict": "not testable: fewer than two settings"}
    k = min(len(e) for e in groups.values())
    if k < 2:
        return {"verdict": "not testable: one seed per setting"}
    pooled_sd = math.sqrt(float(np.mean([np.var(e, ddof=1) for e in groups.values()])))
    means = [float(np.mean(e)) for e in groups.values()]
    spread = max(means) - min(means)
    bound = 2 * math.sqrt(2 / k) * pooled_sd
    return {"verdict": "yes" if spread <= bound else "no", "spread": round(spread, 1),
            "bound": round(bound, 1), "pooled_sd": round(pooled_sd, 1), "seeds": k}


#: The rule of each kind of claim, as the book states it next to the table.
RULES = {
    "count": f"the paper's number lies within our mean ± 2 sd over ≥ {MIN_SEEDS} seeds",
    "better": f"McNemar's exact test on the test digits pooled over seeds, p < {ALPHA:g} "
              "(the level is ours)",
    "range": "the best setting inside the range against the best below and the best above it, "
             f"each by McNemar's exact test pooled over seeds, p < {ALPHA:g}",
    "similar": "the spread of the seed means is within 2·sqrt(2/k) pooled seed sd (ours)",
}


def is_tested(verdict: str) -> bool:
    """Whether a claims-table verdict is a test's answer ("yes", "no", "no (ours higher)"),
    not "not run" or "not testable" (which also start with "no")."""
    return verdict in ("yes", "no") or verdict.startswith("no (")
