"""One run at a time per configuration (a lock file per group), and full runs refuse a dirty tree."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import kdlib.runs.experiments as ex
import kdlib.runs.provenance as prov
import kdlib.runs.catalogue as catalogue
import kdlib.runs.recipes as rc

REPO = Path(__file__).resolve().parents[1]

# A tiny student run through kdlib.runs.experiments.run_configs on random images. The training of
# its group writes a marker (the pid) first, then, with the lock held, waits until the file
# "<marker>.release" exists (at most ``hold`` seconds).
CHILD = r"""
import json, os, sys, time
from dataclasses import replace
from pathlib import Path
import torch
import kdlib.runs.experiments as ex
import kdlib.runs.catalogue as catalogue
import kdlib.runs.recipes as rc
results, marker, hold, logfile = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
g = torch.Generator().manual_seed(0)
x = torch.randint(0, 256, (400, 28, 28), dtype=torch.uint8, generator=g)
y = torch.randint(0, 10, (400,), generator=g)
data = ex.MNIST(x[:300], y[:300], x[300:], y[300:], "synthetic")
cfg = catalogue.configs_for("student", "smoke", [0])[0]
cfg = replace(cfg, spec=replace(cfg.spec, widths=(16,), epochs=1, checkpoint_every=1,
                               warmup_epochs=0), train_size=300)
real, trained = ex._train_group, []
def slow(group, *args, **kwargs):
    trained.append(1)
    Path(marker).write_text(str(os.getpid()))
    deadline = time.monotonic() + hold
    while time.monotonic() < deadline and not Path(marker + ".release").exists():
        time.sleep(0.05)
    return real(group, *args, **kwargs)
ex._train_group = slow
def log(message):
    with open(logfile, "a") as f:
        print(message, file=f, flush=True)
