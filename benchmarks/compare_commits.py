"""Epoch time of kdlib's training step now versus an older commit, side by side in one run.

``make bench-compare`` (or ``.venv/bin/python benchmarks/compare_commits.py [--old 653f1ed]
[--device cuda] [--quick]``) times, for each workload

* ``teacher``    the teacher recipe ``kdlib.runs.recipes.TEACHER`` (2x1200, dropout .2/.5,
                 max-norm 3.5, 2 px jitter, batch 128),
* ``student``    the 2x800 student ``STUDENT`` (batch 128),
* ``distilled``  the 2x800 student distilled at T = 20, soft weight 1, hard weight 1, from
                 cached teacher logits (random, sd 7: a trained teacher's scale; the step does
                 not care what they are),

one epoch of the first 20,000 MNIST training images with ``kdlib.core.train.train``, after a
warm-up of four batches, for four variants:

* ``old``        the old commit's kdlib (``git archive`` of its ``kdlib/`` into a temporary
                 folder, first on ``sys.path``),
* ``fp32``       this checkout, ``precision="float32"``, ``compile=False``,
* ``bf16``       this checkout, ``precision="bfloat16"``, ``compile=False``,
* ``bf16-compiled``  this checkout, ``precision="bfloat16"``, ``compile=True`` (the update
                 through torch.compile; compiled during the warm-up, which is not timed;
                 inductor caches under /tmp/torchinductor_$USER, so only the first process
                 pays minutes).

Every (workload, variant) runs in its own fresh subprocess with one torch thread (``--threads``),
the variants alternating within a round (their order rotated each round) and the rounds
repeated (``--rounds``, default 3); the best epoch of each variant is reported. Each round also
measures the matmul peak of the teacher's hidden-layer GEMMs (1200 x 1200 and 784 x 1200 at
batch 128: forward, weight gradient, input gradient) in float32 and bfloat16, reusing
``bench.py``'s ``bench_gemms``. The load average is recorded before and after every subprocess:
on a shared machine only the side-by-side ratios mean anything.

Prints a table and writes JSON atomically (after every round, so an interrupted run keeps what
it measured) to ``benchmarks/results/compare-<host>.json``. Not a test; nothing asserts on time.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {  # name: (code, precision, compile)
    "old": ("old", None, None),
    "fp32": ("new", "float32", False),
    "bf16": ("new", "bfloat16", False),
    "bf16-compiled": ("new", "bfloat16", True),
}
WORKLOADS = ("teacher", "student", "distilled")
GOAL = 3.0  # issue 10: the teacher epoch >= 3x faster than the old commit


def loadavg():
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> list[str]:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                return sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "fma")))
    except OSError:
        pass
    return []


def git(*args, cwd=ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          check=True).stdout.strip()


# ----------------------------------------------------------------------------- workers
def _set_threads(threads: int) -> None:
    import torch
    torch.set_num_threads(threads)
    torch.set_flush_denormal(True)  # kdlib.core.train does this process-wide; before any timing


def worker_matmul(args) -> dict:
    import torch
    _set_threads(args.threads)
    sys.path.insert(0, str(ROOT / "benchmarks"))
    sys.path.insert(0, str(ROOT))
    from bench import bench_gemms  # noqa: E402  (this checkout's kdlib)
    from kdlib.core.train import resolve_device  # noqa: E402
    device = resolve_device(args.device)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        rows += bench_gemms([(784, 1200), (1200, 1200)], [128], device, args.min_time, dtype)
    return {"matmul": rows}


def use_kdlib_of(root: Path) -> None:
    """Import kdlib from ``root`` only: first on ``sys.path``, and without the venv's editable
    install of this checkout, whose finder would serve any kdlib module ``root`` lacks (an old
    flat kdlib would get this checkout's ``kdlib.core``)."""
    sys.path.insert(0, str(root))
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]


def check_origin(root: Path) -> int:
    """Every imported kdlib module comes from ``root``; how many there are."""
    mods = {n: getattr(m, "__file__", None) for n, m in sys.modules.items() if n.split(".")[0] == "kdlib"}
    wrong = {n: f for n, f in mods.items() if not (f and Path(f).resolve().is_relative_to(root))}
    if wrong:
        raise RuntimeError(f"kdlib modules not from {root}: {wrong}")
    return len(mods)


