"""The experiment catalogue (kdlib.experiments): which runs each experiment makes."""
from kdlib.experiments import (HARD_WEIGHT, SWEEP_HARD_WEIGHT, TEACHER, TEACHER_BUDGET_EPOCHS,
                               TEMPERATURES, _teacher_config_of, configs_for)


def test_teacher_budget_distils_from_its_own_longer_teacher():
    teacher, student = configs_for("teacher_budget", "full", [0, 1])
    assert teacher.spec.epochs == TEACHER_BUDGET_EPOCHS > TEACHER.epochs
    assert teacher.store_weights and teacher.member.seed == 0   # the first seed only
    assert student.teacher_epochs == TEACHER_BUDGET_EPOCHS
    assert _teacher_config_of(student) == teacher
    recipe_teacher = configs_for("teacher", "full", [0])[0]
    assert teacher.hash != recipe_teacher.hash
    assert _teacher_config_of(configs_for("distilled", "full", [0])[0]) == recipe_teacher


def test_a_new_field_at_its_default_leaves_the_config_and_its_hash_alone():
    cfg = configs_for("distilled", "full", [0])[0]
    assert cfg.teacher_epochs is None and "teacher_epochs" not in cfg.to_dict()
    assert "teacher_epochs" in configs_for("teacher_budget", "full", [0])[1].to_dict()


def test_sweeps_cover_every_seed_and_keep_their_hard_weight():
    sweep = configs_for("temperature", "full", [0, 1, 2])
    assert len(sweep) == 3 * len(TEMPERATURES) * 3
    assert {c.member.hard_weight for c in sweep} == {SWEEP_HARD_WEIGHT}
    assert {c.member.hard_weight for c in configs_for("distilled", "full", [0])} == {HARD_WEIGHT}
    assert {c.member.seed for c in configs_for("hard_weight", "full", [0, 1, 2])} == {0, 1, 2}
    assert {c.member.seed for c in configs_for("hard_weight", "full", [0, 1, 2], True)} == {0}