res = ex.run_configs([cfg], results_dir=results, data=data, progress=False, log=log)
print(json.dumps({"loaded": res[0].loaded, "trained": len(trained), "errors": res[0].test_errors}))
"""


def child(results, marker, hold, logfile) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", CHILD, str(results), str(marker), str(hold),
                             str(logfile)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for(predicate, procs, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not predicate():
        for p in procs:
            assert p.poll() is None, f"child ended before {what}: {p.communicate()[1]}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def result(proc) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def test_second_process_waits_then_loads_what_the_first_wrote(tmp_path):
    results = tmp_path / "results"
    first = child(results, tmp_path / "a.marker", 300, tmp_path / "a.log")
    second = None
    try:
        wait_for((tmp_path / "a.marker").exists, [first], "the first child took the lock")
        lock_files = list((results / "checkpoints").glob("*.lock"))
        assert len(lock_files) == 1 and lock_files[0].read_text().strip() == str(first.pid)
        second = child(results, tmp_path / "b.marker", 0, tmp_path / "b.log")
        wait_for(lambda: "waiting for" in text(tmp_path / "b.log"), [first, second],
                 "the second child's waiting line")
        (tmp_path / "a.marker.release").write_text("")
        a, b = result(first), result(second)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
    waiting = [line for line in text(tmp_path / "b.log").splitlines() if "waiting for" in line]
    assert waiting == [f"kdlib: waiting for student-s0: process {first.pid} is training them "
                       f"(lock {lock_files[0]})"]
    assert a == {"loaded": False, "trained": 1, "errors": a["errors"]}
    assert b == {"loaded": True, "trained": 0, "errors": a["errors"]}  # not trained again
    assert not (tmp_path / "b.marker").exists()
    assert list((results / "checkpoints").iterdir()) == []  # no lock or checkpoint left


def test_a_killed_holder_does_not_block_the_next_process(tmp_path):
    results = tmp_path / "results"
    first = child(results, tmp_path / "a.marker", 600, tmp_path / "a.log")
    second = None
    try:
        wait_for((tmp_path / "a.marker").exists, [first], "the first child took the lock")
        second = child(results, tmp_path / "b.marker", 0, tmp_path / "b.log")
        wait_for(lambda: "waiting for" in text(tmp_path / "b.log"), [first, second],
                 "the second child's waiting line")
        os.kill(first.pid, signal.SIGKILL)
        first.communicate(timeout=60)
        b = result(second)
    finally:
        for p in (first, second):
            if p is not None and p.poll() is None:
                p.kill()
                p.communicate()
    assert b["loaded"] is False and b["trained"] == 1  # the lock died with its holder
    assert list(results.glob("smoke/**/student/student-s0.json"))


# ----------------------------------------------------------------------------- provenance
def tiny_full_config() -> rc.RunConfig:
    cfg = catalogue.configs_for("student", "full", [0])[0]
    return replace(cfg, spec=replace(cfg.spec, widths=(8,), epochs=1, checkpoint_every=1, warmup_epochs=0),
                   train_size=200)


def random_data() -> ex.MNIST:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (300, 28, 28), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (300,), generator=g)
    return ex.MNIST(x[:200], y[:200], x[200:], y[200:], "synthetic")


@pytest.fixture
def dirty(monkeypatch):
    monkeypatch.setattr(prov, "git_commit", lambda: "0123456789abcdef+dirty")
    monkeypatch.setattr(prov, "dirty_files", lambda: ["kdlib/core/train.py", "kdlib/new.py"])


def test_full_runs_refuse_a_dirty_tree_unless_allowed(tmp_path, dirty):
    cfg = tiny_full_config()
    with pytest.raises(prov.DirtyTreeError) as e:
        ex.run_configs([cfg], results_dir=tmp_path, data=random_data(), progress=False,
                       log=lambda message: None)
    message = str(e.value)
    assert "profile 'full' runs (student-s0)" in message
    assert "kdlib/core/train.py, kdlib/new.py" in message and "--allow-dirty" in message
    assert not (tmp_path / "full").exists() and not (tmp_path / "checkpoints").exists()
    [run] = ex.run_configs([cfg], results_dir=tmp_path, data=random_data(), progress=False,
                           log=lambda message: None, allow_dirty=True)
    assert run.provenance["git_commit"] == "0123456789abcdef+dirty"
    # loading a finished artifact is not training: no refusal
    [again] = ex.run_configs([cfg], results_dir=tmp_path, progress=False, log=lambda message: None)
    assert again.loaded


def test_smoke_runs_train_from_a_dirty_tree(tmp_path, dirty):
    cfg = replace(tiny_full_config(), profile="smoke")
    [run] = ex.run_configs([cfg], results_dir=tmp_path, data=random_data(), progress=False,
                           log=lambda message: None)
    assert run.provenance["git_commit"].endswith("+dirty")


def test_cli_refuses_full_profile_in_a_dirty_git_checkout(tmp_path):
    """A real git repository holding a copy of kdlib/, with one uncommitted change."""
    repo = tmp_path / "repo"
    for f in (REPO / "kdlib").rglob("*.py"):
        target = repo / f.relative_to(REPO)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(f.read_bytes())
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "kdlib"], ["commit", "-q", "-m", "copy"]):
        subprocess.run(git + args, cwd=repo, check=True, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(repo), "KDLIB_DATA": str(tmp_path / "never-read")}

    def kdlib(*args):
        return subprocess.run([sys.executable, "-m", "kdlib", "student", "--seed", "0",
                               "--results-dir", str(tmp_path / "results"), *args], cwd=repo,
                              env=env, capture_output=True, text=True, timeout=300)

    with open(repo / "kdlib" / "core" / "losses.py", "a") as f:
        f.write("\n# a local change\n")
    res = kdlib("--profile", "full")
    assert res.returncode == 2, res.stderr
    assert res.stderr.startswith("kdlib: error: refusing to train profile 'full' runs (student-s0)")
    assert "kdlib/core/losses.py" in res.stderr and "--allow-dirty" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    # with the flag it gets past the check (and stops at the missing data folder)
    res = kdlib("--profile", "full", "--allow-dirty")
    assert res.returncode == 2 and "never-read" in res.stderr and "refusing" not in res.stderr
