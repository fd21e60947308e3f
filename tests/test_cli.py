"""End to end through the command line: smoke teacher, then the distilled student, on real MNIST."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _kdlib(*args):
    return subprocess.run([sys.executable, "-m", "kdlib", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ}, timeout=600)


def test_smoke_teacher_then_distilled_student(tmp_path):
    """The student distils from the paper-recipe teacher of its seed, trained just before."""
    res = _kdlib("paper_teacher", "distilled", "--profile", "smoke", "--seed", "0",
                 "--results-dir", str(tmp_path), "--no-progress")
    assert res.returncode == 0, res.stderr
    teacher = json.loads((tmp_path / "smoke/paper_teacher/paper-teacher-s0.json").read_text())
    student = json.loads((tmp_path / "smoke/protocol-3/distilled/distilled-T20-s0.json").read_text())
    # 10k training images, 3 epochs: both well above 90% on the full 10k test set
    assert teacher["metrics"]["test_errors"] < 1000
    assert student["metrics"]["test_errors"] < 1000
    assert "test errors" in res.stdout and "trained" in res.stdout
    prov = teacher["provenance"]
    assert prov["seed"] == 0 and prov["device"] == "cpu" and prov["torch_version"]
    assert teacher["config"]["spec"]["widths"] == [1200, 1200]
    assert student["config"]["teacher_seed"] == 0 and "protocol" not in student["config"]
    assert (tmp_path / "smoke/paper_teacher/paper-teacher-s0.pt").exists()
    assert (tmp_path / "smoke/protocol-3/distilled/distilled-T20-s0.npz").exists()
    # a second call loads instead of retraining
    again = _kdlib("distilled", "--profile", "smoke", "--seed", "0", "--results-dir", str(tmp_path))
    assert again.returncode == 0 and "loaded" in again.stdout


def test_cli_errors_are_one_clear_line(tmp_path):
    res = _kdlib("nonsense", "--results-dir", str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert "unknown experiment 'nonsense'" in res.stderr and "Traceback" not in res.stderr


def test_search_table_lists_every_setting_without_training(tmp_path):
    """``python -m kdlib search table`` on an empty results folder: every setting of every
    stage, none run, nothing trained; a stage that does not exist is one clear error."""
    from kdlib.runs import search
    res = _kdlib("search", "table", "--results-dir", str(tmp_path))
    assert res.returncode == 0, res.stderr
    rows = [line for line in res.stdout.splitlines() if line.startswith("| ") and "not run" in line]
    shown = {(r[0], r[1], r[2], r[4]) for r in (tuple(c.strip() for c in line.strip("|").split("|"))
                                                for line in rows)}
    assert len(shown) >= len(search.STAGE1) and not list(tmp_path.iterdir())
    bad = _kdlib("search", "9", "--results-dir", str(tmp_path))
    assert bad.returncode == 2 and "invalid choice: '9'" in bad.stderr
    assert bad.stderr.strip().count("\n") == 0
