"""The claims table's building blocks (kdlib.analysis.claims, kdlib.analysis.results,
kdlib.analysis.bias_shift), on hand-made cases, and the committed artifacts against the current configs."""

import numpy as np
import pytest
import torch

from pathlib import Path

from kdlib.analysis import claims
from kdlib.analysis.bias_shift import prior_matching_shift
from kdlib.analysis.claims import best_temperature, gap_recovered
from kdlib.core.evaluate import contrasting_examples
from kdlib.runs.experiments import RunResult, artifact_path, load_artifact
from kdlib.runs.student_recipe import RECIPE
from kdlib.runs.catalogue import EXPERIMENTS, configs_for
from kdlib.analysis.results import default_results_dir, markdown_table


def test_default_results_dir_is_the_repositorys():
    assert default_results_dir().name == "results"
    assert (default_results_dir().parent / "kdlib" / "analysis" / "results.py").exists()


def test_gap_recovered():
    assert gap_recovered([67], [146], [74]) == pytest.approx(72 / 79)
    assert gap_recovered([60, 70], [150, 150], [150, 150]) == 0.0


def test_best_temperature_takes_the_lowest_among_ties():
    assert best_temperature({1.0: [90, 92], 2.5: [80, 82], 4.0: [81, 81], 20.0: [95, 95]}) == (2.5, 81.0)
    assert best_temperature({4.0: [80], 2.0: [80]}) == (2.0, 80.0)


def test_prior_matching_recovers_an_under_scored_class_without_test_data():
    # a third of the images are 2s whose logit is 3 too low (like a class left out of the
    # transfer set); the shift that makes a third of the predictions 2s must exceed 1
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 3000)
    logits = torch.nn.functional.one_hot(torch.as_tensor(labels), 3).float().numpy() * 2.0
    logits[:, 2] -= 3.0
    shifts = np.round(np.arange(0, 6.01, 0.1), 1)
    shift = prior_matching_shift(logits, labels, [2], shifts)
    assert 1.0 < shift <= 1.5
    assert np.mean((logits + np.eye(3)[2] * shift).argmax(1) == 2) == pytest.approx(np.mean(labels == 2))


def test_prior_matching_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same, non-empty set"):
        prior_matching_shift(np.zeros((3, 10)), np.zeros(4, dtype=int), [3], [0.0, 1.0])


def test_contrasting_examples():
    labels = np.array([2, 2, 2, 3, 2])
    logits = np.full((5, 10), -5.0)
    logits[:, 2] = 10.0
    logits[0, 3], logits[0, 7] = 2.0, -3.0     # a 2 like a 3
    logits[1, 3], logits[1, 7] = -3.0, 4.0     # a 2 like a 7
    logits[3, 3] = 20.0                        # a 3, not a candidate
    logits[4, 2], logits[4, 7] = 0.0, 9.0      # a 2 classified as 7, not a candidate
    assert contrasting_examples(logits, labels, 2, 3, 7) == (0, 1)
    with pytest.raises(ValueError, match="no test example of class 5"):
        contrasting_examples(logits, labels, 5, 3, 7)


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, "x"], [2, "y"]]) == "| a | b |\n|---|---|\n| 1 | x |\n| 2 | y |"


def _run(hard_weight, seed, errors):
    config = {"member": {"hard_weight": hard_weight, "seed": seed}}
    return RunResult(config, {"test_errors": errors}, {}, Path("unused.json"))


def test_best_hard_weight_uses_seed_means_and_the_lowest_among_ties():
    runs = [_run(0.1, 0, 120), _run(0.1, 1, 100), _run(1.0, 0, 105), _run(1.0, 1, 117),
            _run(0.3, 0, 110), _run(0.3, 1, 110)]
    assert claims.hard_weight_grid(runs) == {0.1: [120, 100], 0.3: [110, 110], 1.0: [105, 117]}
    assert claims.best_hard_weight(runs) == (0.1, 110.0)  # ties 0.3 at 110: the lower weight
    with pytest.raises(ValueError, match="no hard-weight runs"):
        claims.best_hard_weight([])


RESULTS = default_results_dir()
#: Every committed run's JSON (at any depth: the student recipe's runs sit one folder down).
COMMITTED = sorted(p for p in RESULTS.glob("*/**/*.json")
                   if "checkpoints" not in p.parts and p.parent.name != "studies")


