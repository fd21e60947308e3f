"""The experiment catalogue (kdlib.recipes): which runs each experiment makes, per profile."""
import hashlib

import pytest

from kdlib.protocols import (HARD_WEIGHTS_WIDE, LOW_HARD_WEIGHT, PROTOCOLS, STUDENT_EPOCH_GRID,
                             use_protocol)
from kdlib.recipes import (DEFAULT_SEEDS, EXPERIMENTS, HARD_WEIGHT, PAPER_TEACHER, PROFILES,
                           STUDENT, SWEEP_HARD_WEIGHT, TEACHER, TEACHER_BUDGET_EPOCHS, TEMPERATURES,
                           configs_for, teacher_config_of)


def test_teacher_budget_distils_from_its_own_longer_teacher():
    teacher, student = configs_for("teacher_budget", "full", [0, 1])
    assert teacher.spec.epochs == TEACHER_BUDGET_EPOCHS > TEACHER.epochs
    assert teacher.store_weights and teacher.member.seed == 0   # the first seed only
    assert student.teacher_epochs == TEACHER_BUDGET_EPOCHS
    assert teacher_config_of(student) == teacher
    recipe_teacher = configs_for("teacher", "full", [0])[0]
    assert teacher.hash != recipe_teacher.hash
    with use_protocol(1):  # the recipe's student learns from the 60-epoch recipe teacher
        assert teacher_config_of(configs_for("distilled", "full", [0])[0]) == recipe_teacher


def test_a_new_field_at_its_default_leaves_the_config_and_its_hash_alone():
    cfg = configs_for("distilled", "full", [0])[0]
    assert cfg.teacher_epochs is None and "teacher_epochs" not in cfg.to_dict()
    assert "teacher_epochs" in configs_for("teacher_budget", "full", [0])[1].to_dict()


def test_sweeps_cover_every_seed_and_keep_their_hard_weight():
    """Under each protocol the temperature sweep keeps its a-priori hard weight, the distilled
    recipe has the protocol's, and the validation sweep that chose it ran seed 0 (protocol 1)
    or every seed (protocol 2)."""
    for number, chosen_on in ((1, {0}), (2, {0, 1, 2})):
        with use_protocol(number) as p:
            sweep = configs_for("temperature", "full", [0, 1, 2])
            assert len(sweep) == 3 * len(TEMPERATURES) * 3
            assert {c.member.hard_weight for c in sweep} == {SWEEP_HARD_WEIGHT}
            distilled = configs_for("distilled", "full", [0])
            assert {c.member.hard_weight for c in distilled} == {p.hard_weight}
            seeds = {c.member.seed for c in configs_for("hard_weight", "full", [0, 1, 2])}
            assert seeds == {0, 1, 2}
            chosen = configs_for("hard_weight", "full", [0, 1, 2], True)
            assert {c.member.seed for c in chosen} == chosen_on


#: sha256 (16 hex digits) of the sorted "name:config hash" of every run of an experiment, seeds
#: 0, 1, 2, under protocol 1, computed before profiles became a table of budgets (issue 13). A
#: recipe or profile change that alters any run's config (and so orphans its artifact) fails here.
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
    "smoke/omitted_low_hw/test": "094fae26cff4cfd8",
    "smoke/omitted_low_hw/validation": "ac02817e4cdf2533",
    "smoke/soft_only/test": "2c81068a53b7446d",
    "smoke/soft_only/validation": "4742e0b6d3fb5717",
    "smoke/baseline/test": "bf2e755eae008641",
    "smoke/baseline/validation": "ad90ac0a845d43c1",
    "smoke/student_epochs/validation": "e3b0c44298fc1c14",  # none: protocol 1 fixed its epochs
    "full/omitted_low_hw/test": "039ebd377d0cdb19",
    "full/omitted_low_hw/validation": "59c5d06db4803477",
    "full/soft_only/test": "846b03b44c666e2f",
    "full/soft_only/validation": "99a91f4405142d7c",
    "full/baseline/test": "3b168c11e887c331",
    "full/baseline/validation": "5583389e7414641a",
    "full/student_epochs/validation": "e3b0c44298fc1c14",  # none: protocol 1 fixed its epochs
}
#: The same under protocol 2 (pinned when the book switched to it): every run that learns from
#: a teacher differs; the teachers, hard-label students, baselines and the teacher_budget study
#: (always protocol 1's) are the same runs as protocol 1's.
PINNED_CONFIG_HASHES_PROTOCOL_2 = {
    **PINNED_CONFIG_HASHES,
    "smoke/distilled/test": "270ed588df2cccbe",
    "smoke/distilled/validation": "8c2c93c185b3ba34",
    "smoke/temperature/test": "4d98e681e7800544",
    "smoke/temperature/validation": "e7771f4baa125dd6",
    "smoke/hard_weight/test": "472a1bc2c2bf8493",
    "smoke/hard_weight/validation": "003fb4396ab2e095",
    "smoke/omit3/test": "24ee1d1972867a86",
    "smoke/omit3/validation": "dca0e797a674ecc3",
    "smoke/only78/test": "068423b928dca71b",
    "smoke/only78/validation": "38a2f3ab2470898f",
    "smoke/omitted_low_hw/test": "ba15cec45fc21c2a",
    "smoke/omitted_low_hw/validation": "47816927401831ee",
    "smoke/soft_only/test": "0ac83cbe28a42b55",
    "smoke/soft_only/validation": "32c81cd0bccabd7d",
    "smoke/student_epochs/validation": "51b792997309bd8a",
    "full/distilled/test": "4d958665057ef1be",
    "full/distilled/validation": "23f5a3f50b98b659",
    "full/temperature/test": "2caab3d61b7a95dc",
    "full/temperature/validation": "a433a887c44a4f89",
    "full/hard_weight/test": "87290afdebc3f1fd",
    "full/hard_weight/validation": "a647423f132393c3",
    "full/omit3/test": "36a8ece97e2fdaca",
    "full/omit3/validation": "8a00817980aed8f3",
    "full/only78/test": "3aab4dd41ef0b9a1",
    "full/only78/validation": "b5287702301768c5",
    "full/omitted_low_hw/test": "31004c71c6e35c3c",
    "full/omitted_low_hw/validation": "d5f0b2d4708b9363",
    "full/soft_only/test": "b779028b9e9f48f4",
    "full/soft_only/validation": "edd66cbc0a20ec55",
    "full/student_epochs/validation": "e741ca61b3d05f57",
}


