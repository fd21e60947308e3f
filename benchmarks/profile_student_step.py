"""Where the distilled 2x800 student step's time goes: torch.profiler over 200 steps.

``.venv/bin/python benchmarks/profile_student_step.py [--precision bfloat16] [--compile]
[--steps 200] [--out FILE]``: one thread, batch 128, T = 20, random uint8 images and teacher
logits of sd 10 (the step's cost does not depend on the values), after a warm-up of four
batches that is not profiled (it also compiles the update when ``--compile``). Prints the ops
by self CPU time and the epoch time it implies (469 steps). Not a test.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from kdlib.core.spec import Member, TrainSpec  # noqa: E402
from kdlib.core.train import train  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--precision", default="bfloat16", choices=("float32", "bfloat16"))
    p.add_argument("--compile", action="store_true")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    g = torch.Generator().manual_seed(0)
    n = 128 * args.steps
    images = (torch.rand(n, 28, 28, generator=g) * 255).to(torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g)
    logits = torch.randn(n, 10, generator=g) * 10
    spec = TrainSpec(widths=(800, 800), epochs=1, batch_size=128, lr=0.01, precision=args.precision)
    member = Member(0, 20.0, 1.0, 0.1)
    kwargs = dict(progress=False, check_collapse=False, compile=args.compile)
    train(images[:512], labels[:512], spec, [member], teacher_logits=logits[:512], **kwargs)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        r = train(images, labels, spec, [member], teacher_logits=logits, **kwargs)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20)
    head = (f"distilled 2x800 student step, {args.precision}, update compiled: {args.compile}; "
            f"{args.steps} steps in {r.wall_time:.2f} s under the profiler "
            f"({r.wall_time / args.steps * 469:.2f} s per 60,000-image epoch)\n")
    print(head + table)
    if args.out:
        args.out.write_text(head + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
