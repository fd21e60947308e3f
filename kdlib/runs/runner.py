"""Load or train whole experiments: Section 3's (``run_experiment``), the studies of chapters 7-9
(``run_study``; ``kdlib.runs.studies``) and the recipe search (``run_search``;
``kdlib.runs.search``); ``python -m kdlib`` calls them.

A study is run like ``experiments.run_configs``: a run whose artifact matches its config is
loaded, the others are trained (teachers and generalists they need first, through
``run_configs``) under a lock, and full-profile runs refuse a dirty ``kdlib/`` unless
``allow_dirty``. Students of one
transfer set and one teacher train as one stack (``kdlib.core.train``); specialists, whose output
layer has its own size, train through the same loop from their generalist's weights
(``train(initial=...)``), with its checks and checkpoints.
"""
from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import torch

from ..core.data import MNIST, load_mnist
from ..core.ensembles import ensemble_teacher_logits
from ..core.io import ArtifactError, exclusive_lock
from ..core.specialists import (
    confusable_groups,
    dustbin_correction,
    dustbin_labels,
    enriched_indices,
    specialist_from_generalist,
)
from ..core.subsets import stratified_subset
from ..core.train import predict_logits, resolve_device, train
from ..core.transfer import TransferSet
from . import studies
from . import experiments as ex
from .catalogue import configs_for
from .provenance import check_clean_tree
from .recipes import DEFAULT_SEEDS, RunConfig


def _pending(configs, results_dir, force, log):
    done, pending = {}, []
    for cfg in configs:
        try:
            if force:
                raise ArtifactError("forced")
            done[cfg] = ex.load_artifact(cfg, results_dir)
        except ArtifactError as e:
            if not force and ex.artifact_path(cfg, results_dir).exists():
                log(f"kdlib: {e}; retraining")
            pending.append(cfg)
    return done, pending


def run_study(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS, *, device="cpu",
              results_dir="results", force: bool = False, progress: bool = True,
              data: MNIST | None = None, data_root=None, verify_data: bool = True, log=print,
              allow_dirty: bool = False, validation: bool = False) -> list[ex.RunResult]:
    """Every run of a study (``kdlib.runs.studies.CONFIGS``), loaded or trained, in config order."""
    if experiment not in studies.CONFIGS:
        raise ValueError(f"unknown study {experiment!r}; choose one of {', '.join(studies.CONFIGS)}")
    if validation:
        raise ValueError(f"{experiment}: the studies run on the test split only")
    configs = configs_for(experiment, profile, seeds)
    device = resolve_device(device)
    done, pending = _pending(configs, results_dir, force, log)
    if pending:
        if profile == "full" and not allow_dirty:
            check_clean_tree(f"profile 'full' runs of {experiment}")
        data = (data or load_mnist(data_root, device=device, verify=verify_data)).to(device)
        opts = dict(device=device, results_dir=results_dir, progress=progress, log=log,
                    allow_dirty=allow_dirty, data=data)
        done.update(_TRAINERS[experiment](pending, **opts))
    return [done[c] for c in configs]


def run_experiment(experiment: str, profile: str = "full", seeds=DEFAULT_SEEDS, *,
                   validation: bool = False, max_grad_norm: float | None = None, **kwargs):
    """Load or train every run of a named experiment; see ``run_configs`` for options.

    ``max_grad_norm`` clips the gradient of every student that learns from a teacher (README
    "Your own data": a teacher with large logits); such runs are other configs than the
    recipe's, with artifacts of their own.
    """
    configs = configs_for(experiment, profile, seeds, validation)
    if max_grad_norm is not None:
        configs = [replace(c, spec=replace(c.spec, max_grad_norm=max_grad_norm))
                   if c.teacher_seed is not None else c for c in configs]
    return ex.run_configs(configs, **kwargs)


def run_search(configs, *, results_dir="results", log=print, **kwargs) -> list[dict]:
    """Load or train the configs (those of one student and teacher stacked); a run that
    diverges or collapses is recorded as such (``kdlib.runs.experiments.FailedRun``).

    Returns one record per config: ``{"name", "status": "done"|"diverged"|"collapsed",
    "errors": final validation errors or None, "curve": errors after each epoch}``.
    """
    return [r.record if isinstance(r, ex.FailedRun) else
            {"name": r.config["name"], "status": "done", "errors": r.test_errors,
             "curve": r.metrics["test_errors_curve"]}
            for r in ex.run_configs(list(configs), results_dir=results_dir, log=log, **kwargs)]