def _config_hashes() -> dict:
    """The digests of PINNED_CONFIG_HASHES for Section 3's experiments under the current
    protocol (issue 15's studies, kdlib.beyond, are pinned by their own tests)."""
    from kdlib.beyond import CONFIGS as STUDIES
    got = {}
    for profile in PROFILES:
        for name in (n for n in EXPERIMENTS if n not in STUDIES):
            for validation in (False, True):
                key = f"{profile}/{name}/{'validation' if validation else 'test'}"
                if name == "student_epochs" and not validation:
                    with pytest.raises(ValueError, match="validation split only"):
                        configs_for(name, profile, DEFAULT_SEEDS, validation)
                    continue
                runs = sorted(f"{c.name}:{c.hash}"
                              for c in configs_for(name, profile, DEFAULT_SEEDS, validation))
                got[key] = hashlib.sha256(" ".join(runs).encode()).hexdigest()[:16]
    return got


def test_every_experiments_config_hashes_are_pinned_for_both_profiles():
    """Every run of each protocol keeps its pinned config hash, whichever protocol is reported."""
    for number, pinned in ((1, PINNED_CONFIG_HASHES), (2, PINNED_CONFIG_HASHES_PROTOCOL_2)):
        with use_protocol(number):
            got = _config_hashes()
            # experiments added later (not pinned) may exist; no pinned one may change
            assert {k: got.get(k) for k in pinned} == pinned, f"protocol {number}"


def test_protocol_2_distils_from_the_paper_teacher_of_each_seed_and_clips():
    """Issue 11: under protocol 2 every student learns from chapter 6's teacher of its own seed;
    issue 12: with gradient-norm clipping. Its runs are stored beside protocol 1's."""
    from kdlib.experiments import artifact_path
    with use_protocol(2) as p:
        sweep = configs_for("temperature", "full", [0, 1, 2])
        assert {(c.member.seed, c.teacher_seed) for c in sweep} == {(0, 0), (1, 1), (2, 2)}
        assert {c.spec.max_grad_norm for c in sweep} == {p.max_grad_norm} == {5.0}
        assert {c.protocol for c in sweep} == {2}
        teacher = teacher_config_of(sweep[0])
        assert teacher.experiment == "paper_teacher" and teacher.spec == PAPER_TEACHER
        assert str(artifact_path(sweep[0], "R")).startswith("R/full/protocol-2/temperature/")
        choice = configs_for("hard_weight", "full", [0, 1, 2], validation=True)
        assert sorted({c.member.hard_weight for c in choice}) == list(HARD_WEIGHTS_WIDE)
        assert {c.teacher_seed for c in choice} == {0} and {c.member.seed for c in choice} == {0, 1, 2}
        assert teacher_config_of(choice[0]).validation
        # the choices made on the validation split are the recipe of the runs that use them
        for experiment in ("distilled", "omit3", "only78", "soft_only", "omitted_low_hw"):
            made = configs_for(experiment, "full", [0])
            assert {c.spec.epochs for c in made} == {p.student_epochs} == {20}
            assert {c.member.hard_weight for c in made} <= {p.hard_weight, 0.0, LOW_HARD_WEIGHT}
        baseline = configs_for("baseline", "full", [0])  # no teacher: the same runs as protocol 1
    with use_protocol(1):
        assert baseline == configs_for("baseline", "full", [0]) and baseline[0].protocol == 1
        assert configs_for("temperature", "full", [0])[0].hash != sweep[0].hash


