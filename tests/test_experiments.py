"""The experiment catalogue (kdlib.recipes): which runs each experiment makes, per profile."""
import hashlib

from kdlib.recipes import (DEFAULT_SEEDS, EXPERIMENTS, HARD_WEIGHT, PROFILES, SWEEP_HARD_WEIGHT,
                           TEACHER, TEACHER_BUDGET_EPOCHS, TEMPERATURES, configs_for,
                           teacher_config_of)


def test_teacher_budget_distils_from_its_own_longer_teacher():
    teacher, student = configs_for("teacher_budget", "full", [0, 1])
    assert teacher.spec.epochs == TEACHER_BUDGET_EPOCHS > TEACHER.epochs
    assert teacher.store_weights and teacher.member.seed == 0   # the first seed only
    assert student.teacher_epochs == TEACHER_BUDGET_EPOCHS
    assert teacher_config_of(student) == teacher
    recipe_teacher = configs_for("teacher", "full", [0])[0]
    assert teacher.hash != recipe_teacher.hash
    assert teacher_config_of(configs_for("distilled", "full", [0])[0]) == recipe_teacher


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


#: sha256 (16 hex digits) of the sorted "name:config hash" of every run of an experiment, seeds
#: 0, 1, 2, computed before profiles became a table of budgets (issue 13). A recipe or
#: profile change that alters any run's config (and so orphans its artifact) fails here.
PINNED_CONFIG_HASHES = {
    "smoke/teacher/test": "8cb6925b6b629af9",
    "smoke/teacher/validation": "aed8ae241755fea4",
    "smoke/student/test": "57e6e988d1d6de9d",
    "smoke/student/validation": "ba94e7a23ef86a09",
    "smoke/distilled/test": "b43d6e0c70ff726c",
    "smoke/distilled/validation": "4fdefe1b4b8322d9",
    "smoke/temperature/test": "1345e86af405c0c5",
    "smoke/temperature/validation": "a8075343d618ea19",
    "smoke/hard_weight/test": "8be2af7d1eb2c651",
    "smoke/hard_weight/validation": "4d7cdc21f1ad8d8b",
    "smoke/omit3/test": "a08453e568b7c55d",
    "smoke/omit3/validation": "ce43f03b267cd29a",
    "smoke/only78/test": "11e4055fc2f1ca55",
    "smoke/only78/validation": "29d8fb725f4b9353",
    "smoke/teacher_budget/test": "70e65c9640c6c5ad",
    "smoke/teacher_budget/validation": "12f3351c99dc9d19",
    "smoke/paper_teacher/test": "8c396f4b2a598f60",
    "smoke/paper_teacher/validation": "2089a58f57a59dc4",
    "full/teacher/test": "25292ddd71f0b23c",
    "full/teacher/validation": "23f84f125f1a5ae3",
    "full/student/test": "5d761c8075ce9e4d",
    "full/student/validation": "5ae523f4b428df61",
    "full/distilled/test": "0cde08816d584108",
    "full/distilled/validation": "b59118d8edd1075a",
    "full/temperature/test": "4dc9ba77bf5e2dff",
    "full/temperature/validation": "c058f5597281eced",
    "full/hard_weight/test": "e2bd6f0abae8def9",
    "full/hard_weight/validation": "3150c3674940e784",
    "full/omit3/test": "c8f63ef417b2b6d0",
    "full/omit3/validation": "951b161d49d27c10",
    "full/only78/test": "3ba9c25b3b26b75b",
    "full/only78/validation": "e161bca5f0e441c5",
    "full/teacher_budget/test": "6e837133f1f45ea0",
    "full/teacher_budget/validation": "2862eca417c0d217",
    "full/paper_teacher/test": "5e10fa11c1a2a578",
    "full/paper_teacher/validation": "edf50fb1283e47f1",
}


def test_every_experiments_config_hashes_are_pinned_for_both_profiles():
    """Section 3's experiments (issue 15's studies, kdlib.beyond, are pinned by their own tests)."""
    from kdlib.beyond import CONFIGS as STUDIES
    got = {}
    for profile in PROFILES:
        for name in (n for n in EXPERIMENTS if n not in STUDIES):
            for validation in (False, True):
                runs = sorted(f"{c.name}:{c.hash}"
                              for c in configs_for(name, profile, DEFAULT_SEEDS, validation))
                key = f"{profile}/{name}/{'validation' if validation else 'test'}"
                got[key] = hashlib.sha256(" ".join(runs).encode()).hexdigest()[:16]
    assert got == PINNED_CONFIG_HASHES
