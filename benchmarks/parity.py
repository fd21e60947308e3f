"""bfloat16 vs float32 accuracy parity on the validation split (issue: the student step at this
CPU's floor, "parity, which main has never measured").

``.venv/bin/python benchmarks/parity.py [--epochs 30] [--seeds 0 1 2] [--optimiser adam:0.003]
[--hard-weight 0.1] [--results-dir benchmarks/results/parity]``, or with ``--teacher`` the
paper-recipe teacher (Hinton et al. 2012 schedule) for its first ``--epochs`` epochs.

For each seed, the 2x800 hard-label student and the 2x800 student distilled at T = 20 from the
validation teacher (seed 0), both trained by the search recipe ``--optimiser`` for ``--epochs``
epochs on the first 50,000 training images, once with bfloat16 GEMMs and once in float32
(the same seed: the same initialisation and data order). Validation errors on the last 10,000
images, a paired McNemar test per seed and pooled over seeds (``kdlib.analysis.verdicts``), and the
difference of the means against the seed-to-seed spread. The runs are ordinary artifacts under
``--results-dir`` (resumable, with provenance); the table goes to stdout and JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from kdlib.core.data import load_mnist  # noqa: E402
from kdlib.runs.experiments import run_configs  # noqa: E402
from kdlib.runs.catalogue import configs_for  # noqa: E402
from kdlib.runs.recipes import Optimiser  # noqa: E402
from kdlib.runs.search import search_config  # noqa: E402
from kdlib.core.spec import Member  # noqa: E402
from kdlib.analysis.stats import mcnemar_exact, mean_sd  # noqa: E402
from kdlib.analysis.verdicts import pooled_mcnemar  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def configs(optimiser: Optimiser, hard_weight: float, epochs: int, seeds, precision: str):
    out = []
    for s in seeds:
        distilled = search_config(optimiser, hard_weight, epochs, s)
        hard = replace(distilled, name=f"hard-{optimiser.label}-e{epochs}-s{s}", teacher_seed=None,
                       member=Member(seed=s))
        for cfg in (hard, distilled):
            out.append(replace(cfg, experiment=f"parity-{precision}",
                               spec=replace(cfg.spec, precision=precision)))
    return out


def teacher_configs(epochs: int, seeds, precision: str):
    """The paper-recipe teacher on the validation split, its first ``epochs`` epochs: its
    schedule depends on the epoch only, so these are the first epochs of the 1000-epoch run."""
    return [replace(c, experiment=f"parity-teacher-{precision}", store_weights=False,
                    name=f"paper-teacher-e{epochs}-s{c.member.seed}",
                    spec=replace(c.spec, epochs=epochs, precision=precision))
            for c in configs_for("paper_teacher", "full", seeds, validation=True)]


def compare(pairs, labels) -> dict:
    """bfloat16 against float32 runs of the same seeds: errors, McNemar per seed and pooled."""
    correct = {pr: [r.logits().argmax(-1) == labels for r in (pair[j] for pair in pairs)]
               for j, pr in enumerate(("bfloat16", "float32"))}
    per_seed = [mcnemar_exact(a, b)[2] for a, b in zip(correct["bfloat16"], correct["float32"])]
    errors = {pr: [int((~c).sum()) for c in correct[pr]] for pr in correct}
    (m16, sd16), (m32, sd32) = mean_sd(errors["bfloat16"]), mean_sd(errors["float32"])
    return {"bfloat16_errors": errors["bfloat16"], "float32_errors": errors["float32"],
            "bfloat16_mean_sd": [m16, sd16], "float32_mean_sd": [m32, sd32],
            "mcnemar_p_per_seed": per_seed,
            "pooled_mcnemar": pooled_mcnemar(correct["bfloat16"], correct["float32"]),
            "difference_of_means": round(m16 - m32, 1), "seed_sd_float32": sd32,
            "wall_time_s": {pr: [pair[j].metrics["wall_time_s"] for pair in pairs]
                            for j, pr in enumerate(("bfloat16", "float32"))}}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--optimiser", default="adam:0.003", help="FAMILY:LR of kdlib.runs.recipes.Optimiser")
    p.add_argument("--hard-weight", type=float, default=0.1)
    p.add_argument("--results-dir", type=Path, default=ROOT / "benchmarks/results/parity")
    p.add_argument("--out", type=Path, default=None,
                   help="default benchmarks/results/parity.json (parity-teacher.json with --teacher)")
    p.add_argument("--teacher", action="store_true", help="the paper-recipe teacher, not the students")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = ROOT / f"benchmarks/results/parity{'-teacher' if args.teacher else ''}.json"
    family, lr = args.optimiser.split(":")
    optimiser = Optimiser(family, float(lr))
    data = load_mnist()
    labels = data.train_labels[50000:].numpy()
    # the validation teacher is read from the project's results (never retrained here)
    teacher_dir = args.results_dir / "full-validation" / "paper_teacher"
    linked = not teacher_dir.exists()
    if linked:  # a link for the run only: never committed
        teacher_dir.parent.mkdir(parents=True, exist_ok=True)
        teacher_dir.symlink_to(ROOT / "results/full-validation/paper_teacher")
    try:
        if args.teacher:  # the validation teacher itself is not needed
            runs = {pr: run_configs(teacher_configs(args.epochs, args.seeds, pr),
                                    results_dir=args.results_dir, data=data, allow_dirty=True)
                    for pr in ("bfloat16", "float32")}
        else:
            runs = {pr: run_configs(configs(optimiser, args.hard_weight, args.epochs, args.seeds, pr),
                                    results_dir=args.results_dir, data=data, allow_dirty=True)
                    for pr in ("bfloat16", "float32")}
    finally:
        if linked:
            teacher_dir.unlink()
    if args.teacher:
        pairs = list(zip(runs["bfloat16"], runs["float32"]))
        rows = [{"student": "paper-recipe teacher", **compare(pairs, labels)}]
    else:
        rows = [{"student": kind, **compare([(runs["bfloat16"][2 * i + k], runs["float32"][2 * i + k])
                                             for i in range(len(args.seeds))], labels)}
                for kind, k in (("hard-label", 0), ("distilled", 1))]
    doc = {"optimiser": "hinton2012 (the paper teacher's recipe)" if args.teacher else optimiser.label,
           "hard_weight": None if args.teacher else args.hard_weight, "epochs": args.epochs,
           "seeds": args.seeds, "rows": rows,
           "provenance": runs["bfloat16"][0].provenance}
    args.out.write_text(json.dumps(doc, indent=1, default=lambda o: o.item()
                                   if isinstance(o, np.generic) else str(o)))
    print("| student | bfloat16 errors | float32 errors | McNemar p per seed | pooled p |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['student']} | {r['bfloat16_errors']} | {r['float32_errors']} | "
              f"{', '.join(f'{p:.2f}' for p in r['mcnemar_p_per_seed'])} | "
              f"{r['pooled_mcnemar']['p_value']:.2f} |")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
