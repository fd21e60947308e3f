"""The student epoch in float32 and bfloat16, side by side in one process (issue: the student
step at this CPU's floor).

``.venv/bin/python benchmarks/student_epoch.py [--threads 1] [--images 60000] [--out FILE]``

Workloads, each one epoch of ``kdlib.core.train.train`` over the first ``--images`` MNIST training
images at batch 128 (no evaluation, no checkpoints): the distilled 2x800 student (T = 20,
cached teacher logits), the hard-label 2x800 student, and the temperature sweeps of 2x300 and
2x30 students (9 temperatures as one stacked model). Each in float32 and in bfloat16, with the
update eager and compiled (``torch.compile``; its compile time is measured apart, in a warm-up
run, and not counted in the epoch). The floor of a step is the time of its GEMMs alone (each
run alone at the step's shapes) plus the time of the compiled update alone; the report gives
each epoch's share of that floor. The teacher logits are those of the committed paper-recipe
teacher of seed 0 when present, else random logits of the same spread (sd 10.6).
Not a test: it prints a table and writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from kdlib.core.data import load_mnist  # noqa: E402
from kdlib.core.models import MLP  # noqa: E402
from kdlib.runs.provenance import provenance  # noqa: E402
from kdlib.core.spec import Member, TrainSpec  # noqa: E402
from kdlib.core.step import Step, sgd_max_norm_update  # noqa: E402
from kdlib.core.train import predict_logits, train  # noqa: E402

TEMPERATURES = (1.0, 2.0, 2.5, 3.0, 4.0, 5.0, 8.0, 10.0, 20.0)
TEACHER = Path(__file__).resolve().parents[1] / "results/full/paper_teacher/paper-teacher-s0.pt"


def workloads():
    """(name, widths, members): what a student epoch of the replication trains."""
    distilled = Member(seed=0, temperature=20.0, soft_weight=1.0, hard_weight=0.1)
    sweep = [Member(seed=0, temperature=t, soft_weight=1.0, hard_weight=0.1) for t in TEMPERATURES]
    return [("distilled 2x800", (800, 800), [distilled]),
            ("hard-label 2x800", (800, 800), [Member(seed=0)]),
            ("sweep 2x300 (9 T)", (300, 300), sweep),
            ("sweep 2x30 (9 T)", (30, 30), sweep)]


def teacher_logits(images):
    if TEACHER.exists():
        teacher = MLP((1200, 1200), seeds=[0])
        teacher.load_state_dict(torch.load(TEACHER, weights_only=True))
        return predict_logits(teacher, images)[0], "paper-teacher-s0"
    g = torch.Generator().manual_seed(0)
    return torch.randn(len(images), 10, generator=g) * 10.6, "random (sd 10.6)"


def epoch_seconds(x, y, spec, members, logits, compile) -> tuple[float, float]:
    """(seconds of one timed epoch, seconds of the warm-up run that compiles)."""
    needs = any(m.soft_weight for m in members)
    t0 = time.perf_counter()
    warm = 4 * spec.batch_size
    train(x[:warm], y[:warm], spec, members, teacher_logits=logits[:warm] if needs else None,
          progress=False, compile=compile, check_collapse=False)
    warmup = time.perf_counter() - t0
    r = train(x, y, spec, members, teacher_logits=logits if needs else None, progress=False,
              compile=compile, check_collapse=False)
    return r.wall_time, warmup


def _best(fn, repeats=20):
    fn()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn()
        best = min(best, (time.perf_counter() - t0) / repeats)
    return best


def floor_seconds(widths, k, batch, precision, steps) -> dict:
    """An epoch's floor: its GEMMs alone, and its compiled update alone (seconds per epoch)."""
    dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
    sizes = (784, *widths, 10)
    g = torch.Generator().manual_seed(0)
    calls = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        h = torch.rand(k, batch, a, generator=g).to(dtype)
        w = torch.rand(k, a, b, generator=g).to(dtype)
        d = torch.rand(k, batch, b, generator=g).to(dtype)
        calls += [lambda h=h, w=w: torch.bmm(h, w), lambda h=h, d=d: torch.bmm(h.transpose(1, 2), d)]
        if i:
            calls.append(lambda d=d, w=w: torch.bmm(d, w.transpose(1, 2)))
    gemm = sum(_best(c) for c in calls)
    model = MLP(widths, num_models=k, seeds=range(k))
    step = Step(model, precision)
    grads = [torch.rand_like(p).to(dtype if p.dim() == 3 and p.shape[1] > 1 else torch.float32)
             for p in step.params]
    params, *state = step._update_state(torch.device("cpu"))
    compiled_update = torch.compile(sgd_max_norm_update, dynamic=False)
    update = _best(lambda: compiled_update(params, grads, *state))
    return {"gemm_s": gemm * steps, "update_s": update * steps, "floor_s": (gemm + update) * steps}


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    data = load_mnist()
    x, y = data.train_images[:args.images], data.train_labels[:args.images]
    logits, source = teacher_logits(x)
    steps = -(-len(x) // 128)
    rows = []
    for name, widths, members in workloads():
        for precision in ("float32", "bfloat16"):
            spec = TrainSpec(widths=widths, epochs=1, batch_size=128, lr=1e-3, precision=precision)
            floor = floor_seconds(widths, len(members), 128, precision, steps)
            for compiled in (False, True):
                seconds, warmup = epoch_seconds(x, y, spec, members, logits, compiled)
                rows.append({"workload": name, "precision": precision, "compiled": compiled,
                             "epoch_s": round(seconds, 3), "warmup_s": round(warmup, 2),
                             **{k: round(v, 3) for k, v in floor.items()},
                             "share_of_floor": round(floor["floor_s"] / seconds, 3)})
                print(f"{name:18s} {precision:8s} compiled={compiled!s:5s} epoch {seconds:6.2f} s "
                      f"(floor {floor['floor_s']:.2f} s: GEMMs {floor['gemm_s']:.2f} + update "
                      f"{floor['update_s']:.2f}; warm-up {warmup:.1f} s)", flush=True)
    ratios = []
    for name, *_ in workloads():
        t = {(r["precision"], r["compiled"]): r["epoch_s"] for r in rows if r["workload"] == name}
        fast = t["bfloat16", True]
        ratios.append({"workload": name,
                       "float32_eager_over_bfloat16_compiled": round(t["float32", False] / fast, 2),
                       "float32_compiled_over_bfloat16_compiled": round(t["float32", True] / fast, 2)})
    return {"threads": args.threads, "images": len(x), "teacher_logits": source, "rows": rows,
            "ratios": ratios, "load_average": os.getloadavg(),
            "provenance": provenance(torch.device("cpu"), 0)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--images", type=int, default=60000)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    doc = run(args)
    print("\n| workload | float32 eager / bfloat16 compiled | float32 compiled / bfloat16 compiled |")
    print("|---|---|---|")
    for r in doc["ratios"]:
        print(f"| {r['workload']} | {r['float32_eager_over_bfloat16_compiled']} | "
              f"{r['float32_compiled_over_bfloat16_compiled']} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1))
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
