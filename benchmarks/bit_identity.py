"""Bit identity of training between two commits: proof that a refactoring changed no result.

``.venv/bin/python benchmarks/bit_identity.py --old 3edca60 [--new WORKTREE_OR_COMMIT]
[--examples 10000] [--epochs 2] --out /tmp/bit-identity-<old>-<new>.json``

trains the same small runs with the OLD commit's kdlib (``git archive`` into a temporary folder,
``compare_commits.extract_old``) and with the NEW one (default: this checkout's working tree; or a
worktree folder, or a commit, extracted like the old one), each side in a fresh subprocess with
one thread, flushed denormals and ``torch.use_deterministic_algorithms``, and compares SHA-256
digests of the trained weights (every state tensor's bytes, in state-dict order) and of the
test logits (the 10,000 test images). The workloads, on MNIST's first ``--examples`` training
images, use only kdlib's stable low-level API (``load_mnist``, ``TrainSpec``, ``Member``, ``train``,
``predict_logits``; the layered import path first, then the flat one of before issue 24):

* ``teacher``      PAPER_TEACHER's recipe (2x1200, dropout .2/.5, max-norm, jitter 2, bfloat16),
* ``student``      a label-only 2x800 student (bfloat16, no regularisation),
* ``distilled``    the same student distilled from ``teacher`` at T = 20, hard weight 10,
* ``clipped``      ``distilled`` with each member's gradient clipped (``max_grad_norm``),
* ``stack``        ``student`` with seeds 0 and 1 trained as one stacked model.

A workload either version cannot express is skipped, with its reason. ``sanity`` shows that the
digests can see a change (``clipped`` vs ``distilled`` differ). Identical digests prove that the
NEW code computes bit for bit what the OLD did, on this machine and torch; a difference in
``teacher`` propagates to ``distilled`` and ``clipped``. Exit status 1 if any workload differs,
2 if a side fails. Known: every commit before f2a27bc differs from every later one in all but
``teacher`` (the loss gradient written out instead of autograd: rounding), so compare a
refactoring with f2a27bc or later. ``make bit-identity [BASE=a220927]`` runs it against BASE.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare_commits import ROOT, _set_threads, check_origin, extract_old, git, use_kdlib_of

WORKLOADS = ("teacher", "student", "distilled", "clipped", "stack")
CLIP = 1.0  # max_grad_norm of ``clipped``


# ----------------------------------------------------------------------------- the worker
def _kdlib():
    """The stable API, from the layered layout (issue 24) or the flat one before it."""
    try:
        from kdlib.core import train as train_mod
        from kdlib.core.data import load_mnist
    except ImportError:
        from kdlib import train as train_mod
        from kdlib.data import load_mnist
    Member, TrainSpec = train_mod.Member, train_mod.TrainSpec  # kdlib.spec's, or train's own (early)
    import importlib
    for name in ("kdlib.runs.recipes", "kdlib.recipes", None):
        try:
            PAPER_TEACHER = importlib.import_module(name).PAPER_TEACHER if name else None
            break
        except (ImportError, AttributeError):
            continue
    return train_mod, load_mnist, Member, TrainSpec, PAPER_TEACHER


def digest(tensors) -> str:
    import torch
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def worker(root: Path, examples: int, epochs: int) -> dict:
    import dataclasses
    import inspect

    use_kdlib_of(root)
    import torch
    _set_threads(1)
    torch.set_num_interop_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(0)
    train_mod, load_mnist, Member, TrainSpec, PAPER_TEACHER = _kdlib()
    check_origin(root)
    train, predict_logits = train_mod.train, train_mod.predict_logits
    data = load_mnist(device="cpu")
    x, y = data.train_images[:examples], data.train_labels[:examples]
    params, fields = inspect.signature(train).parameters, {f.name for f in dataclasses.fields(TrainSpec)}
    teacher_spec = PAPER_TEACHER or TrainSpec(
        widths=(1200, 1200), batch_size=100, lr=1.0, momentum=0.5, momentum_final=0.99,
        momentum_epochs=500, schedule="hinton2012", lr_decay=0.998, init_std=0.01,
        input_dropout=0.2, hidden_dropout=0.5, max_norm=15 ** 0.5, max_norm_output=False,
        jitter=2, precision="bfloat16")
    teacher_spec = dataclasses.replace(teacher_spec, epochs=epochs, checkpoint_every=epochs)
    student = TrainSpec(widths=(800, 800), epochs=epochs, batch_size=128, lr=0.03, momentum=0.9,
                        precision="bfloat16", checkpoint_every=epochs)
    distilled = [Member(seed=0, temperature=20.0, soft_weight=1.0, hard_weight=10.0)]
    plan = {"teacher": (teacher_spec, [Member(seed=0)]), "student": (student, [Member(seed=0)]),
            "distilled": (student, distilled), "stack": (student, [Member(seed=0), Member(seed=1)])}
    skipped = {}
    if "teacher_logits" not in params:
        skipped["distilled"] = skipped["clipped"] = "train() takes no teacher_logits"
    if "max_grad_norm" not in fields:
        skipped["clipped"] = "TrainSpec has no max_grad_norm"
    else:
        plan["clipped"] = (dataclasses.replace(student, max_grad_norm=CLIP), distilled)
    runs, teacher_logits = {name: {"skipped": why} for name, why in skipped.items()}, None
    for name in (w for w in WORKLOADS if w not in skipped):
        spec, members = plan[name]
        kw = {"teacher_logits": teacher_logits} if members[0].soft_weight > 0 else {}
        if "check_collapse" in params:  # small runs: no collapse check (it would not change them)
            kw["check_collapse"] = False
        t0 = time.perf_counter()
        r = train(x, y, spec, members, progress=False, compile=False, **kw)
        state = r.model.state_dict()
        logits = predict_logits(r.model, data.test_images)  # (K, N, C)
        if name == "teacher":
            teacher_logits = predict_logits(r.model, x)  # cached once, un-jittered
            teacher_logits = teacher_logits[0] if teacher_logits.dim() == 3 else teacher_logits
        runs[name] = {
            "weights_sha256": digest(state.values()), "test_logits_sha256": digest([logits]),
            "state": [f"{k} {tuple(v.shape)} {str(v.dtype)[6:]}" for k, v in state.items()],
            "test_errors": (logits.argmax(-1) != data.test_labels).sum(-1).tolist(),
            "final_loss": r.history["train_loss"][-1], "clipped_share": r.history.get("clipped_share"),
            "spec": {k: str(v) for k, v in dataclasses.asdict(spec).items()},
            "members": [str(m) for m in members], "seconds": round(time.perf_counter() - t0, 1)}
    return {"kdlib_modules": check_origin(root), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "runs": runs}


def spawn(root: Path, args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", str(root),
           "--examples", str(args.examples), "--epochs", str(args.epochs)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    if p.returncode or not lines:
        raise RuntimeError(f"worker for {root} failed (rc {p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


# ----------------------------------------------------------------------------- the comparison
def compare(old: dict, new: dict) -> dict:
    out = {}
    for name in WORKLOADS:
        o, n = old["runs"][name], new["runs"][name]
        if "skipped" in o or "skipped" in n:
            reason = "; ".join(f"{side}: {r['skipped']}" for side, r in (("old", o), ("new", n))
                               if "skipped" in r)
            print(f"  {name:10s} skipped ({reason})")
            out[name] = {"skipped": reason}
            continue
        same = all(o[k] == n[k] for k in ("weights_sha256", "test_logits_sha256"))
        out[name] = {"identical": same, "old": o, "new": n, "same_spec": o["spec"] == n["spec"],
                     "same_state_layout": o["state"] == n["state"]}
        print(f"  {name:10s} {'identical' if same else 'DIFFERENT'}  " + "  ".join(
            f"{k[:-7]} {o[k][:12]} / {n[k][:12]}" for k in ("weights_sha256", "test_logits_sha256"))
            + f"  test errors {o['test_errors']} / {n['test_errors']}")
    return out


def sanity(new: dict) -> dict:
    """The digests see a change: two workloads that differ in one setting differ in digest."""
    pair = ("distilled", "clipped") if "skipped" not in new["runs"]["clipped"] else ("student", "stack")
    digests = [new["runs"][w].get("weights_sha256") for w in pair]
    return {"compared": pair, "weights_sha256": digests, "ok": None not in digests and len(set(digests)) == 2,
            "clipped_share": new["runs"][pair[1]].get("clipped_share")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--old", help="the commit before the refactoring (e.g. 3edca60)")
    p.add_argument("--new", default=None,
                   help="a worktree folder or a commit (default: this checkout's working tree)")
    p.add_argument("--examples", type=int, default=10000, help="first N training images (10000)")
    p.add_argument("--epochs", type=int, default=2, help="epochs of every workload (2)")
    p.add_argument("--out", type=Path, default=None, help="JSON file")
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(worker(args.worker.resolve(), args.examples, args.epochs)),
              flush=True)
        return 0
    if not args.old:
        p.error("--old is required")

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kdlib-bit-") as tmp:
        old_root = extract_old(git("rev-parse", args.old), Path(tmp) / "old")
        new = Path(args.new or ROOT)
        if new.is_dir():
            new_root, new_name = new.resolve(), git("describe", "--always", "--dirty", cwd=new)
        else:
            new_root = extract_old(git("rev-parse", args.new), Path(tmp) / "new")
            new_name = git("describe", "--always", args.new)
        old_name = git("describe", "--always", args.old)
        print(f"bit identity of training: {old_name} (old) vs {new_name} (new), "
              f"{args.examples} images, {args.epochs} epoch(s), 1 thread", flush=True)
        try:
            old_res, new_res = spawn(old_root, args), spawn(new_root, args)
        except RuntimeError as e:
            print(f"bit_identity: error: {e}", file=sys.stderr)
            return 2
    workloads = compare(old_res, new_res)
    compared = [w for w in workloads.values() if "skipped" not in w]
    doc = {"old": {"commit": git("rev-parse", args.old), "describe": old_name},
           "new": {"describe": new_name, "root": str(new_root) if new.is_dir() else args.new},
           "examples": args.examples, "epochs": args.epochs, "torch": new_res["torch"],
           "threads": [old_res["threads"], new_res["threads"]],
           "kdlib_modules_checked": [old_res["kdlib_modules"], new_res["kdlib_modules"]],
           "all_identical": all(w["identical"] for w in compared), "workloads": workloads,
           "sanity": sanity(new_res), "seconds": round(time.perf_counter() - t0, 1)}
    print(f"sanity (digests see a change): {doc['sanity']['ok']}; "
          f"{'every compared workload identical' if doc['all_identical'] else 'NOT identical'} "
          f"({doc['seconds']} s)")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {args.out}")
    return 0 if doc["all_identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
