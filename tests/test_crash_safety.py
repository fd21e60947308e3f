"""Crash safety: atomic writes, resumption after SIGKILL, bit-identical reruns on CPU.

The killed processes are paused at a known point (a marker file tells the test when) and
then killed with SIGKILL, so what is tested never depends on timing. Everything trains on
a few hundred real MNIST images with small networks.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kdlib.runs import experiments as ex
from kdlib.runs import catalogue
from kdlib.runs import recipes as rc
from kdlib.core import io as kio
from kdlib.core.data import MNIST, to_float

REPO = Path(__file__).resolve().parents[1]
N_TRAIN, N_TEST = 600, 300


# ----------------------------------------------------------------------------- atomic writes
WRITERS = {
    "json": (kio.write_json, kio.read_json, {"a": 1}, {"a": 2}),
    "npz": (lambda p, v: kio.write_npz(p, x=v), lambda p: kio.read_npz(p)["x"].tolist(),
            [1, 2], [3, 4]),
    "torch": (kio.write_torch, kio.read_torch, {"w": 1}, {"w": 2}),
}


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize("failing", ["fsync", "replace", "interrupt"])
def test_failing_write_keeps_the_old_file(tmp_path, monkeypatch, kind, failing):
    write, read, old, new = WRITERS[kind]
    path = tmp_path / f"artifact.{kind}"
    write(path, old)
    before = path.read_bytes()

    def fail(*args, **kwargs):
        raise KeyboardInterrupt if failing == "interrupt" else OSError(28, "No space left on device")

    monkeypatch.setattr(kio.os, "replace" if failing == "replace" else "fsync", fail)
    with pytest.raises(KeyboardInterrupt if failing == "interrupt" else OSError):
        write(path, new)
    monkeypatch.undo()
    assert path.read_bytes() == before and read(path) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temp file left


def test_successful_write_replaces_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    kio.write_json(path, {"a": 1})
    kio.write_json(path, {"a": 2})
    assert kio.read_json(path) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]


def test_kdlib_writes_files_only_through_kdlib_io():
    """Every file kdlib writes goes through io.atomic_write_bytes (temp file, fsync, rename)."""
    direct = re.compile(r"\.write_(text|bytes)\(|torch\.save\(|np\.save|savefig\(|"
                        r"open\([^)]*['\"][wax]b?['\"]")
    offenders = [f"{path.name}:{n}: {line.strip()}"
                 for path in sorted((REPO / "kdlib").glob("*.py")) if path.name != "io.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if direct.search(line)]
    assert offenders == []


# ----------------------------------------------------------------------------- real data
@pytest.fixture(scope="module")
def subset(mnist, tmp_path_factory) -> tuple[MNIST, Path]:
    """The first 600 training and 300 test images of MNIST, also saved for child processes."""
    data = MNIST(mnist.train_images[:N_TRAIN].clone(), mnist.train_labels[:N_TRAIN].clone(),
                 mnist.test_images[:N_TEST].clone(), mnist.test_labels[:N_TEST].clone(), "subset")
    projection = torch.randn(784, 10, generator=torch.Generator().manual_seed(0))
    path = tmp_path_factory.mktemp("subset") / "subset.pt"
    torch.save({"x": data.train_images, "y": data.train_labels, "tx": data.test_images,
                "ty": data.test_labels, "teacher_logits": to_float(data.train_images) @ projection},
               path)
    return data, path


# A run of kdlib.core.train.train with every source of randomness: two seeds (own data orders),
# dropout, max-norm, jitter, a distilled member with teacher logits, a checkpoint per epoch.
# With a pause marker it stops half-way through epoch 3 (after the epoch-2 checkpoint),
# writes the marker and sleeps until it is killed.
TRAIN_CHILD = r"""
import sys, time
from pathlib import Path
import torch
import kdlib.core.step as ks
import kdlib.core.spec as kspec
import kdlib.core.train as kt
data_path, ckpt, out, marker = sys.argv[1:5]
d = torch.load(data_path)
spec = kspec.TrainSpec(widths=(48, 24), epochs=4, batch_size=100, lr=0.1, momentum=0.9,
                    input_dropout=0.2, hidden_dropout=0.5, max_norm=3.5, jitter=2,
                    checkpoint_every=1)