def seed_groups(generalist_train_logits, ks, seed: int) -> dict[int, list[tuple]]:
    """{k: the k confusable groups} of one generalist (K-means seeded with the run's seed)."""
    return {k: confusable_groups(generalist_train_logits, k, studies.GROUP_TEMPERATURE, seed) for k in ks}


def _teachers(configs, **opts) -> dict[str, torch.nn.Module]:
    """{ref: model} of the teachers (or generalists) named in ``sources``, trained if missing."""
    wanted = {studies.ref(t): t for c in configs for t in _all_teachers(c)}
    wanted = {k: v for k, v in wanted.items() if k in {s for c in configs for s in c.sources}}
    runs = ex.run_configs(list(wanted.values()), device=opts["device"], results_dir=opts["results_dir"],
                          progress=opts["progress"], data=opts["data"], log=opts["log"],
                          allow_dirty=opts["allow_dirty"])
    return {k: ex.load_teacher(cfg, opts["results_dir"], opts["device"]) for (k, cfg), _ in
            zip(wanted.items(), runs)}


def _all_teachers(cfg) -> list[RunConfig]:
    if cfg.experiment == "specialists":
        return studies.generalist_configs(cfg.profile, [cfg.member.seed])
    seeds = {s for b in studies.STUDY_BUDGETS.values() for s in b.ensemble_seeds} | {cfg.member.seed}
    return studies.study_teacher_configs(cfg.profile, sorted(seeds))


def _locked(group, results_dir, log, train_fn):
    """``train_fn(rest)`` under the group's lock for the runs no other process has written."""
    lock = ex.checkpoint_path(group, results_dir).with_suffix(".lock")
    with exclusive_lock(lock, lambda pid: log(f"kdlib: waiting for process {pid} ({lock})")):
        done, rest = _pending(group, results_dir, False, lambda m: None)
        if rest:
            done.update(zip(rest, train_fn(rest)))
    return done


def _train_stack(group, images, labels, teacher_logits, data, curve, **opts):
    """Train ``group`` (one spec, transfer set and teacher) as one stack and save each run."""
    first, device, results_dir = group[0], opts["device"], opts["results_dir"]
    te_x, te_y = data.test_images, data.test_labels
    ckpt = ex.checkpoint_path(group, results_dir)
    opts["log"](f"kdlib: training {first.experiment} [{', '.join(c.name for c in group)}] on "
                f"{len(images)} examples, {first.spec.epochs} epochs, device {device}")
    every = studies.curve_every(first)
    result = train(images, labels, first.spec, [c.member for c in group], teacher_logits=teacher_logits,
                   eval_images=te_x[curve], eval_labels=te_y[curve], checkpoint_path=ckpt,
                   progress=opts["progress"], desc=f"{first.experiment} ({len(group)})",
                   eval_every=every)
    logits = predict_logits(result.model, te_x)
    out = []
    for k, cfg in enumerate(group):
        history = {key: [e[k] for e in result.history[key]] for key in ("train_loss", "test_errors")}
        extra = {"transfer_set_size": len(images), "stacked_with": len(group),
                 "curve_test_images": int(len(curve)), "curve_every_epochs": every,
                 "sources": list(cfg.sources)}
        res = ex._save_artifact(cfg, results_dir, logits[k], te_y, history,
                                result.wall_time / len(group), device, None, extra)
        opts["log"](f"kdlib: {cfg.name}: {res.test_errors} test errors -> {res.path}")
        out.append(res)
    ckpt.unlink(missing_ok=True)
    return out


