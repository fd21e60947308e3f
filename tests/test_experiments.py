"""The experiment catalogue (kdlib.runs.recipes): which runs each experiment makes, per profile;
and the history of earlier recipes (kdlib.runs.history), read from committed tables."""
from pathlib import Path

import pytest

from kdlib.core.io import ArtifactError
from kdlib.runs.catalogue import EXPERIMENTS, configs_for
from kdlib.runs.student_recipe import LOW_HARD_WEIGHT, RECIPE
from kdlib.runs.recipes import DEFAULT_SEEDS, PAPER_TEACHER, TEMPERATURES, teacher_config_of


def test_every_student_distils_from_the_paper_teacher_of_its_own_seed():
    """Every distilled run learns from chapter 6's teacher of its own seed, by the searched
    recipe (no clipping), and is stored in the student recipe's folder; teachers and
    specialists are not."""
    from kdlib.runs.experiments import artifact_path
    sweep = configs_for("temperature", "full", [0, 1, 2])
    assert len(sweep) == 3 * len(TEMPERATURES) * 3
    assert {(c.member.seed, c.teacher_seed) for c in sweep} == {(0, 0), (1, 1), (2, 2)}
    assert {c.spec.max_grad_norm for c in sweep} == {None}
    teacher = teacher_config_of(sweep[0])
    assert teacher.experiment == "paper_teacher" and teacher.spec == PAPER_TEACHER
    assert str(artifact_path(sweep[0], "R")).startswith("R/full/protocol-3/temperature/")
    assert str(artifact_path(teacher, "R")) == "R/full/paper_teacher/paper-teacher-s0.json"
    specialist = configs_for("specialists", "full", [0])[0]
    assert str(artifact_path(specialist, "R")).startswith("R/full/specialists/")
    validation = configs_for("distilled", "full", [0], validation=True)[0]
    assert str(artifact_path(validation, "R")).startswith("R/full-validation/protocol-3/distilled/")
    # the recipe's choices are the recipe of every run that uses them
    for experiment in ("distilled", "omit3", "only78", "soft_only", "omitted_low_hw", "capacity"):
        made = configs_for(experiment, "full", [0, 1])
        assert {c.spec.epochs for c in made} == {RECIPE.student_epochs}
        assert {c.spec.lr for c in made} == {RECIPE.optimiser[1]}
        assert {c.member.hard_weight for c in made} <= {RECIPE.hard_weight, 0.0, LOW_HARD_WEIGHT}
        assert [c.teacher_seed for c in made] == [c.member.seed for c in made]
    # 2x30 students use their own learning rate; the label-only student its own recipe
    assert {c.spec.lr for c in sweep if c.spec.widths == (30, 30)} == {dict(RECIPE.width_lrs)[30]}
    (family, lr), epochs = RECIPE.label_recipe
    student = configs_for("student", "full", [0])[0]
    assert (student.spec.optimizer, student.spec.lr, student.spec.epochs) == (family, lr, epochs)
    assert student.teacher_seed is None
    weights = {c.member.hard_weight for c in configs_for("hard_weight", "full", [0, 1, 2])}
    assert weights == set(RECIPE.test_hard_weights)
    low = configs_for("omitted_low_hw", "full", [0])
    assert [c.transfer for c in low] == ["drop:3", "keep:7,8"]
    assert {c.member.hard_weight for c in low} == {LOW_HARD_WEIGHT}


def test_the_history_tables_describe_every_superseded_run_and_each_loads():
    """The committed history (results/history/) lists the earlier recipes and the runs they
    made; every superseded run loads from its recorded path with the result the table gives,
    and none of them is also a run the book reports."""
    from kdlib.runs import history
    from kdlib.runs.experiments import artifact_path
    header, recipes = history.table("recipes")
    assert [r[0] for r in recipes] == ["first recipe", "second recipe", "searched recipe"]
    assert header[-2:] == ["Reported", "Why replaced"] and all(r[-1] for r in recipes[:2])
    rows = history.superseded_runs()
    assert len(rows) > 300 and {r["recipe"] for r in rows} == {"first recipe", "second recipe"}
    for row in rows[::25]:
        assert history.load(row).test_errors == row["test_errors"]
    root = Path(__file__).resolve().parents[1]
    reported = {artifact_path(c, "results").as_posix() for name in EXPERIMENTS
                for c in configs_for(name, "full", DEFAULT_SEEDS)}
    assert not reported & {r["path"] for r in rows}
    assert all((root / r["path"]).exists() for r in rows)
    header, claims = history.table("claims_by_recipe")
    assert header[3:] == ["first recipe", "second recipe", "searched recipe"] and len(claims) == 13
    with pytest.raises(ValueError, match="unknown history table"):
        history.table("nonsense")
    with pytest.raises(ValueError, match="no superseded runs"):
        history.runs("searched recipe", "distilled")


def test_a_corrupt_superseded_artifact_is_refused_by_name(tmp_path):
    import json

    from kdlib.runs import history
    row = history.superseded_runs()[0]
    source = Path(__file__).resolve().parents[1] / row["path"]
    target = tmp_path / row["path"]
    target.parent.mkdir(parents=True)
    doc = json.loads(source.read_text())
    doc["config"]["spec"]["lr"] = 123.0
    target.write_text(json.dumps(doc))
    with pytest.raises(ArtifactError, match="does not match its config_hash"):
        history.load(row, root=tmp_path)
    with pytest.raises(ArtifactError, match="no artifact"):
        history.load({**row, "path": "nowhere.json"}, root=tmp_path)


def test_every_run_the_book_reports_loads_its_committed_artifact():
    """A recipe change that alters a reported run's config (and so orphans its artifact) fails
    here: every test-set run of every experiment and study, seeds 0-2, and every run of the
    student-recipe search finds its artifact (or its recorded failure) in results/ under the
    same config hash."""
    from kdlib.runs.experiments import load_artifact, load_failure
    from kdlib.runs.search import search_configs
    root = Path(__file__).resolve().parents[1] / "results"
    configs = [c for name in EXPERIMENTS
               for c in configs_for(name, "full", DEFAULT_SEEDS)] + search_configs("full")
    missing = []
    for cfg in configs:
        if load_failure(cfg, root) is None:
            try:
                load_artifact(cfg, root)
            except ArtifactError as e:
                missing.append(str(e))
    assert len(configs) > 300 and not missing, missing[:5]


def test_the_gpu_estimate_counts_each_runs_work_and_shares_stacked_steps():
    from kdlib.analysis import results
    from kdlib.runs.experiments import RunResult
    config = {"spec": {"epochs": 2, "widths": [10], "batch_size": 100, "jitter": 0},
              "teacher_seed": None}
    run = RunResult(config, {"transfer_set_size": 1000, "test_size": 500, "stacked_with": 2},
                    {}, Path("x.json"))
    params = 784 * 10 + 10 + 10 * 10 + 10
    work = results.training_work(run)
    assert work == {"flops": 2 * (6 * params * 1000 + 2 * params * 500), "steps": 2 * 10 / 2}
    hours = results.gpu_hours_estimate([work, work], tflops=1e-3, seconds_per_step=1.0)
    assert hours == pytest.approx(2 * (work["flops"] / 1e9 + 10) / 3600)
