"""The student-recipe search (kdlib.search): its grids, recipes, and failures kept as results."""
import pytest

import kdlib.experiments as kexp
from kdlib import search
from kdlib.checks import TrainingDiverged
from kdlib.recipes import Optimiser, student_recipe


def test_stage_one_brackets_wide_learning_rate_grids_for_each_family():
    lrs = {}
    for s in search.STAGE1:
        lrs.setdefault(s.family, []).append(s.lr)
    assert set(lrs) == {"sgd", "adam", "hinton2012"}
    assert min(lrs["sgd"]) <= 1e-3 and max(lrs["sgd"]) >= 1e-1  # at least 1e-3 .. 1e-1
    assert min(lrs["adam"]) <= 1e-4 and max(lrs["adam"]) >= 3e-3  # at least 1e-4 .. 3e-3
    assert {0.0, 0.01, 0.03, 0.1, 0.3, 1.0} <= set(search.HARD_WEIGHTS)
    assert search.LONG_EPOCHS >= 500 and len(search.SEARCH_SEEDS) >= 2


def test_every_search_run_is_a_distinct_validation_run_from_the_validation_teacher():
    configs = search.stage_configs(1)
    assert len({c.hash for c in configs}) == len({c.name for c in configs}) == len(configs)
    assert all(c.validation and c.teacher_seed == 0 and c.member.temperature == 20.0
               and c.spec.max_grad_norm is None and c.protocol == search.SEARCH_PROTOCOL
               for c in configs)
    with pytest.raises(ValueError, match="validation split only"):
        search.search_configs(validation=False)


def test_families_build_their_own_recipes():
    sgd = student_recipe(Optimiser("sgd", 0.01), 30)
    adam = student_recipe(Optimiser("adam", 1e-3), 30)
    hinton = student_recipe(Optimiser("hinton2012", 1.0), 30)
    assert (sgd.optimizer, sgd.schedule, sgd.lr) == ("sgd", "cosine", 0.01)
    assert (adam.optimizer, adam.schedule) == ("adam", "cosine")
    assert (hinton.schedule, hinton.momentum, hinton.momentum_final, hinton.batch_size) == \
        ("hinton2012", 0.5, 0.99, 100)
    assert hinton.input_dropout == hinton.hidden_dropout == 0 and hinton.max_norm is None
    with pytest.raises(ValueError, match="unknown optimiser family 'rmsprop'"):
        student_recipe(Optimiser("rmsprop", 1e-3), 30)


def test_a_run_that_diverges_is_recorded_not_hidden(tmp_path, monkeypatch):
    cfg = search.search_config(search.STAGE1[0], 0.1, 3, 0, profile="smoke")

    def diverge(configs, **kwargs):
        raise TrainingDiverged("search: loss became NaN/inf in epoch 1")

    monkeypatch.setattr(kexp, "run_configs", diverge)
    (record,) = search.run_search([cfg], results_dir=tmp_path, log=lambda *a: None)
    assert record["status"] == "diverged" and record["errors"] is None
    assert search.failure_path(cfg, tmp_path).exists()
    # the record is read back, not retrained
    monkeypatch.setattr(kexp, "run_configs", lambda *a, **k: pytest.fail("retrained"))
    assert search.run_search([cfg], results_dir=tmp_path, log=lambda *a: None) == [record]


def test_best_rows_pick_the_fewest_mean_errors_and_say_whether_the_grid_brackets_them():
    rows = [{"stage": 1, "family": "sgd", "lr": lr, "mean": m, "status": s, "hard_weight": 0.1}
            for lr, m, s in ((0.001, 200, "done"), (0.01, 140, "done"), (0.1, None, "diverged"))]
    rows += [{"stage": 1, "family": "adam", "lr": lr, "mean": m, "status": "done", "hard_weight": 0.1}
             for lr, m in ((1e-4, 180), (1e-3, 150))]
    # a hard-labels-only reference (hard weight None) is never a candidate
    rows += [{"stage": 1, "family": "adam", "lr": 1e-3, "mean": 100, "status": "done",
              "hard_weight": None}]
    best = search.best_rows(rows, 1)
    assert [(r["family"], r["lr"], r["bracketed"]) for r in best] == \
        [("sgd", 0.01, True), ("adam", 1e-3, False)]