members = [kspec.Member(seed=0), kspec.Member(seed=1, temperature=4.0, soft_weight=1.0, hard_weight=0.1)]
if marker != "-":
    steps, calls, real_loss = -(-len(d["x"]) // spec.batch_size), [0], ks.distillation_loss_and_grad
    def pausing_loss(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 2 * steps + steps // 2:
            Path(marker).write_text("paused")
            time.sleep(600)
        return real_loss(*args, **kwargs)
    ks.distillation_loss_and_grad = pausing_loss
res = kt.train(d["x"], d["y"], spec, members, teacher_logits=d["teacher_logits"],
               eval_images=d["tx"], eval_labels=d["ty"], checkpoint_path=ckpt, progress=False)
torch.save({"model": res.model.state_dict(), "history": res.history,
            "resumed_from_epoch": res.resumed_from_epoch}, out)
"""

# A smoke-profile temperature sweep (teacher seed 0, widths 300 and 30, three
# temperatures) through kdlib.runs.experiments, shrunk to 600 images and 2 epochs. With
# pause_after > 0 it stops after that many artifacts were saved, writes the marker and sleeps
# until it is killed.
SWEEP_CHILD = r"""
import json, sys, time
from dataclasses import replace
from pathlib import Path
import torch
import kdlib.runs.experiments as ex
import kdlib.runs.catalogue as catalogue
import kdlib.runs.recipes as rc
data_path, results, out, marker, pause_after = sys.argv[1:6]
rc.PAPER_TEACHER = replace(rc.PAPER_TEACHER, widths=(32,))
rc.PROFILES["smoke"] = replace(rc.PROFILES["smoke"], train_size=600, epochs=2)
d = torch.load(data_path)
data = ex.MNIST(d["x"], d["y"], d["tx"], d["ty"], "subset")
if int(pause_after):
    saved, real_save = [], ex._save_artifact
    def pausing_save(*args, **kwargs):
        res = real_save(*args, **kwargs)
        saved.append(res.path.name)
        if len(saved) == int(pause_after):
            Path(marker).write_text(json.dumps(saved))
            time.sleep(600)
        return res
    ex._save_artifact = pausing_save
configs = catalogue.configs_for("temperature", "smoke", [0])
runs = ex.run_configs(configs, results_dir=results, data=data, progress=False,
                      log=lambda message: None)
Path(out).write_text(json.dumps([{"name": r.config["name"], "loaded": r.loaded,
                                  "path": str(r.path)} for r in runs]))
"""


def child(code: str, *args) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err


def kill_when_paused(proc: subprocess.Popen, marker: Path) -> str:
    """Wait for the child's pause marker, then SIGKILL it; return the marker's text."""
    try:
        deadline = time.monotonic() + 600
        while not marker.exists():
            assert proc.poll() is None, f"child ended before pausing: {proc.communicate()[1]}"
            assert time.monotonic() < deadline, "child never paused"
            time.sleep(0.05)
        text = marker.read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        return text
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_training_killed_mid_epoch_resumes_to_the_same_result(subset, tmp_path):
    _, data_path = subset
    straight = child(TRAIN_CHILD, data_path, tmp_path / "straight.pt", tmp_path / "straight.out", "-")
    ckpt, marker = tmp_path / "killed.pt", tmp_path / "paused"
    killed = child(TRAIN_CHILD, data_path, ckpt, tmp_path / "never-written.out", marker)
    kill_when_paused(killed, marker)
    assert kio.read_torch(ckpt)["epoch"] == 2
    assert not (tmp_path / "never-written.out").exists()
    finish(child(TRAIN_CHILD, data_path, ckpt, tmp_path / "resumed.out", "-"))
    finish(straight)

    a, b = torch.load(tmp_path / "straight.out"), torch.load(tmp_path / "resumed.out")
    assert a["resumed_from_epoch"] == 0 and b["resumed_from_epoch"] == 2
    assert a["model"].keys() == b["model"].keys()
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert a["history"] == b["history"]
    assert len(a["history"]["train_loss"]) == 4 and len(a["history"]["test_errors"][0]) == 2


def artifact_files(results: Path) -> dict[str, int]:
    """Every artifact file under ``results`` (not checkpoints) and its mtime in ns."""
    return {str(p.relative_to(results)): p.stat().st_mtime_ns for p in results.rglob("*")
            if p.is_file() and "checkpoints" not in p.parts}


def test_sweep_killed_between_students_keeps_the_finished_ones(subset, tmp_path):
    _, data_path = subset
    straight = child(SWEEP_CHILD, data_path, tmp_path / "a", tmp_path / "a.json", "-", 0)
    results, marker = tmp_path / "b", tmp_path / "paused"
    # teacher-s0, then the three 2x300 students (one stack), then killed before the 2x30 ones
    killed = child(SWEEP_CHILD, data_path, results, tmp_path / "never.json", marker, 4)
    saved = json.loads(kill_when_paused(killed, marker))
    assert saved == ["paper-teacher-s0.json", "w300-T1-s0.json", "w300-T4-s0.json", "w300-T20-s0.json"]
    before = artifact_files(results)
    assert sorted(Path(p).name for p in before) == sorted(
        [f"{n}.{s}" for n in ("paper-teacher-s0", "w300-T1-s0", "w300-T4-s0", "w300-T20-s0")
         for s in ("json", "npz")] + ["paper-teacher-s0.pt"])

    finish(child(SWEEP_CHILD, data_path, results, tmp_path / "b.json", "-", 0))
    finish(straight)
    resumed = json.loads((tmp_path / "b.json").read_text())
    assert [(r["name"], r["loaded"]) for r in resumed] == [
        ("w300-T1-s0", True), ("w300-T4-s0", True), ("w300-T20-s0", True),
        ("w30-T1-s0", False), ("w30-T4-s0", False), ("w30-T20-s0", False)]
    after = artifact_files(results)
    assert {p: after[p] for p in before} == before  # finished runs were not written again
    assert len(after) == len(before) + 6
    assert_same_artifacts(tmp_path / "a", results, expect=15)


def assert_same_artifacts(a: Path, b: Path, expect: int) -> None:
    """Bit-identical logits, weights and metrics; only timings and timestamps may differ."""
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()
                   and "checkpoints" not in p.parts)
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file()
                           and "checkpoints" not in p.parts)
    assert len(files) == expect
    for rel in files:
        if rel.suffix == ".npz":
            x, y = kio.read_npz(a / rel), kio.read_npz(b / rel)
            assert x.keys() == y.keys()
            for k in x:
                assert x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]), rel
        elif rel.suffix == ".pt":
            x, y = kio.read_torch(a / rel), kio.read_torch(b / rel)
            assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x), rel
        else:
            x, y = kio.read_json(a / rel), kio.read_json(b / rel)
            for doc in (x, y):
                del doc["metrics"]["wall_time_s"], doc["provenance"]["finished_utc"]
            assert x == y, rel


@pytest.fixture
def tiny_smoke(monkeypatch):
    """The smoke profile shrunk further: a 1-layer teacher, N_TRAIN images, 2 epochs."""
    monkeypatch.setattr(rc, "PAPER_TEACHER", replace(rc.PAPER_TEACHER, widths=(32,)))
    monkeypatch.setitem(rc.PROFILES, "smoke", replace(rc.PROFILES["smoke"], train_size=N_TRAIN,
                                                      epochs=2))


def test_finished_members_of_a_stack_are_not_retrained(subset, tmp_path, tiny_smoke):
    data, _ = subset
    configs = [c for c in catalogue.configs_for("temperature", "smoke", [0]) if c.spec.widths == (30, 30)]
    first = ex.run_configs(configs, results_dir=tmp_path, data=data, progress=False,
                           log=lambda message: None)
    first[1].path.unlink()  # T=4 lost its JSON, the mark of a complete artifact
    mtimes = {r.path: r.path.stat().st_mtime_ns for r in (first[0], first[2])}
    again = ex.run_configs(configs, results_dir=tmp_path, data=data, progress=False,
                           log=lambda message: None)
    assert [r.loaded for r in again] == [True, False, True]
    assert {r.path: r.path.stat().st_mtime_ns for r in (again[0], again[2])} == mtimes
    assert again[1].metrics["stacked_with"] == 1 and first[1].metrics["stacked_with"] == 3
    # alone instead of in a stack of three: the same run up to float rounding
    assert np.allclose(again[1].logits(), first[1].logits(), rtol=0, atol=1e-4)


def test_reruns_with_the_same_seed_are_bit_identical(subset, tmp_path, tiny_smoke):
    data, _ = subset
    configs = [c for c in catalogue.configs_for("temperature", "smoke", [0]) if c.spec.widths == (30, 30)]
    configs += catalogue.configs_for("hard_weight", "smoke", [0])
    configs = [replace(c, spec=replace(c.spec, widths=(40, 40))) if c.experiment == "hard_weight"
               else c for c in configs]
    for results in (tmp_path / "a", tmp_path / "b"):
        runs = ex.run_configs(configs, results_dir=results, data=data, progress=False,
                              log=lambda message: None)
        assert not any(r.loaded for r in runs)
    # teacher .json/.npz/.pt, three temperatures and two hard weights (.json/.npz each)
    assert_same_artifacts(tmp_path / "a", tmp_path / "b", expect=13)


def test_a_student_trains_its_paper_teacher_first_and_is_stored_under_its_recipe(
        subset, tmp_path, tiny_smoke):
    """A distilled student whose teacher has no artifact makes it first (the paper-recipe
    teacher of its seed), distils from it, and is stored in the student recipe's folder;
    loading it again finds the same artifact."""
    data, _ = subset
    quiet = dict(results_dir=tmp_path, data=data, progress=False, log=lambda message: None)
    cfg = catalogue.configs_for("distilled", "smoke", [0])[0]
    student = ex.run_configs([cfg], **quiet)[0]
    assert student.path == tmp_path / "smoke" / "protocol-3" / "distilled" / "distilled-T20-s0.json"
    assert (tmp_path / "smoke" / "paper_teacher" / "paper-teacher-s0.json").exists()
    assert "protocol" not in student.config and student.config["spec"]["max_grad_norm"] is None
    assert student.config["teacher_seed"] == 0
    assert ex.load_artifact(cfg, tmp_path).path == student.path
