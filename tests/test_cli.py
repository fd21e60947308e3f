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
    """Protocol 1: the student distils from the (60-epoch recipe's) teacher trained just before;
    protocol 2's path from the paper teacher is test_crash_safety's."""
    res = _kdlib("teacher", "distilled", "--profile", "smoke", "--seed", "0", "--protocol", "1",
                 "--results-dir", str(tmp_path), "--no-progress")
    assert res.returncode == 0, res.stderr
    teacher = json.loads((tmp_path / "smoke/teacher/teacher-s0.json").read_text())
    student = json.loads((tmp_path / "smoke/distilled/distilled-T20-s0.json").read_text())
    # 10k training images, 3 epochs: both well above 90% on the full 10k test set
    assert teacher["metrics"]["test_errors"] < 1000
    assert student["metrics"]["test_errors"] < 1000
    assert "test errors" in res.stdout and "trained" in res.stdout
    prov = teacher["provenance"]
    assert prov["seed"] == 0 and prov["device"] == "cpu" and prov["torch_version"]
    assert teacher["config"]["spec"]["widths"] == [1200, 1200]
    assert (tmp_path / "smoke/teacher/teacher-s0.pt").exists()
    assert (tmp_path / "smoke/distilled/distilled-T20-s0.npz").exists()
    # a second call loads instead of retraining
    again = _kdlib("distilled", "--profile", "smoke", "--seed", "0", "--protocol", "1",
                   "--results-dir", str(tmp_path))
    assert again.returncode == 0 and "loaded" in again.stdout


def test_cli_errors_are_one_clear_line(tmp_path):
    res = _kdlib("nonsense", "--results-dir", str(tmp_path))
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [res.stderr.strip()]
    assert "unknown experiment 'nonsense'" in res.stderr and "Traceback" not in res.stderr


def test_cli_protocol_option_refuses_unknown_and_unchosen_protocols(tmp_path, monkeypatch, capsys):
    """--protocol 2 builds its runs from the paper teacher, but only after its choices are made
    (here its student epochs are unmade again, in-process, whatever protocols.py says)."""
    from dataclasses import replace

    from kdlib import protocols
    from kdlib.__main__ import main
    res = _kdlib("distilled", "--protocol", "7", "--results-dir", str(tmp_path))
    assert res.returncode == 2 and "unknown protocol 7; choose one of [1, 2, 3]" in res.stderr
    monkeypatch.setitem(protocols.PROTOCOLS, 2, replace(protocols.PROTOCOLS[2], student_epochs=None))
    assert main(["distilled", "--protocol", "2", "--profile", "full", "--results-dir", str(tmp_path)]) == 2
    stderr = capsys.readouterr().err
    assert stderr.count("\n") == 1 and stderr.startswith("kdlib: error: protocol 2 has no student epochs")
    assert "hard_weight --validation --protocol 2 --profile full" in stderr
    res = _kdlib("student_epochs", "--results-dir", str(tmp_path))
    assert res.returncode == 2 and "validation split only" in res.stderr
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written


def test_cli_select_prints_the_protocols_validation_choices():
    """`select` reads the committed validation sweeps and says which setting they pick."""
    res = _kdlib("select", "--protocol", "1")
    assert res.returncode == 0, res.stderr
    # protocol 1's sweep (seed 0): weight 1 has the fewest errors and is the largest tried
    assert "| hard-label weight | 1 | 121 | 1 | fewest (at the grid's edge), used |" in res.stdout
    assert "hard-label weight: fewest validation errors at 1 (121); NOT bracketed" in res.stdout
    res = _kdlib("select", "--protocol", "9")
    assert res.returncode == 2 and "unknown protocol 9" in res.stderr
