"""Where the teacher step's time goes: torch.profiler over ~50 steps of ``kdlib.core.train.train``.

``.venv/bin/python benchmarks/profile_step.py [--precision bfloat16] [--compile] [--steps 50]
[--threads 1] [--out FILE]``: the teacher recipe (``kdlib.runs.recipes.TEACHER``), one epoch of
``steps x 128`` MNIST images, after a warm-up of four batches that is not profiled (it also
compiles the update when ``--compile``). Prints the ops by self CPU time and, with ``--out``,
writes that table to a text file. Not a test.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from kdlib.core.data import load_mnist  # noqa: E402
from kdlib.runs.recipes import TEACHER  # noqa: E402
from kdlib.core.step import PRECISIONS  # noqa: E402
from kdlib.core.spec import Member  # noqa: E402
from kdlib.core.train import train  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--precision", choices=PRECISIONS, default="bfloat16")
    p.add_argument("--compile", action="store_true", help="the update through torch.compile")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rows", type=int, default=25)
    p.add_argument("--out", type=Path, default=None, help="write the table here too")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    spec = replace(TEACHER, epochs=1, warmup_epochs=0, precision=args.precision)
    n = args.steps * spec.batch_size
    data = load_mnist(verify=False)
    x, y = data.train_images[:n], data.train_labels[:n]
    warm = 4 * spec.batch_size
    t0 = time.perf_counter()
    w = train(x[:warm], y[:warm], spec, [Member()], progress=False, compile=args.compile)
    warmup_s = time.perf_counter() - t0
    load = os.getloadavg()
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        r = train(x, y, spec, [Member()], progress=False, compile=args.compile)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows)
    head = (f"teacher step profile: {args.steps} steps of batch {spec.batch_size}, precision "
            f"{args.precision} (GEMMs in {r.compute_dtype}), update compiled: "
            f"{r.compiled_update} (warm-up {warmup_s:.1f} s, compiled {w.compiled_update}), "
            f"{torch.get_num_threads()} thread(s), torch {torch.__version__}\n"
            f"epoch wall time under the profiler {r.wall_time:.2f} s "
            f"({n / r.wall_time:.0f} ex/s); load average before {load}, after "
            f"{os.getloadavg()}\n")
    print(head)
    print(table)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(head + "\n" + table + "\n")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
