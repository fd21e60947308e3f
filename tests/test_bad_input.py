"""Bad input gets a clear error that names the problem (and the file), never a traceback.

Four kinds: the MNIST folder, parameters (Python API and CLI), artifacts in a results
folder, and training that diverges. Everything here is tiny: synthetic IDX files, copies
of the four MNIST .gz files, and a few hundred synthetic images for the training runs.
"""
from __future__ import annotations

import gzip
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from kdlib import distillation_loss, softmax_with_temperature
from kdlib.runs import experiments as ex
from kdlib.runs import runner
from kdlib.runs import catalogue
from kdlib.runs import recipes as rc
from kdlib.core.data import FILES, MNIST, DataError, load_mnist, verify_folder
from kdlib.core.io import ArtifactError, check_writable
from kdlib.core.models import MLP
from kdlib.core.checks import TrainingDiverged
from kdlib.core.spec import Member, TrainSpec
from kdlib.core.train import resolve_device, train

REPO = Path(__file__).resolve().parents[1]
MNIST_DIR = Path(os.environ.get("KDLIB_DATA") or REPO.parent / "shared" / "data" / "mnist")


# ----------------------------------------------------------------------------- helpers
def idx_images(count: int, *, side: int = 28, magic: int = 2051, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (count, side, side), dtype=np.uint8)
    return struct.pack(">IIII", magic, count, side, side) + pixels.tobytes()


def idx_labels(labels, *, magic: int = 2049) -> bytes:
    return struct.pack(">II", magic, len(labels)) + bytes(np.asarray(labels, np.uint8))


def custom_folder(folder: Path, replace_files: dict | None = None, n_train: int = 30,
                  n_test: int = 20) -> Path:
    """A folder of valid synthetic IDX files (gzipped), some replaced by ``replace_files``."""
    files = {
        "train-images-idx3-ubyte": idx_images(n_train, seed=1),
        "train-labels-idx1-ubyte": idx_labels(np.arange(n_train) % 10),
        "t10k-images-idx3-ubyte": idx_images(n_test, seed=2),
        "t10k-labels-idx1-ubyte": idx_labels(np.arange(n_test)[::-1] % 10),
    }
    files.update(replace_files or {})
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(data, mtime=0))
    return folder


