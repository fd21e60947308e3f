"""How fast kdlib trains, measured against this machine's matmul peak and a conventional loop.

One process, one run (``make bench``; ``--quick`` for a short version):

1. matmul throughput (GFLOP/s) of the GEMMs a training step is made of: for each layer
   ``in x out`` of the teacher (784-1200-1200-10) and the student (784-800-800-10) and batch B,
   the forward ``h @ W + b``, the weight gradient ``h^T @ g`` and the input gradient ``g @ W^T``,
   in float32 and (where the hardware has native bfloat16 GEMMs) in bfloat16;
2. kdlib.core.train.train for the teacher recipe (2x1200, dropout .2/.5, max-norm, 2 px jitter), the
   2x800 student and the distilled 2x800 student (T = 20, cached teacher logits) on real MNIST,
   one epoch of a subset after a warm-up, at batch 128 and 512, in each ``--precision``
   (default both: float32, and bfloat16 GEMMs with float32 master weights; the update is not
   compiled, as ``train`` does not compile runs this short; ``compare_commits.py`` times it);
3. the same workloads through a conventional PyTorch loop (torchvision MNIST + ToTensor,
   DataLoader(shuffle=True), nn.Sequential, an optimiser step and ``loss.item()`` per batch;
   the distilled student runs the teacher on every batch, as the usual recipe does);
4. a sweep of K = 8 students (8 temperatures, one seed) of widths 30, 300 and 800, trained one
   after another (K ``train`` calls) and together (one ``train`` call: a stacked model).

Throughput counts 6 x parameters FLOPs per example (forward 2P, backward 4P); the GEMMs a step
really needs are a little fewer (no input gradient for the first layer), so "GEMM share", the
time those GEMMs take alone divided by the step's time, is reported beside the ratio to the peak.
Each precision's rows are compared with the matmul peak of its own GEMM dtype; issue 5's
targets are evaluated on the float32 rows. Timings are noisy on a busy machine: the load
average before the run is recorded and printed.
This is not a test; nothing asserts on time.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout, installed or not

from kdlib.core.data import cache_dir, load_mnist, verify_folder  # noqa: E402
from kdlib.runs.recipes import (DISTILL_TEMPERATURE, HARD_WEIGHT, SOFT_WEIGHT, STUDENT,  # noqa: E402
                           SWEEP_WIDTHS, TEACHER)
from kdlib.core.io import write_json  # noqa: E402
from kdlib.core.models import INPUT_SIZE, parameter_count  # noqa: E402
from kdlib.runs.provenance import provenance  # noqa: E402
from kdlib.core.step import PRECISIONS, compute_dtype  # noqa: E402
from kdlib.core.spec import Member  # noqa: E402
from kdlib.core.train import predict_logits, resolve_device, train  # noqa: E402

BATCH_SIZES = (128, 512)
SWEEP_TEMPERATURES = (1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 10.0, 20.0)  # K = 8 members
#: Examples per timed epoch: (training workloads, sweeps), full and --quick.
SIZES = {"full": (20000, 10000), "quick": (4000, 2000)}


# ----------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seconds_per_call(fn, device, min_time: float) -> float:
    """Best of 3 batches of calls, each batch lasting at least ``min_time / 3``."""
    fn()
    _sync(device)
    calls = 1
    while True:  # calibrate the batch length
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        _sync(device)
        elapsed = time.perf_counter() - t0
        if elapsed >= min_time / 3 or calls >= 1 << 16:
            break
        calls *= 2
    best = elapsed / calls
    for _ in range(2):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        _sync(device)
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


# ----------------------------------------------------------------------------- 1. matmul
def layer_shapes(widths) -> list[tuple[int, int]]:
    sizes = (INPUT_SIZE, *widths, 10)
    return list(zip(sizes, sizes[1:]))


GEMM_KINDS = ("forward", "grad_weight", "grad_input")


def bench_gemms(shapes, batch_sizes, device, min_time, dtype=torch.float32) -> list[dict]:
    """GFLOP/s of each GEMM of a training step, as autograd calls them, in ``dtype``."""
    rows = []
    gen = torch.Generator().manual_seed(0)
    name = str(dtype).removeprefix("torch.")
    for b in batch_sizes:
        for fan_in, fan_out in shapes:
            h = torch.rand(b, fan_in, generator=gen).to(device, dtype)
            w = torch.rand(fan_in, fan_out, generator=gen).to(device, dtype)
            bias = torch.rand(fan_out, generator=gen).to(device, dtype)
            g = torch.rand(b, fan_out, generator=gen).to(device, dtype)
            calls = {"forward": lambda h=h, w=w, bias=bias: torch.addmm(bias, h, w),
                     "grad_weight": lambda h=h, g=g: torch.mm(h.t(), g),
                     "grad_input": lambda g=g, w=w: torch.mm(g, w.t())}
            for kind in GEMM_KINDS:
                s = seconds_per_call(calls[kind], device, min_time)
                rows.append({"dtype": name, "batch": b, "in": fan_in, "out": fan_out,
                             "kind": kind, "seconds": s, "gflops": 2 * b * fan_in * fan_out / s / 1e9})
    return rows


def gemm_step_seconds(rows, widths, batch, dtype="float32") -> float:
    """Time of the GEMMs one training step needs, each run alone (no input gradient for layer 1)."""
    t = {(r["batch"], r["in"], r["out"], r["kind"]): r["seconds"] for r in rows
         if r["dtype"] == dtype}
    total = 0.0
    for i, (a, b) in enumerate(layer_shapes(widths)):
        kinds = GEMM_KINDS if i else GEMM_KINDS[:2]
        total += sum(t[(batch, a, b, k)] for k in kinds)
    return total


# ----------------------------------------------------------------------------- 2. kdlib
def kdlib_epoch(data, spec, members, n, teacher_logits, repeats) -> dict:
    """Best wall time of one epoch of ``train`` on the first ``n`` images, after a warm-up."""
    x, y = data.train_images[:n], data.train_labels[:n]
    tl = teacher_logits[:n] if teacher_logits is not None else None
    spec = replace(spec, epochs=1, warmup_epochs=0)
    warm = min(n, 4 * spec.batch_size)
    train(x[:warm], y[:warm], spec, members, teacher_logits=None if tl is None else tl[:warm],
          progress=False)
    runs = [train(x, y, spec, members, teacher_logits=tl, progress=False) for _ in range(repeats)]
    best = min(r.wall_time for r in runs)
    return {"seconds": best, "examples": n, "examples_per_s": n * len(members) / best,
            "result": runs[-1]}


# ----------------------------------------------------------------------------- 3. conventional
def torchvision_root(tmp: Path) -> Path:
    """A folder torchvision.datasets.MNIST reads: the checked KDLIB_DATA files, or the download."""
    folder = os.environ.get("KDLIB_DATA")
    if not folder:
        return cache_dir() / "download"  # where load_mnist() downloaded MNIST
    raw_dir = tmp / "MNIST" / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    for name, raw in verify_folder(folder).items():
        (raw_dir / name).write_bytes(raw)
    return tmp


def conventional_model(widths, input_dropout=0.0, hidden_dropout=0.0) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Flatten()]
    for i, (a, b) in enumerate(layer_shapes(widths)):
        p = input_dropout if i == 0 else hidden_dropout
        if p:
            layers.append(nn.Dropout(p))
        layers.append(nn.Linear(a, b))
        if i < len(widths):
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def conventional_epoch(root, spec, n, device, seed, teacher=None, temperature=1.0,
                       soft_weight=0.0, hard_weight=1.0) -> dict:
    """One epoch of the loop most PyTorch code has, on the first ``n`` training images."""
    from torch.utils.data import DataLoader, Subset
    from torchvision import datasets, transforms

    steps = [transforms.RandomCrop(28, padding=spec.jitter)] if spec.jitter else []
    dataset = datasets.MNIST(root, train=True, download=False,
                             transform=transforms.Compose([*steps, transforms.ToTensor()]))
    torch.manual_seed(seed)
    loader = DataLoader(Subset(dataset, range(n)), batch_size=spec.batch_size, shuffle=True)
    model = conventional_model(spec.widths, spec.input_dropout, spec.hidden_dropout).to(device)
    linears = [m for m in model if isinstance(m, nn.Linear)]
    opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=len(loader))

    def run(batches):
        model.train()
        total, t0 = 0.0, time.perf_counter()
        for i, (images, labels) in enumerate(loader):
            if i == batches:
                break
            images, labels = images.to(device), labels.to(device)
            out = model(images)
            loss = hard_weight * F.cross_entropy(out, labels)
            if teacher is not None:
                with torch.no_grad():
                    targets = F.softmax(teacher(images) / temperature, dim=1)
                loss = loss + soft_weight * temperature ** 2 * F.kl_div(
                    F.log_softmax(out / temperature, dim=1), targets, reduction="batchmean")
            opt.zero_grad()
            loss.backward()
            opt.step()
            schedule.step()
            if spec.max_norm:
                with torch.no_grad():
                    for lin in linears:  # each unit's incoming weights (rows of weight)
                        lin.weight.copy_(torch.renorm(lin.weight, 2, 0, spec.max_norm))
            total += loss.item()
        return time.perf_counter() - t0

    run(4)  # warm-up
    seconds = run(None)
    return {"seconds": seconds, "examples": n, "examples_per_s": n / seconds,
            "model": model.eval()}


# ----------------------------------------------------------------------------- 4. sweeps
def sweep(data, width, n, teacher_logits, seed) -> dict:
    """K students of one width: K separate ``train`` calls versus one stacked call."""
    spec = replace(STUDENT, widths=(width, width), epochs=1, warmup_epochs=0)
    members = [Member(seed=seed, temperature=t, soft_weight=SOFT_WEIGHT, hard_weight=HARD_WEIGHT)
               for t in SWEEP_TEMPERATURES]
    x, y, tl = data.train_images[:n], data.train_labels[:n], teacher_logits[:n]
    warm = 4 * spec.batch_size
    for group in ([members[0]], members):
        train(x[:warm], y[:warm], spec, group, teacher_logits=tl[:warm], progress=False)
    t0 = time.perf_counter()
    alone = [train(x, y, spec, [m], teacher_logits=tl, progress=False) for m in members]
    sequential = time.perf_counter() - t0
    t0 = time.perf_counter()
    stack = train(x, y, spec, members, teacher_logits=tl, progress=False)
    stacked = time.perf_counter() - t0
    diff = max((p - q).abs().max().item() for k, r in enumerate(alone)
               for p, q in zip(stack.model.member(k).parameters(), r.model.parameters()))
    return {"width": width, "members": len(members), "examples": n,
            "sequential_s": sequential, "stacked_s": stacked, "speedup": sequential / stacked,
            "max_weight_difference_stacked_vs_sequential": diff}


# ----------------------------------------------------------------------------- the run
def workloads(seed):
    """(name, recipe, member); the teacher first: the distilled student needs its logits."""
    distilled = Member(seed=seed, temperature=DISTILL_TEMPERATURE, soft_weight=SOFT_WEIGHT,
                       hard_weight=HARD_WEIGHT)
    return [("teacher", TEACHER, Member(seed=seed)), ("student", STUDENT, Member(seed=seed)),
            ("distilled", STUDENT, distilled)]


def run(args) -> dict:
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    # kdlib.core.train flushes denormals process-wide; set it first so every part runs alike
    torch.set_flush_denormal(True)
    n_train, n_sweep = SIZES["quick" if args.quick else "full"]
    repeats = 1 if args.quick else 2
    min_time = 0.1 if args.quick else 0.3
    sections = {}
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    started = time.perf_counter()
    data = load_mnist(device=device)
    sections["load_s"] = round(time.perf_counter() - started, 1)
    say = print if not args.silent else (lambda *a, **k: None)

    precisions = PRECISIONS if args.precision == "both" else (args.precision,)
    # the GEMM dtype each precision really gets (bfloat16 falls back where not native)
    dtypes = {pr: str(compute_dtype(pr, device)).removeprefix("torch.") for pr in precisions}
    say("matmul ...", flush=True)
    shapes = sorted({s for w in (TEACHER.widths, STUDENT.widths) for s in layer_shapes(w)})
    gemms = []
    for dt in sorted(set(dtypes.values()), reverse=True):  # float32 first
        gemms += bench_gemms(shapes, BATCH_SIZES, device, min_time, getattr(torch, dt))
    hidden = {(784, 1200), (1200, 1200), (784, 800), (800, 800)}
    peak = {(dt, b): max(r["gflops"] for r in gemms if r["batch"] == b and r["dtype"] == dt
                         and (r["in"], r["out"]) in hidden)
            for dt in set(dtypes.values()) for b in BATCH_SIZES}

    sections["matmul_s"] = round(time.perf_counter() - started - sum(sections.values()), 1)
    say("kdlib and conventional loops ...", flush=True)
    training, teacher_logits, conv_teacher = [], None, None
    with tempfile.TemporaryDirectory(prefix="kdlib-bench-") as tmp:
        root = torchvision_root(Path(tmp))
        for batch in BATCH_SIZES:
            for name, spec, member in workloads(args.seed):
                spec = replace(spec, batch_size=batch)
                tl = teacher_logits if member.soft_weight else None
                ks = {}
                for precision in precisions:
                    ks[precision] = kdlib_epoch(data, replace(spec, precision=precision), [member],
                                                n_train, tl, repeats)
                    if name == "teacher" and teacher_logits is None:  # transfer-set logits
                        teacher_logits = predict_logits(ks[precision]["result"].model,
                                                        data.train_images[:n_train])[0]
                conv = conventional_epoch(
                    root, spec, n_train, device, args.seed,
                    teacher=conv_teacher if member.soft_weight else None,
                    temperature=member.temperature, soft_weight=member.soft_weight,
                    hard_weight=member.hard_weight)
                if name == "teacher":
                    conv_teacher = conv["model"]
                params = parameter_count(spec.widths)
                steps = math.ceil(n_train / batch)
                for precision, k in ks.items():
                    dt = k["result"].compute_dtype
                    gflops = 6 * params * k["examples_per_s"] / 1e9
                    gemm_s = gemm_step_seconds(gemms, spec.widths, batch, dt)
                    training.append({
                        "workload": name, "batch": batch, "precision": precision,
                        "compute_dtype": dt, "widths": list(spec.widths),
                        "parameters": params, "examples": n_train,
                        "kdlib_s": k["seconds"], "kdlib_examples_per_s": k["examples_per_s"],
                        "kdlib_gflops_6p": gflops, "kdlib_vs_peak": gflops / peak[dt, batch],
                        "gemm_only_s": gemm_s * steps,
                        "gemm_share": gemm_s * steps / k["seconds"],
                        "conventional_s": conv["seconds"],
                        "conventional_examples_per_s": conv["examples_per_s"],
                        "kdlib_vs_conventional": k["examples_per_s"] / conv["examples_per_s"]})
                    say(f"  {name} B={batch} {precision}: kdlib {k['examples_per_s']:.0f} ex/s, "
                        f"conventional {conv['examples_per_s']:.0f} ex/s", flush=True)

    sections["training_s"] = round(time.perf_counter() - started - sum(sections.values()), 1)
    say("sweeps ...", flush=True)
    sweeps = [sweep(data, w, n_sweep, teacher_logits, args.seed) for w in sorted(SWEEP_WIDTHS)]
    sections["sweeps_s"] = round(time.perf_counter() - started - sum(sections.values()), 1)

    ref = precisions[0]  # issue 5's targets: float32 unless --precision bfloat16
    by = {(r["workload"], r["batch"]): r for r in training if r["precision"] == ref}
    ratios = {
        "teacher_vs_peak_b128": by["teacher", 128]["kdlib_vs_peak"],
        "student_vs_peak_b128": by["student", 128]["kdlib_vs_peak"],
        "teacher_vs_peak_b512": by["teacher", 512]["kdlib_vs_peak"],
        "student_vs_peak_b512": by["student", 512]["kdlib_vs_peak"],
        "min_kdlib_vs_conventional": min(r["kdlib_vs_conventional"] for r in by.values()),
        "stacked_speedup_w30": sweeps[0]["speedup"],
    }
    prov = provenance(device, args.seed)
    prov.update({"torch_threads": torch.get_num_threads(),
                 "torch_interop_threads": torch.get_num_interop_threads(),
                 "host": platform.node(), "cpu_count": os.cpu_count(),
                 "load_average_before": load_before,
                 "load_average_after": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
                 "benchmark_seconds": round(time.perf_counter() - started, 1), **sections,
                 "quick": args.quick, "precisions": list(precisions),
                 "target_precision": ref})
    return {"provenance": prov, "sizes": {"training_examples": n_train, "sweep_examples": n_sweep,
                                          "repeats": repeats},
            "matmul": gemms,
            "matmul_peak_gflops": {f"{dt}/{b}": v for (dt, b), v in peak.items()},
            "training": training, "sweeps": sweeps, "ratios": ratios, "targets": targets(ratios)}


def targets(ratios) -> list[dict]:
    """The issue's goals: near the matmul peak, far ahead of a conventional loop, cheap sweeps."""
    rows = [("teacher B=128: kdlib GFLOP/s / matmul peak", ratios["teacher_vs_peak_b128"], 0.85),
            ("student B=128: kdlib GFLOP/s / matmul peak", ratios["student_vs_peak_b128"], 0.85),
            ("kdlib / conventional examples/s, worst workload",
             ratios["min_kdlib_vs_conventional"], 3.0),
            ("2x30 sweep of 8: sequential / stacked time", ratios["stacked_speedup_w30"], 3.0)]
    return [{"target": name, "value": v, "goal": goal, "met": v >= goal} for name, v, goal in rows]