def test_every_committed_artifact_matches_a_current_config():
    """A recipe change that would orphan committed runs (their config hash) fails here: every
    committed artifact is made by a current config, or is a run of an earlier recipe listed in
    the committed history (``kdlib.runs.history``); a recorded failure is of a current config."""
    from kdlib.runs import history
    from kdlib.runs.experiments import load_failure
    from kdlib.runs.search import search_configs
    assert len(COMMITTED) > 600
    superseded = {(RESULTS.parent / r["path"]) for r in history.superseded_runs()}
    configs = {}
    for profile_dir in {RESULTS / p.relative_to(RESULTS).parts[0] for p in COMMITTED}:
        profile, _, validation = profile_dir.name.partition("-")
        for experiment in EXPERIMENTS:
            made = configs_for(experiment, profile, range(10), validation == "validation")
            configs.update((artifact_path(cfg, RESULTS), cfg) for cfg in made)
        if validation:
            configs.update((artifact_path(cfg, RESULTS), cfg) for cfg in search_configs(profile))
    for path in COMMITTED:
        if path in superseded:
            continue
        if path.name.endswith(".failed.json"):
            cfg = configs.get(path.with_name(path.name.replace(".failed", "")))
            assert cfg is not None and load_failure(cfg, RESULTS) is not None, path
            continue
        assert path in configs, f"{path}: no current config makes this artifact"
        load_artifact(configs[path], RESULTS)  # raises on a hash mismatch


def test_distillation_hard_weight_is_the_validation_choice():
    """The recipe's hard weight is the best of the search's committed validation sweep (stage 2,
    the chosen optimiser, seeds 0-1), where the weights that diverged count as worse."""
    from kdlib.runs import search
    validation = claims.validation_hard_weight_sweep(RESULTS, "full")
    failed = claims.validation_hard_weight_failures(RESULTS, "full")
    tried = {r.config["member"]["hard_weight"] for r in validation} | set(failed)
    assert tried == set(search.HARD_WEIGHTS) and len(validation) >= 2 * (len(tried) - len(failed))
    assert claims.best_hard_weight(validation)[0] == RECIPE.hard_weight


class _LogitRun(RunResult):
    """A run whose test logits are given (no artifact file)."""

    def __init__(self, config, logits):
        super().__init__(config, {"test_errors": int(0)}, {}, Path("unused.json"))
        self._logits = logits
        self.metrics["test_errors"] = int((logits.argmax(-1) != LABELS).sum())

    def logits(self):
        return self._logits


LABELS = np.arange(400) % 10


def _predicting(wrong: int, seed: int) -> np.ndarray:
    """One-hot logits that get the first ``wrong`` (shifted by seed) test digits wrong."""
    pred = LABELS.copy()
    idx = (np.arange(wrong) + seed) % len(LABELS)
    pred[idx] = (pred[idx] + 1) % 10
    return np.eye(10, dtype=np.float32)[pred]


def test_each_width_is_compared_with_its_hard_label_baseline():
    def cfg(width, seed, temperature=None):
        member = {"seed": seed} | ({} if temperature is None else {"temperature": temperature})
        return {"spec": {"widths": [width, width]}, "member": member}
    sweep = [_LogitRun(cfg(w, s, t), _predicting(e + s, s)) for s in (0, 1, 2)
             for w, t, e in ((30, 3.0, 20), (30, 20.0, 49), (800, 20.0, 30))]
    baseline = [_LogitRun(cfg(w, s), _predicting(e, s)) for s in (0, 1, 2)
                for w, e in ((30, 50), (800, 30))]
    assert claims.width_errors(baseline) == {30: [50, 50, 50], 800: [30, 30, 30]}
    best = {r["width"]: r for r in claims.distillation_vs_baseline(sweep, baseline, LABELS)}
    assert best[30]["best_temperature"] == 3.0 and best[30]["verdict"] == "yes"
    assert best[30]["errors_a"] == 63 and best[30]["errors_b"] == 150 and best[30]["p_value"] < 1e-6
    assert best[800]["verdict"] == "no" and best[800]["errors_a"] == 93  # 3 more errors, not fewer
    at20 = {r["width"]: r for r in claims.distillation_vs_baseline(sweep, baseline, LABELS, 20.0)}
    assert at20[30]["best_temperature"] == 20.0 and at20[30]["verdict"] == "no"  # 150 vs 150
    assert at20[30]["errors_a"] == at20[30]["errors_b"] == 150
    assert claims.distillation_vs_baseline(sweep, baseline, LABELS, 4.0) == []


def test_a_validation_choice_at_the_edge_of_its_grid_is_not_bracketed():
    choice = claims.validation_choice({0.0: [130], 0.1: [125], 1.0: [120]}, floor=0.0)
    assert (choice["best"], choice["mean"], choice["bracketed"]) == (1.0, 120.0, False)
    assert claims.validation_choice({0.0: [110], 0.1: [125]}, floor=0.0)["bracketed"]
    assert not claims.validation_choice({0.03: [110], 0.1: [125], 1: [130]}, floor=0.0)["bracketed"]
    assert claims.validation_choice({40: [120, 122], 80: [115, 117], 160: [118, 118]})["best"] == 80
    assert not claims.validation_choice({40: [120], 80: [115]})["bracketed"]  # longer may be better