@pytest.fixture
def mnist_copy(tmp_path) -> Path:
    """A private copy of the four official MNIST .gz files, free to damage."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILES:
        shutil.copyfile(MNIST_DIR / f"{name}.gz", folder / f"{name}.gz")
    return folder


def run_cli(*args, cwd, env_extra=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "kdlib", *args, "--no-progress"], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300)


def assert_one_error_line(proc: subprocess.CompletedProcess, *fragments: str) -> str:
    assert proc.returncode != 0, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("kdlib: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------- data
def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="does not exist") as e:
        load_mnist(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(e.value)


def test_folder_that_is_a_file(tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    with pytest.raises(DataError, match="is not a folder") as e:
        verify_folder(tmp_path / "afile")
    assert str(tmp_path / "afile") in str(e.value)


def test_missing_gz(mnist_copy):
    (mnist_copy / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing MNIST file t10k-labels-idx1-ubyte.gz") as e:
        verify_folder(mnist_copy)
    assert str(mnist_copy) in str(e.value)


def test_truncated_gz(mnist_copy):
    path = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or not a valid gzip file") as e:
        verify_folder(mnist_copy)
    assert str(path) in str(e.value)


def test_gz_that_is_not_gzip(mnist_copy):
    path = mnist_copy / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(b"<html>404 Not Found</html>")
    with pytest.raises(DataError, match="not a valid gzip file") as e:
        verify_folder(mnist_copy)
    assert str(path) in str(e.value)


def test_altered_gz_fails_the_checksum(mnist_copy):
    path = mnist_copy / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(path.read_bytes()))
    raw[8 + 100] = (raw[8 + 100] + 1) % 10  # one label changed, still a valid IDX file
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError, match="SHA-256") as e:
        verify_folder(mnist_copy)
    assert str(mnist_copy / "t10k-labels-idx1-ubyte") in str(e.value)
    assert "train-" not in str(e.value)
    # the same folder is still acceptable as custom data in MNIST's format
    assert verify_folder(mnist_copy, verify=False)["t10k-labels-idx1-ubyte"] == bytes(raw)


@pytest.mark.parametrize("name, content, fragment", [
    ("train-images-idx3-ubyte", idx_images(30, magic=2049), "wrong magic number 2049, expected 2051"),
    ("t10k-labels-idx1-ubyte", idx_labels(range(20), magic=2051),
     "wrong magic number 2051, expected 2049"),
    ("train-images-idx3-ubyte", idx_images(30, side=32), "images are 32x32, expected 28x28"),
    ("t10k-images-idx3-ubyte", idx_images(20)[:-5], "15691 bytes but the header announces 20 "
     "items (15696 bytes); the file is truncated or corrupt"),
    ("train-labels-idx1-ubyte", b"\x00\x00\x08", "only 3 bytes, too short for an IDX header"),
], ids=["image-magic", "label-magic", "image-shape", "truncated-idx", "short-header"])
def test_malformed_custom_idx(tmp_path, name, content, fragment):
    folder = custom_folder(tmp_path / "custom", {name: content})
    with pytest.raises(DataError) as e:
        verify_folder(folder, verify=False)
    assert str(e.value).startswith(f"{folder / name}: {fragment}"), str(e.value)


def test_image_and_label_counts_differ(tmp_path):
    folder = custom_folder(tmp_path / "custom", {"train-labels-idx1-ubyte": idx_labels(np.arange(29) % 10)})
    with pytest.raises(DataError, match="train has 30 images but 29 labels") as e:
        verify_folder(folder, verify=False)
    assert str(folder) in str(e.value)


def test_labels_outside_0_to_9(tmp_path):
    folder = custom_folder(tmp_path / "custom", {"t10k-labels-idx1-ubyte": idx_labels([3] * 19 + [10])})
    with pytest.raises(DataError, match=r"label 10 outside the class range 0\.\.9") as e:
        verify_folder(folder, verify=False)
    assert str(folder / "t10k-labels-idx1-ubyte") in str(e.value)


def test_valid_custom_idx_needs_verify_false(tmp_path, monkeypatch):
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "cache"))
    folder = custom_folder(tmp_path / "custom")
    data = load_mnist(folder, verify=False)
    assert data.train_images.shape == (30, 28, 28) and data.test_images.shape == (20, 28, 28)
    assert data.train_labels.tolist() == [i % 10 for i in range(30)]
    assert data.test_images.dtype == torch.uint8 and data.test_labels.dtype == torch.int64
    with pytest.raises(DataError, match="SHA-256.*verify=False") as e:
        load_mnist(folder)
    assert str(folder / "train-images-idx3-ubyte") in str(e.value)


def test_unwritable_data_cache(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("")
    monkeypatch.setenv("KDLIB_CACHE", str(tmp_path / "afile" / "cache"))
    with pytest.raises(DataError, match="KDLIB_CACHE") as e:
        load_mnist(custom_folder(tmp_path / "custom"), verify=False)
    assert str(tmp_path / "afile" / "cache") in str(e.value)


# ----------------------------------------------------------------------------- parameters (API)
def test_unknown_experiment_and_profile():
    with pytest.raises(ValueError, match="unknown experiment 'bogus'; choose one of student"):
        catalogue.configs_for("bogus", "smoke")
    with pytest.raises(ValueError, match="unknown experiment 'bogus'"):
        runner.run_experiment("bogus", "smoke")
    with pytest.raises(ValueError, match="unknown profile 'huge'; choose one of smoke, full"):
        catalogue.configs_for("paper_teacher", "huge")


@pytest.mark.parametrize("seeds", [[], [-1], [0, "1"], [1.5]])
def test_bad_seeds(seeds):
    with pytest.raises(ValueError, match="seeds must be a non-empty list of integers >= 0"):
        catalogue.configs_for("student", "smoke", seeds)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_bad_member_seed(seed):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        Member(seed=seed)


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.inf, math.nan])
def test_non_positive_temperature(temperature):
    with pytest.raises(ValueError, match="temperature must be positive and finite"):
        Member(temperature=temperature, soft_weight=1.0)
    logits = torch.zeros(4, 10)
    with pytest.raises(ValueError, match="temperature must be positive and finite"):
        distillation_loss(logits, logits, None, temperature=temperature)
    with pytest.raises(ValueError, match="temperature must be positive and finite"):
        softmax_with_temperature(logits, temperature)


@pytest.mark.parametrize("soft, hard, fragment", [
    (-1.0, 0.1, "soft_weight must be a finite number >= 0, got -1.0"),
    (1.0, -0.1, "hard_weight must be a finite number >= 0, got -0.1"),
    (math.nan, 1.0, "soft_weight must be a finite number >= 0, got nan"),
    (0.0, 0.0, "soft_weight and hard_weight are both 0"),
])
def test_bad_loss_weights(soft, hard, fragment):
    with pytest.raises(ValueError) as e:
        Member(temperature=20.0, soft_weight=soft, hard_weight=hard)
    assert fragment in str(e.value)
    logits, labels = torch.zeros(4, 10), torch.zeros(4, dtype=torch.int64)
    with pytest.raises(ValueError) as e:
        distillation_loss(logits, logits, labels, temperature=20.0, soft_weight=soft,
                          hard_weight=hard)
    assert fragment in str(e.value)


@pytest.mark.parametrize("widths", [(), [], (0,), (800, -1), (1.5,), (True,)])
def test_bad_widths(widths):
    with pytest.raises(ValueError, match="hidden widths must be a non-empty list of positive integers"):
        TrainSpec(widths=widths)
    with pytest.raises(ValueError, match="hidden widths must be a non-empty list of positive integers"):
        MLP(widths)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, math.nan])
@pytest.mark.parametrize("which", ["input_dropout", "hidden_dropout"])
def test_dropout_outside_0_1(p, which):
    with pytest.raises(ValueError, match=rf"{which} must be in \[0, 1\), got {p}"):
        TrainSpec(**{which: p})
    with pytest.raises(ValueError, match=rf"{which} must be in \[0, 1\), got {p}"):
        MLP((10,), **{which: p})


@pytest.mark.parametrize("field, value, fragment", [
    ("epochs", 0, "epochs must be a positive integer, got 0"),
    ("epochs", -3, "epochs must be a positive integer, got -3"),
    ("epochs", 2.5, "epochs must be a positive integer, got 2.5"),
    ("batch_size", 0, "batch_size must be a positive integer, got 0"),
    ("batch_size", -128, "batch_size must be a positive integer, got -128"),
    ("checkpoint_every", 0, "checkpoint_every must be a positive integer, got 0"),
    ("lr", 0.0, "lr must be positive, got 0.0"),
    ("lr", math.inf, "lr must be positive, got inf"),
    ("momentum", 1.0, "momentum must be in [0, 1), got 1.0"),
    ("max_norm", 0.0, "max_norm must be positive or None, got 0.0"),
    ("jitter", -1, "jitter must be an integer number of pixels in 0..8, got -1"),
])
def test_bad_train_spec(field, value, fragment):
    with pytest.raises(ValueError) as e:
        TrainSpec(**{field: value})
    assert fragment in str(e.value)


def unavailable_cuda() -> str:
    """'cuda' where there is no GPU; a GPU index past the last one where there is."""
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def test_unavailable_or_unknown_device(tmp_path):
    device = unavailable_cuda()
    with pytest.raises(ValueError, match=f"device '{device}'"):
        resolve_device(device)
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="unsupported device 'meta'"):
        resolve_device("meta")
    with pytest.raises(ValueError, match=f"device '{device}'"):
        runner.run_experiment("student", "smoke", [0], device=device, results_dir=tmp_path)
    assert not (tmp_path / "smoke").exists()


def test_train_arguments_that_do_not_fit():
    x, y = torch.zeros(10, 28, 28, dtype=torch.uint8), torch.zeros(10, dtype=torch.int64)
    spec = TrainSpec(widths=(4,), epochs=1)
    with pytest.raises(ValueError, match="need teacher_logits for every training image"):
        train(x, y, spec, [Member(temperature=4.0, soft_weight=1.0)], progress=False)
    with pytest.raises(ValueError, match=r"labels \(9,\) do not match 10 images"):
        train(x, y[:9], spec, progress=False)
    with pytest.raises(ValueError, match="the training set is empty"):
        train(x[:0], y[:0], spec, progress=False)
    with pytest.raises(ValueError, match="need at least one member"):
        train(x, y, spec, [], progress=False)


# ----------------------------------------------------------------------------- parameters (CLI)
@pytest.mark.parametrize("args, fragments", [
    (["bogus"], ["unknown experiment 'bogus'", "paper_teacher"]),
    (["paper_teacher", "--profile", "huge"], ["unknown profile 'huge'", "smoke, full"]),
    (["paper_teacher", "--seed", "-1"], ["seeds must be a non-empty list of integers >= 0"]),
    (["paper_teacher", "--seed", "x"], ["argument --seed: invalid int value: 'x'"]),
    ([], ["the following arguments are required: EXPERIMENT"]),
    (["paper_teacher", "--frobnicate"], ["unrecognized arguments: --frobnicate"]),
    (["paper_teacher", "--device", unavailable_cuda()], [f"device '{unavailable_cuda()}'"]),
    (["paper_teacher", "--device", "tpu"], ["unknown device 'tpu'"]),
], ids=["experiment", "profile", "negative-seed", "seed-type", "no-experiment", "unknown-option",
        "cuda", "device"])
def test_cli_bad_parameters(tmp_path, args, fragments):
    proc = run_cli(*args, "--results-dir", str(tmp_path / "results"), cwd=tmp_path)
    assert_one_error_line(proc, *fragments)
    assert proc.returncode == 2
    assert not (tmp_path / "results" / "smoke").exists()


def test_cli_missing_data_folder(tmp_path):
    missing = tmp_path / "no-mnist-here"
    proc = run_cli("student", "--seed", "0", "--results-dir", str(tmp_path / "results"),
                   cwd=tmp_path, env_extra={"KDLIB_DATA": str(missing)})
    assert_one_error_line(proc, f"MNIST folder {missing} does not exist", "KDLIB_DATA")


def test_cli_results_dir_not_writable(tmp_path):
    (tmp_path / "afile").write_text("")
    results = tmp_path / "afile" / "results"
    proc = run_cli("student", "--seed", "0", "--results-dir", str(results), cwd=tmp_path,
                   env_extra={"KDLIB_DATA": str(tmp_path / "never-read")})
    assert_one_error_line(proc, f"cannot write to {results / 'checkpoints'}", "--results-dir")


# ----------------------------------------------------------------------------- artifacts
def tiny(cfg: rc.RunConfig) -> rc.RunConfig:
    return replace(cfg, spec=replace(cfg.spec, widths=(24,), epochs=2, checkpoint_every=1,
                                     warmup_epochs=0))


def synthetic_mnist(n_train: int = 300, n_test: int = 100) -> MNIST:
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n_train + n_test, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (n_train + n_test,), generator=g)
    return MNIST(images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], "synthetic")


CONFIGS = [tiny(catalogue.configs_for("paper_teacher", "smoke", [0])[0]),
           tiny(catalogue.configs_for("student", "smoke", [0])[0])]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small teacher (weights stored) and one student, trained once for this module."""
    results = tmp_path_factory.mktemp("trained") / "results"
    runs = ex.run_configs(CONFIGS, results_dir=results, data=synthetic_mnist(), progress=False,
                          log=lambda message: None)
    return results, runs


