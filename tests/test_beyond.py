"""Configs of the studies of chapters 7-9 (kdlib.runs.studies): what each run is, and that a changed teacher
makes its students' artifacts stale."""
from dataclasses import replace

import pytest

from kdlib.runs import studies as bd
from kdlib.runs.student_recipe import RECIPE
from kdlib.runs.catalogue import EXPERIMENTS, configs_for


def test_registered_and_sized():
    assert {"soft_targets", "ensemble", "specialists"} <= set(EXPERIMENTS)
    assert len(configs_for("soft_targets", "full")) == 4 * 2 * 3
    assert len(configs_for("ensemble", "full")) == 2 * 3
    assert len(configs_for("specialists", "full")) == 3 + 3 * (3 + 4 + 5)


def test_soft_targets_pairs_differ_only_in_the_loss_and_keep_the_updates():
    """With the book's student recipe (hard weight, student epochs) and teacher."""
    # 1/f times the epochs: 120 -> 4000 at 3%, warm-up 2 -> 67
    p = RECIPE
    runs = {c.name: c for c in configs_for("soft_targets", "full")}
    hard, soft = runs["f3-hard-s1"], runs["f3-soft-s1"]
    assert hard.spec == soft.spec and hard.transfer == soft.transfer == "subset:0.03"
    assert hard.spec.epochs == 4000 and hard.spec.warmup_epochs == 67
    assert hard.member.soft_weight == 0 and soft.member.temperature == 20
    assert soft.member.hard_weight == p.hard_weight
    assert bd.curve_every(soft) == 33 and bd.curve_every(runs["f100-soft-s1"]) == 1
    teacher = bd.study_teacher_configs("full", [1])[0]
    assert soft.sources == (bd.ref(teacher),) and hard.sources == ()
    assert teacher.experiment == "paper_teacher"
    assert runs["f100-hard-s0"].spec.epochs == p.student_epochs == 120
    assert hard.spec.max_grad_norm is None


def test_ensemble_students_name_their_teachers():
    runs = {c.name: c for c in configs_for("ensemble", "full", [0, 1, 2])}
    teachers = bd.study_teacher_configs("full", [0, 1, 2])
    assert runs["from-ensemble3-s2"].sources == tuple(bd.ref(t) for t in teachers)
    assert runs["from-teacher-s2"].sources == (bd.ref(teachers[2]),)
    assert len(bd.ensemble_members("smoke")) == 2


def test_a_changed_source_changes_the_hash():
    cfg = configs_for("ensemble", "full", [0])[0]
    assert replace(cfg, sources=("teacher/other@0",)).hash != cfg.hash


def test_specialists_start_from_a_stored_generalist():
    cfgs = configs_for("specialists", "full", [0])
    gen = cfgs[0]
    assert gen.name == "generalist-s0" and gen.store_weights
    assert [c.transfer for c in cfgs[1:4]] == ["specialist:k3g0", "specialist:k3g1", "specialist:k3g2"]
    assert all(c.sources == (bd.ref(gen),) for c in cfgs[1:])
    assert cfgs[1].spec.epochs == 10 and cfgs[1].spec.jitter == 2
    assert configs_for("specialists", "smoke", [0])[1].spec.epochs == 1


def test_scaled_spec_rejects_unknown_profiles():
    with pytest.raises(ValueError, match="profile"):
        bd.scaled_spec(bd.SPECIALIST, "huge")