def worker_train(args) -> dict:
    """Every workload of ``args.workloads`` with one variant: {"runs": [one dict per workload]}."""
    code, precision, compile_ = VARIANTS[args.variant]
    root = Path(args.old_root if code == "old" else ROOT).resolve()
    use_kdlib_of(root)
    _set_threads(args.threads)
    import kdlib
    try:  # the layered layout (kdlib/core, kdlib/runs) ...
        from kdlib.core.data import load_mnist
        from kdlib.core.train import resolve_device
    except ImportError:  # ... or the flat one of older commits
        from kdlib.data import load_mnist
        from kdlib.train import resolve_device
    device = resolve_device(args.device)
    data = load_mnist(device=device, verify=False)  # timing only; the main process verified
    runs = [_one_workload(workload, data, device, precision, compile_, args, kdlib)
            for workload in args.workloads.split(",")]
    check_origin(root)  # every kdlib module the workloads imported came from ``root``
    return {"runs": runs}


def _one_workload(workload, data, device, precision, compile_, args, kdlib) -> dict:
    import torch
    from dataclasses import replace
    try:  # the layered layout ...
        from kdlib.core.spec import Member
        from kdlib.core.train import train
        from kdlib.runs.recipes import DISTILL_TEMPERATURE, HARD_WEIGHT, SOFT_WEIGHT, STUDENT, TEACHER
    except ImportError:  # ... or the flat one
        from kdlib.train import Member, train
        try:
            from kdlib.recipes import DISTILL_TEMPERATURE, HARD_WEIGHT, SOFT_WEIGHT, STUDENT, TEACHER
        except ImportError:
            from kdlib.experiments import DISTILL_TEMPERATURE, HARD_WEIGHT, SOFT_WEIGHT, STUDENT, TEACHER
    load_before = loadavg()
    n = args.examples
    x, y = data.train_images[:n], data.train_labels[:n]
    spec = TEACHER if workload == "teacher" else STUDENT
    spec = replace(spec, epochs=1, warmup_epochs=0)
    if precision is not None:
        spec = replace(spec, precision=precision)
    member, tl = Member(seed=0), None
    if workload == "distilled":
        member = Member(seed=0, temperature=DISTILL_TEMPERATURE, soft_weight=SOFT_WEIGHT,
                        hard_weight=HARD_WEIGHT)
        gen = torch.Generator().manual_seed(1)
        tl = (7.0 * torch.randn(n, 10, generator=gen)).to(device)
    kw = {} if compile_ is None else {"compile": compile_}
    warm = min(n, 4 * spec.batch_size)
    t0 = time.perf_counter()
    w = train(x[:warm], y[:warm], spec, [member], progress=False,
              teacher_logits=None if tl is None else tl[:warm], **kw)
    warmup_s = time.perf_counter() - t0
    graphs = None
    if compile_:
        from torch._dynamo.utils import counters
        graphs = sum(counters["stats"].values()) if counters.get("stats") else 0
    r = train(x, y, spec, [member], teacher_logits=tl, progress=False, **kw)
    out = {"workload": workload, "load_before": load_before, "load_after": loadavg(),
           "seconds": r.wall_time, "examples": n, "examples_per_s": n / r.wall_time,
           "warmup_s": warmup_s, "kdlib_file": kdlib.__file__,
           "compute_dtype": getattr(r, "compute_dtype", "float32"),
           "compiled_update": getattr(r, "compiled_update", False),
           "warmup_compiled_update": getattr(w, "compiled_update", False),
           "final_loss": r.history["train_loss"][-1][0], "torch_threads": torch.get_num_threads()}
    if compile_:
        from torch._dynamo.utils import counters
        after = sum(counters["stats"].values()) if counters.get("stats") else 0
        out["dynamo_stats_change_in_timed_epoch"] = after - graphs
        out["dynamo_stats"] = dict(counters.get("stats", {}))
    return out


def spawn(args, extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               TORCHINDUCTOR_COMPILE_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--threads", str(args.threads),
           "--device", args.device, "--examples", str(args.examples),
           "--min-time", str(args.min_time), "--old-root", str(args.old_root), *extra]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode or not lines:
        raise RuntimeError(f"worker {' '.join(extra)} failed (rc {p.returncode}):\n"
                           f"{p.stderr[-3000:]}")
    res = json.loads(lines[-1][len("RESULT "):])
    warnings = [ln for ln in p.stderr.splitlines() if "Warning" in ln]
    res.update({"process_s": time.perf_counter() - t0, "warnings": warnings[:5]})
    return res