@pytest.fixture
def results_copy(trained, tmp_path):
    results, runs = trained
    copy = tmp_path / "results"
    shutil.copytree(results, copy)
    return copy, [copy / r.path.relative_to(results) for r in runs], runs


def rerun(results):
    messages = []
    runs = ex.run_configs(CONFIGS, results_dir=results, data=synthetic_mnist(), progress=False,
                          log=messages.append)
    return runs, messages


def test_intact_artifacts_are_loaded(results_copy):
    results, paths, _ = results_copy
    runs, messages = rerun(results)
    assert [r.loaded for r in runs] == [True, True] and messages == []
    assert [r.path for r in runs] == paths


def _half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damage, which, suffix, fragment", [
    (_half, 1, ".json", "corrupt or half-written JSON"),
    (lambda p: p.write_text('{"config_hash": '), 0, ".json", "corrupt or half-written JSON"),
    (_half, 1, ".npz", "corrupt or half-written npz"),
    (Path.unlink, 1, ".npz", "corrupt or half-written npz"),
    (_half, 0, ".pt", "corrupt or half-written torch file"),
    (lambda p: p.write_text("[1, 2]"), 1, ".json", "not an artifact"),
], ids=["half-json", "cut-json", "half-npz", "missing-npz", "half-pt", "json-not-a-dict"])
def test_damaged_artifact_is_named_and_retrained(results_copy, damage, which, suffix, fragment):
    results, paths, original = results_copy
    damaged = paths[which].with_suffix(suffix)
    damage(damaged)
    runs, messages = rerun(results)
    problems = [m for m in messages if not m.startswith("kdlib: training ")
                and " test errors -> " not in m]
    assert len(problems) == 1, messages
    assert problems[0].startswith(f"kdlib: {damaged}: {fragment}"), problems[0]
    assert problems[0].endswith("; retraining")
    assert [r.loaded for r in runs] == [which != 0, which != 1]
    # retrained on the same seed: the same logits as the run it replaces
    assert np.array_equal(runs[which].logits(), original[which].logits())