def _train_soft_targets(pending, data, **opts):
    teachers = _teachers(pending, data=data, **opts)
    tr_x, tr_y, _, te_y = ex._splits(data, pending[0])
    curve = stratified_subset(te_y.cpu(), studies.CURVE_TEST_SHARE, 0).to(te_y.device)
    groups: dict = {}
    for cfg in pending:
        groups.setdefault((cfg.transfer, cfg.member.seed), []).append(cfg)
    done = {}
    for (transfer, seed), group in groups.items():
        idx = stratified_subset(tr_y.cpu(), studies.subset_fraction(transfer), seed).to(tr_y.device)
        sources = [c.sources[0] for c in group if c.sources]
        teacher_logits = predict_logits(teachers[sources[0]], tr_x[idx])[0] if sources else None
        done.update(_locked(group, opts["results_dir"], opts["log"], partial(
            _train_stack, images=tr_x[idx], labels=tr_y[idx], teacher_logits=teacher_logits,
            data=data, curve=curve, **opts)))
    return done


def _train_ensemble(pending, data, **opts):
    teachers = _teachers(pending, data=data, **opts)
    tr_x, tr_y, _, te_y = ex._splits(data, pending[0])
    curve = torch.arange(len(te_y), device=te_y.device)
    groups: dict = {}
    for cfg in pending:
        groups.setdefault(cfg.sources, []).append(cfg)
    done = {}
    for sources, group in groups.items():
        member_logits = torch.cat([predict_logits(teachers[s], tr_x) for s in sources])
        t_logits = ensemble_teacher_logits(member_logits, studies.DISTILL_TEMPERATURE) \
            if len(sources) > 1 else member_logits[0]
        done.update(_locked(group, opts["results_dir"], opts["log"], partial(
            _train_stack, images=tr_x, labels=tr_y, teacher_logits=t_logits, data=data,
            curve=curve, **opts)))
    return done


# ----------------------------------------------------------------------------- specialists
def _train_specialists(pending, data, **opts):
    specs = [c for c in pending if isinstance(c, studies.StudyConfig)]
    rest = [c for c in pending if c not in specs]  # generalists: an ordinary run
    done = dict(zip(rest, ex.run_configs(rest, data=data, **opts))) if rest else {}
    generalists = _teachers(specs, data=data, **opts)
    tr_x, tr_y, te_x, te_y = ex._splits(data, pending[0])
    for cfg in specs:
        gen = generalists[cfg.sources[0]]
        done.update(_locked([cfg], opts["results_dir"], opts["log"], partial(
            _one_specialist, generalist=gen, tr_x=tr_x, tr_y=tr_y, te_x=te_x, te_y=te_y, **opts)))
    return done


def _one_specialist(rest, generalist, tr_x, tr_y, te_x, te_y, **opts):
    [cfg] = rest
    t = TransferSet.parse(cfg.transfer)
    k, j = t.clusters, t.group
    groups = seed_groups(predict_logits(generalist, tr_x)[0], [k], cfg.member.seed)[k]
    if j >= len(groups):
        raise RuntimeError(f"{cfg.name}: K-means gave {len(groups)} non-empty groups for k = {k}")
    classes = groups[j]
    idx = enriched_indices(tr_y.cpu(), classes, cfg.member.seed).to(tr_y.device)
    start = specialist_from_generalist(generalist, classes)
    result = train(tr_x[idx], dustbin_labels(tr_y[idx], classes), cfg.spec, [cfg.member],
                   initial=start, eval_images=te_x, eval_labels=dustbin_labels(te_y, classes),
                   checkpoint_path=ex.checkpoint_path([cfg], opts["results_dir"]),
                   progress=opts["progress"], desc=cfg.name)
    model, wall = result.model, result.wall_time
    history = {key: [e[0] for e in result.history[key]] for key in ("train_loss", "test_errors")}
    special = torch.isin(tr_y, torch.tensor(classes, device=tr_y.device))
    correction = dustbin_correction(float(special.float().mean()), float(special[idx].float().mean()))
    extra = {"classes": list(classes), "dustbin_correction": correction, "groups_k": k,
             "transfer_set_size": int(len(idx)), "sources": list(cfg.sources)}
    res = ex._save_artifact(cfg, opts["results_dir"], predict_logits(model, te_x)[0],
                            dustbin_labels(te_y, classes), history, wall, opts["device"], None, extra)
    opts["log"](f"kdlib: {cfg.name} {classes}: {res.test_errors} errors of its {len(classes) + 1}-way "
                f"task -> {Path(res.path)}")
    return [res]


_TRAINERS = {"soft_targets": _train_soft_targets, "ensemble": _train_ensemble,
             "specialists": _train_specialists}