# ----------------------------------------------------------------------------- the run
def summarise(doc) -> None:
    best = {}
    for s in doc["samples"]:
        key = (s["workload"], s["variant"])
        if key not in best or s["seconds"] < best[key]["seconds"]:
            best[key] = s
    rows = []
    for w in WORKLOADS:
        old = best.get((w, "old"))
        for v in VARIANTS:
            b = best.get((w, v))
            if b is None:
                continue
            times = sorted(s["seconds"] for s in doc["samples"]
                           if s["workload"] == w and s["variant"] == v)
            rows.append({"workload": w, "variant": v, "best_s": b["seconds"],
                         "all_s": times, "examples_per_s": b["examples_per_s"],
                         "speedup_vs_old": old["seconds"] / b["seconds"] if old else None,
                         "compute_dtype": b["compute_dtype"],
                         "compiled_update": b["compiled_update"]})
    doc["best"] = rows
    peaks = {}
    for m in doc["matmul"]:
        k = (m["dtype"], m["in"], m["out"], m["kind"])
        peaks[k] = max(peaks.get(k, 0.0), m["gflops"])
    doc["matmul_best_gflops"] = [{"dtype": d, "in": a, "out": b, "kind": k, "gflops": g}
                                 for (d, a, b, k), g in sorted(peaks.items())]
    t = {r["variant"]: r["speedup_vs_old"] for r in rows if r["workload"] == "teacher"}
    fastest = max((v for v in t.values() if v), default=None)
    doc["goal"] = {"target": "teacher epoch: old seconds / new seconds (best variant)",
                   "goal": GOAL, "value": fastest,
                   "met": fastest is not None and fastest >= GOAL}


def report(doc) -> str:
    p = doc["provenance"]
    lines = [f"kdlib epoch time, {p['new_commit'][:7]} (this checkout) vs {p['old_commit'][:7]}: "
             f"{p['cpu_model'] if p['device'] == 'cpu' else p['device']}, torch "
             f"{p['torch_version']}, {p['threads']} thread(s), {p['rounds']} rounds, "
             f"{p['examples']} images per epoch",
             f"load average (1/5/15 min) before {p['load_average_before']}, "
             f"after {p.get('load_average_after')}", "",
             f"  {'workload':10s} {'variant':14s} {'best s':>7s} {'ex/s':>7s} {'vs old':>7s}"
             f"  {'all s':s}"]
    for r in doc["best"]:
        sp = f"{r['speedup_vs_old']:6.2f}x" if r["speedup_vs_old"] else "      -"
        lines.append(f"  {r['workload']:10s} {r['variant']:14s} {r['best_s']:7.2f} "
                     f"{r['examples_per_s']:7.0f} {sp}  "
                     + " ".join(f"{s:.2f}" for s in r["all_s"]))
    lines += ["", "matmul GFLOP/s at batch 128 (best of the rounds)",
              f"  {'shape':12s} {'kind':12s} {'float32':>8s} {'bfloat16':>9s}"]
    g = {(m["dtype"], m["in"], m["out"], m["kind"]): m["gflops"]
         for m in doc["matmul_best_gflops"]}
    for a, b in sorted({(m["in"], m["out"]) for m in doc["matmul_best_gflops"]}, reverse=True):
        for kind in ("forward", "grad_weight", "grad_input"):
            lines.append(f"  {f'{a} x {b}':12s} {kind:12s} {g.get(('float32', a, b, kind), 0):8.1f} "
                         f"{g.get(('bfloat16', a, b, kind), 0):9.1f}")
    goal = doc["goal"]
    if goal["value"] is not None:
        lines += ["", f"goal (issue 10): teacher >= {goal['goal']:.0f}x the old commit: "
                      f"{'met' if goal['met'] else 'NOT met'} ({goal['value']:.2f}x)"]
    return "\n".join(lines)


def markdown(doc) -> str:
    """The tables of benchmarks/README.md from a written JSON (``--markdown FILE``)."""
    p = doc["provenance"]
    old = p["old_commit"][:7]
    lines = [f"| workload | variant | GEMMs | update | best epoch s | ex/s | vs {old} | all rounds s |",
             "|---|---|---|---|---|---|---|---|"]
    for r in doc["best"]:
        sp = f"{r['speedup_vs_old']:.2f}x" if r["speedup_vs_old"] else "-"
        update = "compiled" if r["compiled_update"] else "eager"
        lines.append(f"| {r['workload']} | {r['variant']} | {r['compute_dtype']} | {update} | "
                     f"{r['best_s']:.2f} | {r['examples_per_s']:,.0f} | {sp} | "
                     + ", ".join(f"{s:.2f}" for s in r["all_s"]) + " |")
    g = {(m["dtype"], m["in"], m["out"], m["kind"]): m["gflops"]
         for m in doc["matmul_best_gflops"]}
    lines += ["", "| GEMM (batch 128) | kind | float32 GFLOP/s | bfloat16 GFLOP/s | ratio |",
              "|---|---|---|---|---|"]
    for a, b in sorted({(m["in"], m["out"]) for m in doc["matmul_best_gflops"]}, reverse=True):
        for kind in ("forward", "grad_weight", "grad_input"):
            f, h = g.get(("float32", a, b, kind), 0), g.get(("bfloat16", a, b, kind), 0)
            lines.append(f"| {a} x {b} | {kind} | {f:.1f} | {h:.1f} | "
                         f"{h / f if f else float('nan'):.2f} |")
    return "\n".join(lines)