def test_artifact_of_another_config_is_not_used(results_copy):
    results, paths, original = results_copy
    doc = json.loads(paths[1].read_text())
    doc["config_hash"] = "0123456789abcdef"
    doc["metrics"]["test_errors"] = -1  # would show if the stale artifact were used
    paths[1].write_text(json.dumps(doc))
    runs, messages = rerun(results)
    assert messages[0] == (f"kdlib: {paths[1]}: made with another config or code version (hash "
                        f"0123456789abcdef, expected {CONFIGS[1].hash}); it will not be used; "
                           "retraining")
    assert not runs[1].loaded and runs[1].test_errors == original[1].test_errors >= 0
    assert json.loads(paths[1].read_text())["config_hash"] == CONFIGS[1].hash


def test_incomplete_artifact_is_not_used(results_copy):
    results, paths, _ = results_copy
    doc = json.loads(paths[1].read_text())
    del doc["metrics"]
    paths[1].write_text(json.dumps(doc))
    runs, messages = rerun(results)
    assert messages[0] == f"kdlib: {paths[1]}: incomplete artifact, no 'metrics'; retraining"
    assert not runs[1].loaded


def unwritable_folder(tmp_path: Path) -> Path:
    """A results folder that cannot be written: chmod where that binds, else under a file (root)."""
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with open(locked / "probe", "w"):
            pass
    except PermissionError:
        return locked / "results"
    locked.chmod(0o700)
    (tmp_path / "afile").write_text("")
    return tmp_path / "afile" / "results"


