"""One run's artifact: train it, store it, load it (configs: ``kdlib.runs.recipes``,
``kdlib.runs.studies``, ``kdlib.runs.search``; whole experiments: ``kdlib.runs.runner``).

A run's artifact is ``artifact_path``: a JSON (config, metrics, provenance) with ``.npz`` test
logits and, for teachers, ``.pt`` weights; all written atomically, the JSON last. ``read_run``
is the one reader of the JSON; ``load_artifact`` is it, checked against a config built now.
A run whose config hash (which includes ``ARTIFACT_VERSION``) matches an existing artifact
is loaded instead of retrained unless ``force``; a corrupt or mismatching artifact is reported
by name and retrained, never used.

Runs of one architecture and transfer set that are pending together are trained as one
stacked model (``kdlib.core.train``), finished members are never retrained.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.checks import TrainingDiverged, TrainingFailed
from ..core.data import MNIST, load_mnist, transfer_mask
from ..core.evaluate import confusion_matrix, count_errors, per_class_errors
from ..core.io import (
    ArtifactError,
    check_writable,
    exclusive_lock,
    read_json,
    read_npz,
    read_torch,
    write_json,
    write_npz,
    write_torch,
)
from ..core.models import MLP
from ..core.spec import fingerprint
from ..core.train import predict_logits, resolve_device, train
from .provenance import check_clean_tree, provenance
from .recipes import RunConfig, config_hash, teacher_config_of


@dataclass
class RunResult:
    """A finished run: its config, metrics, provenance and where its files are."""

    config: dict
    metrics: dict
    provenance: dict
    path: Path
    loaded: bool = False  # True when read from an existing artifact

    @property
    def test_errors(self) -> int:
        return self.metrics["test_errors"]

    def logits(self) -> np.ndarray:
        return read_npz(self.path.with_suffix(".npz"))["test_logits"].astype(np.float32)

    def weights_path(self) -> Path:
        return self.path.with_suffix(".pt")

    def train_logits(self) -> np.ndarray | None:
        """Logits on every training image (runs with a reduced transfer set only), else None."""
        npz = read_npz(self.path.with_suffix(".npz"))
        return npz["train_logits"].astype(np.float32) if "train_logits" in npz else None


def seed_of(run: RunResult) -> int:
    """The member seed of a finished run."""
    return int(run.config["member"]["seed"])


@dataclass
class FailedRun:
    """A run that diverged or collapsed: a result, recorded in ``<name>.failed.json`` (its
    config, hash and a record ``{"name", "status", "errors": None, "curve": [], "message"}``),
    never retried unless forced."""

    config: dict
    record: dict
    path: Path
    loaded: bool = False
    test_errors = None

    @property
    def status(self) -> str:
        return self.record["status"]


def failure_path(cfg: RunConfig, results_dir) -> Path:
    return artifact_path(cfg, results_dir).with_suffix(".failed.json")


def load_failure(cfg: RunConfig, results_dir) -> FailedRun | None:
    """The recorded failure of ``cfg``, if it failed with this very config."""
    path = failure_path(cfg, results_dir)
    if not path.exists():
        return None
    doc = read_json(path)
    if not isinstance(doc, dict) or doc.get("config_hash") != cfg.hash:
        return None
    return FailedRun(doc["config"], doc["record"], path, loaded=True)


def _record_failure(cfg: RunConfig, results_dir, error: TrainingFailed, log) -> FailedRun:
    status = "diverged" if isinstance(error, TrainingDiverged) else "collapsed"
    record = {"name": cfg.name, "status": status, "errors": None, "curve": [],
              "message": " ".join(str(error).split())[:500]}
    path = failure_path(cfg, results_dir)
    write_json(path, {"config": cfg.to_dict(), "config_hash": cfg.hash, "record": record})
    log(f"kdlib: {cfg.name}: {status} (recorded in {path})")
    return FailedRun(cfg.to_dict(), record, path)


#: Prefixes of the experiments whose runs the student recipe does not shape: the paper-recipe
#: teachers (and the parity benchmark's), the specialists' runs (a scaled ``STUDENT``, Section 5).
OUTSIDE_STUDENT_RECIPE = ("paper_teacher", "parity-teacher", "specialists")
#: The folder, within a profile's, of every run the student recipe shapes. It keeps the name the
#: runs were written under (this recipe was the project's third); the runs of the two recipes
#: before it sit beside it and are read only through ``kdlib.runs.history``.
STUDENT_RECIPE_FOLDER = "protocol-3"


def artifact_path(cfg: RunConfig, results_dir) -> Path:
    """``<results>/<profile>[-validation]/[STUDENT_RECIPE_FOLDER/]<experiment>/<name>.json``."""
    sub = Path(f"{cfg.profile}-validation" if cfg.validation else cfg.profile)
    if not cfg.experiment.startswith(OUTSIDE_STUDENT_RECIPE):
        sub = sub / STUDENT_RECIPE_FOLDER
    return Path(results_dir) / sub / cfg.experiment / f"{cfg.name}.json"


def load_artifact(cfg: RunConfig, results_dir) -> RunResult:
    """The artifact of ``cfg`` (``read_run`` of its path, made by this very config), with its
    logits (and a teacher's weights) readable; ArtifactError, naming the file, if it is
    missing, corrupt, incomplete or stale."""
    path = artifact_path(cfg, results_dir)
    run = read_run(path, expected_hash=cfg.hash)
    npz = read_npz(path.with_suffix(".npz"))
    if "test_logits" not in npz:
        raise ArtifactError(f"{path.with_suffix('.npz')}: no test_logits")
    if cfg.store_weights:
        read_torch(path.with_suffix(".pt"))
    return run


def read_run(path, expected_hash: str | None = None) -> RunResult:
    """The one reader of a run's JSON (config, metrics, provenance): ArtifactError if it is
    missing, corrupt or incomplete, if its stored ``config_hash`` is not ``expected_hash`` (a run
    made with another config or code version), or if its config does not hash to it. Without
    ``expected_hash``: a run no current config builds (an earlier recipe's, ``kdlib.runs.history``)."""
    path = Path(path)
    if not path.exists():
        raise ArtifactError(f"{path}: no artifact")
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise ArtifactError(f"{path}: not an artifact (a JSON object)")
    if expected_hash is not None and doc.get("config_hash") != expected_hash:
        raise ArtifactError(f"{path}: made with another config or code version "
                            f"(hash {doc.get('config_hash')}, expected {expected_hash}); it will not be used")
    for key in ("config", "config_hash", "metrics", "provenance"):
        if key not in doc:
            raise ArtifactError(f"{path}: incomplete artifact, no '{key}'")
    if config_hash(doc["config"]) != doc["config_hash"]:
        raise ArtifactError(f"{path}: its config does not match its config_hash; it will not be used")
    return RunResult(doc["config"], doc["metrics"], doc["provenance"], path, loaded=True)


def _save_artifact(cfg, results_dir, logits, labels, history, wall_time, device, weights=None,
                   extra=None, train_logits=None) -> RunResult:
    path = artifact_path(cfg, results_dir)
    logits_np = logits.float().cpu().numpy()
    metrics = {
        "test_errors": count_errors(logits.float().cpu(), labels.cpu()),
        "test_size": int(len(labels)),
        "per_class_errors": per_class_errors(logits.float().cpu(), labels.cpu()),
        "confusion_matrix": confusion_matrix(logits.float().cpu(), labels.cpu()).tolist(),
        "train_loss_curve": [float(v) for v in history["train_loss"]],
        "test_errors_curve": [int(v) for v in history["test_errors"]],
        # share of the updates whose gradient norm was clipped, per epoch (clipped runs only)
        **({"clipped_share_curve": [round(float(v), 4) for v in history["clipped_share"]]}
           if history.get("clipped_share") else {}),
        "wall_time_s": round(float(wall_time), 2),
        **(extra or {}),
    }
    # weights and logits first, JSON last: the JSON marks a complete artifact
    if weights is not None:
        write_torch(path.with_suffix(".pt"), weights)
    arrays = {"test_logits": logits_np.astype(cfg.logits_dtype)}
    if train_logits is not None:  # for choosing a bias shift without the test set
        arrays["train_logits"] = train_logits.float().cpu().numpy().astype(np.float16)
    write_npz(path.with_suffix(".npz"), **arrays)
    doc = {"config": cfg.to_dict(), "config_hash": cfg.hash, "metrics": metrics,
           "provenance": provenance(device, cfg.member.seed)}
    write_json(path, doc)
    return RunResult(doc["config"], metrics, doc["provenance"], path)


# ----------------------------------------------------------------------------- running
def _splits(data: MNIST, cfg: RunConfig):
    """(train images, train labels, test images, test labels) for a config."""
    if cfg.validation:
        tr_x, tr_y = data.train_images[:50000], data.train_labels[:50000]
        te_x, te_y = data.train_images[50000:], data.train_labels[50000:]
    else:
        tr_x, tr_y, te_x, te_y = data.train_images, data.train_labels, data.test_images, data.test_labels
    if cfg.train_size is not None:
        tr_x, tr_y = tr_x[:cfg.train_size], tr_y[:cfg.train_size]
    return tr_x, tr_y, te_x, te_y


def load_teacher(cfg_teacher: RunConfig, results_dir, device) -> MLP:
    """The trained teacher of ``cfg_teacher``; a teacher whose training failed is named, with
    its recorded failure, since no student can distil from it."""
    failed = load_failure(cfg_teacher, results_dir)
    if failed is not None:
        raise ArtifactError(f"the teacher {cfg_teacher.name} {failed.status} "
                            f"({failed.record.get('message', '')}); no student can distil from it")
    res = load_artifact(cfg_teacher, results_dir)
    model = MLP.of(cfg_teacher.spec)
    model.load_state_dict(read_torch(res.weights_path()))
    return model.to(device).eval()



def run_configs(configs: list[RunConfig], *, device="cpu", results_dir="results",
                force: bool = False, progress: bool = True, data: MNIST | None = None,
                data_root=None, verify_data: bool = True, log=print,
                allow_dirty: bool = False) -> list[RunResult | FailedRun]:
    """Load or train every config (teachers they need first); results in the given order.

    A run that diverges or collapses is a result (``FailedRun``, recorded on disk and loaded,
    not retried, unless ``force``); the members of its stack that were training well are
    trained again without it.

    Profile "full" runs are not trained from a working tree with uncommitted changes to
    kdlib/ (``kdlib.runs.provenance.DirtyTreeError``) unless ``allow_dirty``. A group of runs
    trains under an exclusive lock (``<results_dir>/checkpoints/<name>.lock``): a second
    process asked for the same runs waits, then loads what the first one wrote.
    """
    device = resolve_device(device)
    results: dict[RunConfig, RunResult] = {}
    pending: list[RunConfig] = []
    for cfg in configs:
        if not force:
            failed = load_failure(cfg, results_dir)
            if failed is not None:
                results[cfg] = failed
                continue
            try:
                results[cfg] = load_artifact(cfg, results_dir)
                continue
            except ArtifactError as e:
                if artifact_path(cfg, results_dir).exists():
                    log(f"kdlib: {e}; retraining")
        pending.append(cfg)
    if pending:
        full = [c.name for c in pending if c.profile == "full"]
        if full and not allow_dirty:
            check_clean_tree(f"profile 'full' runs ({', '.join(full[:5])}"
                             f"{', ...' if len(full) > 5 else ''})")
        check_writable(Path(results_dir) / "checkpoints")
        if data is None:
            data = load_mnist(data_root, device=device, verify=verify_data)
        data = data.to(device)
        teachers = {teacher_config_of(c) for c in pending if c.teacher_seed is not None}
        missing = [t for t in teachers if t not in pending]
        if missing:
            run_configs(sorted(missing, key=lambda c: c.name), device=device,
                        results_dir=results_dir, force=False, progress=progress, data=data, log=log,
                        allow_dirty=allow_dirty)
        groups: dict = {}
        for cfg in pending:
            groups.setdefault(cfg.group_key(), []).append(cfg)
        # teachers first, since students of this same call may need them
        for _, group in sorted(groups.items(), key=lambda kv: kv[1][0].teacher_seed is not None):
            for cfg, res in zip(group, _train_group_locked(group, data, device, results_dir,
                                                           progress, log, force)):
                results[cfg] = res
    return [results[c] for c in configs]


def _train_group_locked(group: list[RunConfig], data: MNIST, device, results_dir, progress, log,
                        force: bool) -> list[RunResult]:
    """``_train_group`` under the group's lock; what another process wrote meanwhile is loaded."""
    lock = checkpoint_path(group, results_dir).with_suffix(".lock")
    names = ", ".join(c.name for c in group)
    asked = time.time()

    def waiting(holder):
        log(f"kdlib: waiting for {names}: process {holder} is training them (lock {lock})")

    with exclusive_lock(lock, waiting) as waited:
        done = {}
        if waited or not force:
            for cfg in group:
                try:
                    res = load_artifact(cfg, results_dir)
                except ArtifactError:
                    continue
                if not force or res.path.stat().st_mtime >= asked - 1:  # force: only fresh ones
                    done[cfg] = res
        rest = [c for c in group if c not in done]
        if done:
            log(f"kdlib: {', '.join(c.name for c in done)}: written by another process; loaded")
        if rest == group:
            trained = _train_or_record(group, data, device, results_dir, progress, log)
        else:
            trained = _train_group_locked(rest, data, device, results_dir, progress, log, force) \
                if rest else []
    done.update(zip(rest, trained))
    return [done[c] for c in group]


def _train_or_record(group: list[RunConfig], data: MNIST, device, results_dir, progress, log):
    """``_train_group``; members that diverge or collapse are recorded, the rest trained again
    as a stack of their own (a stack computes what separate runs would)."""
    try:
        return _train_group(group, data, device, results_dir, progress, log)
    except TrainingFailed as e:
        failed = set(e.members) or set(range(len(group)))
        out = {k: _record_failure(group[k], results_dir, e, log) for k in failed}
        rest = [k for k in range(len(group)) if k not in failed]
        if rest:
            log(f"kdlib: training again without the failed runs: {', '.join(group[k].name for k in rest)}")
            out.update(zip(rest, _train_or_record([group[k] for k in rest], data, device,
                                                  results_dir, progress, log)))
        return [out[k] for k in range(len(group))]


def _train_group(group: list[RunConfig], data: MNIST, device, results_dir, progress, log):
    first = group[0]
    tr_x, tr_y, te_x, te_y = _splits(data, first)
    mask = transfer_mask(tr_y, first.transfer)
    tr_x, tr_y = tr_x[mask], tr_y[mask]
    teacher_logits = teacher = None
    if first.teacher_seed is not None:
        teacher = load_teacher(teacher_config_of(first), results_dir, device)
        teacher_logits = predict_logits(teacher, tr_x)[0]  # cached once, un-jittered
    labels_batches = teacher if first.spec.jitter and teacher is not None else None
    names = ", ".join(c.name for c in group)
    log(f"kdlib: training {first.experiment} [{names}] on {len(tr_x)} examples, "
        f"{first.spec.epochs} epochs, device {device}")
    ckpt = checkpoint_path(group, results_dir)
    result = train(tr_x, tr_y, first.spec, [c.member for c in group],
                   teacher_logits=None if labels_batches is not None else teacher_logits,
                   teacher=labels_batches, eval_images=te_x, eval_labels=te_y,
                   checkpoint_path=ckpt, progress=progress, desc=f"{first.experiment} ({len(group)})")
    logits = predict_logits(result.model, te_x)  # (K, N, C)
    train_logits = None
    if first.transfer != "all":  # every training image, also those left out of the transfer set
        train_logits = predict_logits(result.model, _splits(data, first)[0])
    out = []
    for k, cfg in enumerate(group):
        history = {"train_loss": [e[k] for e in result.history["train_loss"]],
                   "test_errors": [e[k] for e in result.history["test_errors"]],
                   "clipped_share": [e[k] for e in result.history.get("clipped_share", [])]}
        weights = ({n: p.detach().cpu().clone() for n, p in result.model.member(k).state_dict().items()}
                   if cfg.store_weights else None)
        extra = {"transfer_set_size": int(len(tr_x)), "stacked_with": len(group),
                 "resumed_from_epoch": result.resumed_from_epoch,
                 "compute_dtype": result.compute_dtype, "compiled_update": result.compiled_update}
        if teacher_logits is not None:
            extra["teacher_transfer_errors"] = int(count_errors(teacher_logits, tr_y))
        res = _save_artifact(cfg, results_dir, logits[k], te_y, history,
                             result.wall_time / len(group), device, weights, extra,
                             None if train_logits is None else train_logits[k])
        log(f"kdlib: {cfg.name}: {res.test_errors} test errors -> {res.path}")
        out.append(res)
    ckpt.unlink(missing_ok=True)
    return out


def checkpoint_path(group: list[RunConfig], results_dir) -> Path:
    """Where the runs of ``group``, trained together, keep their checkpoint."""
    return (Path(results_dir) / "checkpoints"
            / f"{group[0].experiment}-{fingerprint([c.hash for c in group])}.pt")


def training_progress(cfg: RunConfig, results_dir) -> dict | None:
    """Epochs done and per-epoch history of ``cfg`` while it trains alone, from its checkpoint.

    For long runs (the paper's teacher) that span sessions: ``{"epoch", "train_loss",
    "test_errors", "epochs"}`` with one value per epoch, or None when there is no checkpoint.
    """
    path = checkpoint_path([cfg], results_dir)
    if not path.exists():
        return None
    state = read_torch(path)
    history = state["history"]
    return {"epoch": int(state["epoch"]), "epochs": cfg.spec.epochs,
            "train_loss": [float(v[0]) for v in history["train_loss"]],
            "test_errors": [int(v[0]) for v in history["test_errors"]]}