def test_the_teacher_row_is_the_paper_recipe_teacher(monkeypatch):
    """The students learn from chapter 6's teacher, so the teacher row is its runs."""
    asked = []
    monkeypatch.setattr(claims, "load_available", lambda name, *a, **k: asked.append(name) or [])
    rows = claims.claims_table("unused", "full", test_labels=np.zeros(10), train_labels=np.zeros(10))
    assert asked[:3] == ["paper_teacher", "student", "distilled"]
    assert rows[0]["claim"].startswith("Teacher 2x1200") and rows[0]["ours"] == "missing"


def test_a_filtered_claims_table_keeps_each_rows_own_number():
    rows = [{**r, "number": i + 1} for i, r in enumerate([
        claims._count_row("teacher", 67, [76, 74]), claims._count_row("student", 146, [140, 139]),
        claims._count_row("distilled", 74, [128, 130])])]
    shown = claims.claims_markdown([r for r in rows if r["number"] != 2])
    assert "| 3 | distilled |" in shown and "| 2 |" not in shown


def test_clipped_share_figure_has_a_panel_per_group_and_a_line_per_setting():
    from kdlib.analysis import plots
    fig = plots.clipped_share({"2x800": {f"T = {t}": [1.0, 0.5, 0.0] for t in range(9)},
                               "2x30": {"T = 1": [0.0, 0.0, 0.0]}}, 5.0)
    assert [len(ax.lines) for ax in fig.axes] == [9, 1]
    assert len({(line.get_color(), line.get_linestyle()) for line in fig.axes[0].lines}) == 9


def test_clipped_share_curves_group_by_width_and_temperature_and_average_seeds():
    from kdlib.analysis.results import clipped_share_curves

    def run(width, t, seed, share):
        metrics = {"test_errors": 1} | ({"clipped_share_curve": share} if share else {})
        return RunResult({"name": f"w{width}-T{t}-s{seed}", "spec": {"widths": [width, width]},
                          "member": {"temperature": t, "seed": seed}}, metrics, {}, Path("x"))
    got = clipped_share_curves([run(30, 20.0, 0, [0.5, 0.0]), run(800, 20.0, 0, [1.0, 0.2]),
                                run(800, 20.0, 1, [0.8, 0.0]), run(800, 1.0, 0, [0.0, 0.0]),
                                run(800, 4.0, 0, None)])  # no record: left out
    assert list(got) == ["2x800", "2x30"] and list(got["2x800"]) == ["T = 1", "T = 20"]
    assert np.allclose(got["2x800"]["T = 20"], [0.9, 0.1]) and np.allclose(got["2x30"]["T = 20"], [0.5, 0.0])


def test_recipe_table_reads_the_recipe():
    from kdlib.analysis.results import recipe_table
    header, rows = recipe_table()
    table = {r[0]: r[1:] for r in rows}
    assert header == ["", "Teacher", "Student", "Distilled student"]
    assert table["Epochs"] == ["1000", str(RECIPE.label_recipe[1]), str(RECIPE.student_epochs)]
    assert table["Targets"][2].endswith(f"hard weight {RECIPE.hard_weight:g}")
    assert "clipped" not in table["Learning rate"][2]
    assert table["Dropout"] == ["20% input, 50% hidden", "none", "none"]


def test_clipping_by_setting_averages_seeds_and_ranks_share_against_errors():
    from kdlib.analysis.results import clipping_by_setting

    def run(t, seed, share, errors):
        return RunResult({"name": f"w800-T{t}-s{seed}", "spec": {"widths": [800, 800]},
                          "member": {"temperature": t, "seed": seed}},
                         {"test_errors": errors, "clipped_share_curve": share}, {}, Path("x"))
    rows = clipping_by_setting([run(1.0, 0, [0.0, 0.0], 130), run(4.0, 0, [0.4, 0.0], 110),
                                run(4.0, 1, [0.2, 0.0], 114), run(20.0, 0, [1.0, 0.5], 140),
                                run(10.0, 0, [0.9, 0.1], 135)])
    assert [r["temperature"] for r in rows] == [1.0, 4.0, 10.0, 20.0]
    assert rows[1]["share"] == pytest.approx(0.15) and rows[1]["errors"] == 112 and rows[1]["seeds"] == 2
    assert rows[0]["rho"] == pytest.approx(0.8) and 0 < rows[0]["p"] < 1  # ranks 1,2,3,4 vs 2,1,3,4


def test_mean_logit_sd_is_the_seed_mean_of_each_runs_logit_sd(tmp_path):
    from kdlib.analysis.results import mean_logit_sd

    class Run:
        def __init__(self, scale):
            self.scale = scale

        def logits(self):
            return np.array([[-1.0, 1.0], [1.0, -1.0]]) * self.scale
    assert mean_logit_sd([Run(1.0), Run(3.0)]) == pytest.approx(2.0)
    assert mean_logit_sd([]) is None