def test_results_folder_not_writable(tmp_path):
    results = unwritable_folder(tmp_path)
    with pytest.raises(ArtifactError, match="choose a writable results folder") as e:
        ex.run_configs(CONFIGS[1:], results_dir=results, data=synthetic_mnist(), progress=False,
                       log=lambda message: None)
    assert f"cannot write to {results / 'checkpoints'}" in str(e.value)
    with pytest.raises(ArtifactError, match=re.escape(str(results))):
        check_writable(results)


def test_corrupt_or_foreign_checkpoint(tmp_path):
    data = synthetic_mnist()
    spec = TrainSpec(widths=(8,), epochs=2, checkpoint_every=1)
    ckpt = tmp_path / "run.pt"
    ckpt.write_bytes(b"PK\x03\x04 half a zip")
    with pytest.raises(ArtifactError, match="corrupt or half-written checkpoint") as e:
        train(data.train_images, data.train_labels, spec, checkpoint_path=ckpt, progress=False)
    assert str(e.value).startswith(f"{ckpt}: ") and "delete it" in str(e.value)
    ckpt.unlink()
    train(data.train_images, data.train_labels, spec, checkpoint_path=ckpt, progress=False,
          stop_after_epoch=1)
    foreign = re.escape(f"{ckpt}: checkpoint of another configuration")
    with pytest.raises(ArtifactError, match=foreign):
        train(data.train_images, data.train_labels, replace(spec, lr=0.01), checkpoint_path=ckpt,
              progress=False)
    torch.save([1, 2, 3], ckpt)
    with pytest.raises(ArtifactError, match=foreign):
        train(data.train_images, data.train_labels, spec, checkpoint_path=ckpt, progress=False)