SHORT = {"float32": "fp32", "bfloat16": "bf16"}


def report(doc) -> str:
    p = doc["provenance"]
    load = p["load_average_before"]
    busy = " (BUSY: other work shared the cores, timings distorted)" if (load or 0) > 0.5 else ""
    dts = sorted({r["dtype"] for r in doc["matmul"]}, reverse=True)  # float32 first
    lines = [f"kdlib benchmark: {p['device_name']}, torch {p['torch_version']}, "
             f"{p['torch_threads']} threads, host {p['host']}{', --quick' if p['quick'] else ''}, "
             f"{p['benchmark_seconds']} s", f"load average before: "
             f"{'unknown' if load is None else f'{load:.2f}'}{busy}", "",
             "matmul GFLOP/s                 " +
             "".join(f"{f'{SHORT[dt]} B={b}':>12s}" for dt in dts for b in BATCH_SIZES)]
    table = {(r["dtype"], r["batch"], r["in"], r["out"], r["kind"]): r["gflops"]
             for r in doc["matmul"]}
    for a, b in sorted({(r["in"], r["out"]) for r in doc["matmul"]}, key=lambda s: (-s[0] * s[1])):
        for kind in GEMM_KINDS:
            lines.append(f"  {a:4d} x {b:<4d} {kind:12s}    " +
                         "".join(f"{table[(dt, bs, a, b, kind)]:12.1f}"
                                 for dt in dts for bs in BATCH_SIZES))
    lines.append("  peak (hidden layers)           " +
                 "".join(f"{doc['matmul_peak_gflops'][f'{dt}/{b}']:12.1f}"
                         for dt in dts for b in BATCH_SIZES))
    lines += ["", f"training, one epoch of {doc['sizes']['training_examples']} MNIST images "
                  "(GFLOP/s counts 6 x parameters per example)",
              f"  {'workload':10s} {'B':>4s} {'precision':9s} {'kdlib ex/s':>11s} {'GFLOP/s':>8s} "
              f"{'/peak':>6s} {'GEMM share':>10s} {'conv. ex/s':>11s} {'kdlib/conv':>10s}"]
    for r in doc["training"]:
        prec = r["precision"] + ("*" if r["compute_dtype"] != r["precision"] else "")
        lines.append(f"  {r['workload']:10s} {r['batch']:4d} {prec:9s} "
                     f"{r['kdlib_examples_per_s']:11.0f} "
                     f"{r['kdlib_gflops_6p']:8.1f} {r['kdlib_vs_peak']:6.2f} "
                     f"{r['gemm_share']:10.2f} {r['conventional_examples_per_s']:11.0f} "
                     f"{r['kdlib_vs_conventional']:10.2f}")
    lines += ["", f"sweeps of {len(SWEEP_TEMPERATURES)} students (temperatures, one seed), "
                  f"one epoch of {doc['sizes']['sweep_examples']} images",
              f"  {'width':>5s} {'sequential s':>12s} {'stacked s':>10s} {'speed-up':>9s} "
              f"{'max |dw|':>9s}"]
    for s in doc["sweeps"]:
        lines.append(f"  {s['width']:5d} {s['sequential_s']:12.2f} {s['stacked_s']:10.2f} "
                     f"{s['speedup']:9.2f} {s['max_weight_difference_stacked_vs_sequential']:9.1e}")
    lines += ["", f"targets (issue 5; {p.get('target_precision', 'float32')} rows)"]
    for t in doc["targets"]:
        lines.append(f"  {'met    ' if t['met'] else 'NOT met'}  {t['value']:6.2f} >= "
                     f"{t['goal']:.2f}  {t['target']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("benchmarks/out/bench.json"),
                   help="JSON file to write (default benchmarks/out/bench.json)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--quick", action="store_true", help="small sizes: a minute, noisier numbers")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", choices=("both", *PRECISIONS), default="both",
                   help="kdlib rows in float32, bfloat16 or both (default both); bfloat16 "
                        "falls back to float32 where the hardware lacks it")
    p.add_argument("--silent", action="store_true", help="print only the final table")
    args = p.parse_args(argv)
    try:
        doc = run(args)
    except (ValueError, OSError) as e:
        print(f"bench: error: {e}", file=sys.stderr)
        return 2
    print(report(doc))
    write_json(args.out, doc)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
