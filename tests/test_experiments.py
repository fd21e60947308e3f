"""The experiment catalogue (kdlib.recipes): which runs each experiment makes, per profile."""
from pathlib import Path

import pytest

from kdlib.protocols import (HARD_WEIGHTS_WIDE, LOW_HARD_WEIGHT, PROTOCOLS, STUDENT_EPOCH_GRID,
                             use_protocol)
from kdlib.io import ArtifactError
from kdlib.recipes import (DEFAULT_SEEDS, EXPERIMENTS, HARD_WEIGHT, PAPER_TEACHER, STUDENT,
                           SWEEP_HARD_WEIGHT, TEACHER, TEACHER_BUDGET_EPOCHS, TEMPERATURES,
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


def test_every_run_the_book_reports_loads_its_committed_artifact():
    """A recipe change that alters a reported run's config (and so orphans its artifact) fails
    here: every test-set run of every experiment and study, seeds 0-2, and every run of the
    student-recipe search finds its artifact (or its recorded failure) in results/ under the
    same config hash."""
    from kdlib.experiments import load_artifact, load_failure
    from kdlib.search import search_configs
    root = Path(__file__).resolve().parents[1] / "results"
    configs = [c for name in EXPERIMENTS if name != "student_epochs"
               for c in configs_for(name, "full", DEFAULT_SEEDS)] + search_configs("full")
    missing = []
    for cfg in configs:
        if load_failure(cfg, root) is None:
            try:
                load_artifact(cfg, root)
            except ArtifactError as e:
                missing.append(str(e))
    assert len(configs) > 300 and not missing, missing[:5]


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
        assert tables[reported][0] == [""] + [PROTOCOLS[n].label + (" (reported)" if n == reported
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


def test_the_gpu_estimate_counts_each_runs_work_and_shares_stacked_steps():
    from kdlib import results
    from kdlib.experiments import RunResult
    config = {"spec": {"epochs": 2, "widths": [10], "batch_size": 100, "jitter": 0},
              "teacher_seed": None}
    run = RunResult(config, {"transfer_set_size": 1000, "test_size": 500, "stacked_with": 2},
                    {}, Path("x.json"))
    params = 784 * 10 + 10 + 10 * 10 + 10
    work = results.training_work(run)
    assert work == {"flops": 2 * (6 * params * 1000 + 2 * params * 500), "steps": 2 * 10 / 2}
    hours = results.gpu_hours_estimate([work, work], tflops=1e-3, seconds_per_step=1.0)
    assert hours == pytest.approx(2 * (work["flops"] / 1e9 + 10) / 3600)