def extract_old(commit: str, dest: Path) -> Path:
    """The old commit's kdlib/ (git archive), without touching the working tree or worktrees."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(["git", "archive", commit, "kdlib"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def run(args) -> dict:
    import torch
    host = platform.node()
    out = args.out or (ROOT / "benchmarks" / "out" / f"compare-{host}-quick.json" if args.quick
                       else ROOT / "benchmarks" / "results" / f"compare-{host}.json")
    from kdlib.core.io import write_json  # noqa: E402  (this checkout)
    old_commit = git("rev-parse", args.old)
    new_commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--", "kdlib"))
    started = time.perf_counter()
    doc = {"provenance": {
        "old_commit": old_commit, "new_commit": new_commit, "new_kdlib_dirty": dirty,
        "torch_version": torch.__version__, "python": platform.python_version(),
        "threads": args.threads, "device": args.device, "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(), "cpu_count": os.cpu_count(), "host": host,
        "rounds": args.rounds, "examples": args.examples,
        "load_average_before": loadavg(), "started_utc": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "samples": [], "matmul": []}
    say = print
    if os.environ.get("KDLIB_DATA"):  # the workers load without re-hashing the files
        from kdlib.core.data import verify_folder
        verify_folder(os.environ["KDLIB_DATA"])
        doc["provenance"]["data"] = f"KDLIB_DATA={os.environ['KDLIB_DATA']} (verified)"
    with tempfile.TemporaryDirectory(prefix="kdlib-old-") as tmp:
        args.old_root = extract_old(old_commit, Path(tmp))
        names = list(VARIANTS)
        for rnd in range(args.rounds):
            say(f"round {rnd + 1}/{args.rounds}: matmul ...", flush=True)
            for m in spawn(args, ["--worker", "matmul"])["matmul"]:
                doc["matmul"].append({**m, "round": rnd})
            for v in names[rnd % len(names):] + names[:rnd % len(names)]:
                res = spawn(args, ["--worker", "train", "--variant", v,
                                   "--workloads", ",".join(WORKLOADS)])
                for s in res["runs"]:
                    s.update({"round": rnd, "variant": v, "process_s": res["process_s"],
                              "warnings": res["warnings"]})
                    doc["samples"].append(s)
                    say(f"  {s['workload']:10s} {v:14s} {s['seconds']:7.2f} s  "
                        f"({s['examples_per_s']:.0f} ex/s; warm-up {s['warmup_s']:.1f} s; "
                        f"load {s['load_before'][0]:.2f})", flush=True)
            doc["provenance"].update({"load_average_after": loadavg(),
                                      "benchmark_seconds": round(time.perf_counter() - started, 1),
                                      "rounds_done": rnd + 1})
            summarise(doc)
            write_json(out, doc)
    doc["out"] = str(out)
    return doc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", default="653f1ed", help="the commit to compare with (default 653f1ed)")
    p.add_argument("--out", type=Path, default=None,
                   help="JSON file (default benchmarks/results/compare-<host>.json)")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--examples", type=int, default=20000, help="images per timed epoch")
    p.add_argument("--min-time", type=float, default=0.3, help="seconds per matmul measurement")
    p.add_argument("--quick", action="store_true", help="1 round of 2,000 images: a smoke check")
    p.add_argument("--worker", choices=("matmul", "train"), help=argparse.SUPPRESS)
    p.add_argument("--variant", choices=list(VARIANTS), help=argparse.SUPPRESS)
    p.add_argument("--workloads", default=",".join(WORKLOADS), help=argparse.SUPPRESS)
    p.add_argument("--old-root", default=None, help=argparse.SUPPRESS)
    p.add_argument("--markdown", type=Path, default=None, metavar="JSON",
                   help="print the README tables of a written JSON and exit")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(args.markdown.read_text())))
        return 0
    if args.worker:
        res = worker_matmul(args) if args.worker == "matmul" else worker_train(args)
        print("RESULT " + json.dumps(res), flush=True)
        return 0
    if args.quick:
        args.rounds, args.examples, args.min_time = 1, 2000, 0.1
    sys.path.insert(0, str(ROOT))
    try:
        doc = run(args)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as e:
        print(f"compare_commits: error: {e}", file=sys.stderr)
        return 2
    print()
    print(report(doc))
    print(f"\nwrote {doc['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