def test_protocol_2_with_its_choices_builds_every_run(monkeypatch):
    from dataclasses import replace

    from kdlib import protocols
    from kdlib.beyond import study_teacher_configs
    monkeypatch.setitem(protocols.PROTOCOLS, 2, replace(protocols.PROTOCOLS[2], hard_weight=0.3,
                                                        student_epochs=80))
    with use_protocol(2):
        distilled = configs_for("distilled", "full", [0, 1])
        assert {c.member.hard_weight for c in distilled} == {0.3}
        assert {c.spec.epochs for c in distilled} == {80} and distilled[1].teacher_seed == 1
        assert {c.member.hard_weight for c in configs_for("soft_only", "full", [0])} == {0.0}
        low = configs_for("omitted_low_hw", "full", [0])
        assert [c.transfer for c in low] == ["drop:3", "keep:7,8"]
        assert {c.member.hard_weight for c in low} == {LOW_HARD_WEIGHT}
        epochs = configs_for("student_epochs", "full", [0, 1, 2], validation=True)
        assert sorted({c.spec.epochs for c in epochs}) == list(STUDENT_EPOCH_GRID)
        assert [t.experiment for t in study_teacher_configs("full", [0])] == ["paper_teacher"]
        # the longer cosine teacher is a study of protocol 1's teacher: its student stays there
        budget_runs = configs_for("teacher_budget", "full", [0])
    with use_protocol(1):
        assert [t.experiment for t in study_teacher_configs("full", [0])] == ["teacher"]
        assert budget_runs == configs_for("teacher_budget", "full", [0])
    assert budget_runs[1].protocol == 1 and budget_runs[1].teacher_epochs == 180


def test_protocol_1_keeps_the_recipe_of_the_committed_runs():
    p = PROTOCOLS[1]
    assert (p.teacher, p.hard_weight, p.student_epochs, p.max_grad_norm) == \
        ("teacher", HARD_WEIGHT, STUDENT.epochs, None)
    assert p.student_epoch_grid == () and PROTOCOLS[2].student_epoch_grid == STUDENT_EPOCH_GRID
    with use_protocol(1):  # its student epochs were fixed a priori: no sweep to run
        assert configs_for("student_epochs", "full", [0, 1, 2], validation=True) == []
    with pytest.raises(ValueError, match="unknown protocol"):
        with use_protocol(4):
            pass


def test_the_protocol_table_reads_its_values_from_the_protocols():
    """Each protocol's column reads its values, whichever is reported; the header marks it; a
    protocol still being chosen (no hard weight or epochs yet) has no column."""
    from kdlib.protocols import book_protocols, protocol_table
    shown = book_protocols()
    assert shown[:2] == [1, 2] and all(PROTOCOLS[n].hard_weight is not None for n in shown)
    tables = {}
    for reported in shown:
        with use_protocol(reported):
            tables[reported] = protocol_table()
        assert tables[reported][0] == [""] + [f"protocol {n}" + (" (reported now)" if n == reported
                                                                 else "") for n in shown]
    rows = tables[1][1]
    assert all(t[1] == rows for t in tables.values())
    by_name = {r[0]: r[1:] for r in rows}
    assert by_name["Hard-label weight"] == [f"{PROTOCOLS[n].hard_weight:g}" for n in shown]
    assert by_name["Hard-label weight"][0] == f"{HARD_WEIGHT:g}"
    assert by_name["Student epochs"] == [f"{PROTOCOLS[n].student_epochs}" for n in shown]
    assert by_name["Student epochs"][0] == f"{STUDENT.epochs}"
    assert by_name["Hard-weight grid (validation)"][1] == ", ".join(f"{w:g}" for w in HARD_WEIGHTS_WIDE)
    # code spans: in Markdown a bare <profile> would be taken for an HTML tag and vanish
    assert by_name["Artifacts (in `results/<profile>/`)"][:2] == ["the folder itself", "`protocol-2/`"]


def test_runs_that_need_an_unmade_choice_are_refused_by_name_and_read_as_none(monkeypatch, tmp_path):
    """``chosen`` raises ChoiceNotMade (a ValueError naming the setting and the protocol);
    ``results.load_if_chosen`` reads such runs as none, every other error still raises."""
    from dataclasses import replace

    from kdlib import protocols
    from kdlib.results import load_available, load_if_chosen
    monkeypatch.setitem(protocols.PROTOCOLS, 2, replace(protocols.PROTOCOLS[2], student_epochs=None))
    with use_protocol(2):
        with pytest.raises(protocols.ChoiceNotMade, match="protocol 2 has no student epochs yet"):
            load_available("distilled", "full", [0], tmp_path)
        assert load_if_chosen("distilled", "full", [0], tmp_path) == []
        with pytest.raises(ValueError, match="seeds must be"):
            load_if_chosen("distilled", "full", [-1], tmp_path)