# ----------------------------------------------------------------------------- divergence
def test_huge_learning_rate_diverges_in_epoch_1(tmp_path):
    data = synthetic_mnist()
    spec = TrainSpec(widths=(16,), epochs=3, batch_size=50, lr=1e30, checkpoint_every=1)
    with pytest.raises(TrainingDiverged, match="loss became NaN/inf in epoch 1 ") as e:
        train(data.train_images, data.train_labels, spec, checkpoint_path=tmp_path / "c.pt",
              progress=False, desc="teacher-s0")
    assert str(e.value).startswith("teacher-s0: ")
    assert "no checkpoint was written" in str(e.value)
    assert not (tmp_path / "c.pt").exists()


def test_infinite_teacher_logits_name_the_last_good_checkpoint(tmp_path):
    data = synthetic_mnist()
    x, y = data.train_images, data.train_labels
    spec = TrainSpec(widths=(16,), epochs=3, batch_size=50, checkpoint_every=1)
    members = [Member(seed=0, temperature=20.0, soft_weight=1.0, hard_weight=0.1)]
    teacher = torch.randn(len(x), 10, generator=torch.Generator().manual_seed(0))
    ckpt = tmp_path / "distilled.pt"
    train(x, y, spec, members, teacher_logits=teacher, checkpoint_path=ckpt, progress=False,
          stop_after_epoch=1)
    good = ckpt.read_bytes()
    teacher[7, 3] = math.inf
    with pytest.raises(TrainingDiverged) as e:
        train(x, y, spec, members, teacher_logits=teacher, checkpoint_path=ckpt, progress=False)
    assert "loss became NaN/inf in epoch 2 " in str(e.value)
    assert f"last good checkpoint: {ckpt} (epoch 1)" in str(e.value)
    assert ckpt.read_bytes() == good


def test_weights_that_blow_up_at_the_end_of_an_epoch_are_not_checkpointed(tmp_path, monkeypatch):
    """The loss of a step is computed before its update: the weights can turn NaN unseen."""
    data = synthetic_mnist()
    spec = TrainSpec(widths=(16,), epochs=2, batch_size=100, checkpoint_every=1)
    steps_per_epoch = math.ceil(len(data.train_images) / spec.batch_size)
    import kdlib.core.step as kstep
    real_update, calls = kstep.sgd_max_norm_update, []

    def update_then_poison(params, *args, **kwargs):
        real_update(params, *args, **kwargs)
        calls.append(1)
        if len(calls) == steps_per_epoch:  # the last step of epoch 1
            params[0].fill_(math.nan)

    monkeypatch.setattr(kstep, "sgd_max_norm_update", update_then_poison)
    ckpt = tmp_path / "c.pt"
    with pytest.raises(TrainingDiverged, match="weights became NaN/inf in epoch 1 ") as e:
        train(data.train_images, data.train_labels, spec, checkpoint_path=ckpt, progress=False)
    assert "no checkpoint was written" in str(e.value)
    assert not ckpt.exists()
