"""The student-recipe search (kdlib.runs.search): its grids, recipes, and failures kept as results."""
import pytest
import torch

import kdlib.runs.experiments as kexp
from kdlib.analysis import search_results
from kdlib.runs import runner, search
from kdlib.core.checks import TrainingDiverged
from kdlib.runs.recipes import Optimiser, student_recipe
from kdlib.core.spec import Member


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
               and c.spec.max_grad_norm is None
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


def test_a_member_that_diverges_is_recorded_and_the_rest_of_its_stack_trains_again(tmp_path,
                                                                                    monkeypatch):
    cfgs = [search.search_config(search.STAGE1[0], hw, 3, 0, profile="smoke") for hw in (0.1, 1e6)]
    calls = []

    def train_group(group, *args):
        calls.append([c.name for c in group])
        if len(group) == 2:  # the second member's loss became NaN; the first was training well
            raise TrainingDiverged("search: loss became NaN/inf in epoch 1", [1])
        return [kexp.RunResult(c.to_dict(), {"test_errors": 123, "test_errors_curve": [123]},
                               {}, tmp_path / f"{c.name}.json") for c in group]

    monkeypatch.setattr(kexp, "_train_group", train_group)
    monkeypatch.setattr(kexp, "load_mnist", lambda *a, **k: kexp.MNIST(*[torch.zeros(1)] * 4))
    monkeypatch.setattr(kexp.MNIST, "to", lambda self, device: self)
    monkeypatch.setattr(kexp, "teacher_config_of", lambda c: cfgs[0])  # "already trained"
    done, failed = runner.run_search(cfgs, results_dir=tmp_path, log=lambda *a: None)
    assert calls == [[c.name for c in cfgs], [cfgs[0].name]]
    assert (done["status"], done["errors"]) == ("done", 123)
    assert failed["status"] == "diverged" and failed["errors"] is None
    assert kexp.failure_path(cfgs[1], tmp_path).exists()
    assert kexp.load_failure(cfgs[0], tmp_path) is None
    # the failure is read back, not retrained
    monkeypatch.setattr(kexp, "_train_group", lambda *a: pytest.fail("retrained"))
    assert kexp.run_configs([cfgs[1]], results_dir=tmp_path, log=lambda *a: None)[0].record == failed


def test_divergence_and_collapse_name_the_members_that_failed():
    from kdlib.core.checks import TrainingCollapsed, check_collapse, check_divergence
    w = torch.zeros(3, 4, 5)
    w[2, 0, 0] = float("nan")
    with pytest.raises(TrainingDiverged) as e:
        check_divergence([w, torch.zeros(3, 1, 5)], [0.1, float("inf"), 0.2], 4, "t", None)
    assert e.value.members == [1, 2]
    labels = torch.arange(10).repeat(20)
    preds = torch.stack([labels, torch.full_like(labels, 3), labels])
    with pytest.raises(TrainingCollapsed) as e:
        check_collapse(preds, labels, labels, 5, "test", [Member(seed=s) for s in range(3)], "t", None)
    assert e.value.members == [1]


def test_best_rows_pick_the_fewest_mean_errors_and_say_whether_the_grid_brackets_them():
    rows = [{"stage": 1, "family": "sgd", "lr": lr, "mean": m, "status": s, "hard_weight": 0.1}
            for lr, m, s in ((0.001, 200, "done"), (0.01, 140, "done"), (0.1, None, "diverged"))]
    rows += [{"stage": 1, "family": "adam", "lr": lr, "mean": m, "status": "done", "hard_weight": 0.1}
             for lr, m in ((1e-4, 180), (1e-3, 150))]
    # a hard-labels-only reference (hard weight None) is never a candidate
    rows += [{"stage": 1, "family": "adam", "lr": 1e-3, "mean": 100, "status": "done",
              "hard_weight": None}]
    best = search_results.best_rows(rows, 1)
    assert [(r["family"], r["lr"], r["bracketed"]) for r in best] == \
        [("sgd", 0.01, True), ("adam", 1e-3, False)]


def test_the_label_recipe_waits_for_its_stage_then_picks_the_fewest_mean_errors():
    def row(family, lr, epochs, mean, status="done"):
        return {"stage": 5, "family": family, "lr": lr, "epochs": epochs, "mean": mean,
                "status": status, "hard_weight": None}
    rows = [row("sgd", 0.01, 120, 150), row("sgd", 0.1, 120, 140), row("sgd", 0.3, 120, None, "diverged"),
            row("adam", 3e-3, 120, 145), row("sgd", 0.1, 30, None, "running")]
    assert search_results.label_recipe(rows) is None  # a setting still running: no choice yet
    rows[-1] = row("sgd", 0.1, 30, 160)
    best = search_results.label_recipe(rows)
    assert (best["family"], best["lr"], best["epochs"], best["bracketed"]) == ("sgd", 0.1, 120, True)
    rows.append(row("adam", 3e-3, 30, 130))  # one rate only: not bracketed
    best = search_results.label_recipe(rows)
    assert (best["family"], best["epochs"], best["bracketed"]) == ("adam", 30, False)
    names = [c.name for c in search.stage_configs(5)]
    assert names[:2] == ["sgd-lr0.01-hard-e30-s0", "sgd-lr0.01-hard-e30-s1"]
    assert all(c.validation and c.teacher_seed is None for c in search.stage_configs(5))
