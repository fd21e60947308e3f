"""Command line: ``python -m kdlib EXPERIMENT... --profile smoke|full --device cpu|cuda``;
``python -m kdlib search STAGE|table`` runs one stage of the recipe search or prints every run
of it (``kdlib.runs.search``); ``python -m kdlib report [--readme [PATH]] [--book]`` rewrites
the generated tables (``kdlib.analysis.report``)."""
from __future__ import annotations

import argparse
import sys

from .runs.catalogue import EXPERIMENTS
from .runs.recipes import DEFAULT_SEEDS, PROFILES
from .runs.runner import run_experiment, run_study
from .runs.studies import CONFIGS as STUDIES


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        """Usage errors as one line, like every other kdlib error."""
        self.exit(2, f"kdlib: error: {message} (see python -m kdlib --help)\n")


def _parser(order) -> _Parser:
    p = _Parser(prog="python -m kdlib", description=(
        "Load or train the experiments of Hinton, Vinyals & Dean (2015) on MNIST; each run "
        "writes an artifact under --results-dir and prints its test errors."))
    p.add_argument("experiments", nargs="+", metavar="EXPERIMENT",
                   help=f"one or more of: {', '.join(order)}, or 'all' (or the subcommand "
                        "'search' or 'report': python -m kdlib search --help)")
    p.add_argument("--profile", default="smoke", help=f"{' or '.join(PROFILES)} (default smoke)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--seed", type=int, action="append", dest="seeds", metavar="SEED",
                   help=f"seed (repeatable; default {' '.join(map(str, DEFAULT_SEEDS))})")
    p.add_argument("--results-dir", default="results", help="artifact folder (default results)")
    p.add_argument("--force", action="store_true", help="retrain even if an artifact exists")
    p.add_argument("--validation", action="store_true",
                   help="train on the first 50,000 training images, report on the last 10,000")
    p.add_argument("--data", default=None, help="MNIST IDX folder (default $KDLIB_DATA)")
    p.add_argument("--no-verify-data", action="store_true",
                   help="skip the official SHA-256 check (custom data in MNIST's format)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--allow-dirty", action="store_true",
                   help="train --profile full runs even with uncommitted changes to kdlib/ "
                        "(their provenance records the commit as <sha>+dirty)")
    p.add_argument("--max-grad-norm", type=float, default=None, metavar="C",
                   help="clip each distilled student's gradient to L2 norm C (e.g. 5: a teacher "
                        "with large logits; README 'Your own data')")
    return p


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["report"]:
        from .analysis.report import main as report_main
        return report_main(argv[1:])
    if argv[:1] == ["search"]:
        return search_main(argv[1:])
    order = list(EXPERIMENTS)
    p = _parser(order)
    args = p.parse_args(argv)
    names = args.experiments
    if names == ["all"]:
        names = order
    try:
        return _run(names, order, args)
    except KeyboardInterrupt:
        print("kdlib: interrupted; finished runs and the last checkpoint are kept", file=sys.stderr)
        return 130
    except (ValueError, OSError, RuntimeError) as e:
        print(f"kdlib: error: {' '.join(str(e).split())}", file=sys.stderr)  # always one line
        return 2


def _run(names, order, args) -> int:
    """Load or train each named experiment and print one line per run."""
    for name in names:
        if name not in EXPERIMENTS:
            raise ValueError(f"unknown experiment {name!r}; choose from {', '.join(order)} or all")
    for name in names:
        run = run_study if name in STUDIES else run_experiment
        clip = {} if args.max_grad_norm is None else {"max_grad_norm": args.max_grad_norm}
        if clip and name in STUDIES:
            raise ValueError(f"--max-grad-norm applies to Section 3's experiments, not {name!r}")
        results = run(name, args.profile, args.seeds or DEFAULT_SEEDS, **clip,
                      device=args.device, results_dir=args.results_dir, force=args.force,
                      progress=not args.no_progress, validation=args.validation,
                      data_root=args.data, verify_data=not args.no_verify_data,
                      allow_dirty=args.allow_dirty)
        for r in results:
            how = "loaded" if r.loaded else "trained"
            outcome = (f"{r.status:>17s}" if r.test_errors is None
                       else f"test errors {r.test_errors:5d} / {r.metrics['test_size']}")
            print(f"{name:12s} {r.config['name']:22s} {outcome}  ({how}: {r.path})")
    return 0



def search_main(argv) -> int:
    """``python -m kdlib search STAGE [--profile P] [--shard I/N] [--results-dir D]``, or
    ``python -m kdlib search table``: every run so far and each stage's best (never trains)."""
    from .analysis.search_results import (best_rows, label_recipe, narrow_rates,
                                          search_markdown_rows, search_table)
    from .core.tables import markdown_table
    from .runs.runner import run_search
    from .runs.search import STAGES, shard, stage_configs
    p = _Parser(prog="python -m kdlib search", description="The staged student-recipe search on the "
                "validation split (kdlib.runs.search): run one stage, or print every run so far.")
    p.add_argument("stage", choices=(*map(str, STAGES), "table"))
    p.add_argument("--profile", default="full")
    p.add_argument("--shard", default="0/1", help="I/N: every N-th run from the I-th (one per core)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--device", default="cpu")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.stage == "table":
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
    sys.exit(main())
