"""The claims table's building blocks (kdlib.claims, kdlib.results, kdlib.bias_shift), on
hand-made cases, and the committed artifacts against the current configs."""
import itertools

import numpy as np
import pytest
import torch

from pathlib import Path

from kdlib import claims
from kdlib.bias_shift import prior_matching_shift
from kdlib.claims import best_temperature, gap_recovered
from kdlib.evaluate import contrasting_examples
from kdlib.experiments import RunResult, artifact_path, load_artifact
from kdlib.protocols import PROTOCOLS, use_protocol
from kdlib.recipes import EXPERIMENTS, configs_for
from kdlib.results import default_results_dir, markdown_table


def test_default_results_dir_is_the_repositorys():
    assert default_results_dir().name == "results"
    assert (default_results_dir().parent / "kdlib" / "results.py").exists()


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
COMMITTED = sorted(p for p in RESULTS.glob("*/*/*.json") if p.parent.parent.name != "checkpoints")


def test_every_committed_artifact_matches_a_current_config():
    """A recipe change that would orphan committed runs (their config hash) fails here."""
    assert len(COMMITTED) > 30
    configs = {}
    for profile_dir in {p.parent.parent for p in COMMITTED}:
        profile, _, validation = profile_dir.name.partition("-")
        for experiment, number in itertools.product(EXPERIMENTS, PROTOCOLS):
            with use_protocol(number):
                try:
                    made = configs_for(experiment, profile, range(10), validation == "validation")
                except ValueError as e:  # a choice not made yet, or a validation-only experiment
                    assert any(m in str(e) for m in ("yet: choose it on the", "validation split only"))
                    continue
            configs.update((artifact_path(cfg, RESULTS), cfg) for cfg in made)
    for path in COMMITTED:
        assert path in configs, f"{path}: no current config makes this artifact"
        load_artifact(configs[path], RESULTS)  # raises on a hash mismatch


def test_distillation_hard_weight_is_the_validation_choice():
    """Each protocol's hard weight is the best of its committed validation sweep (protocol 1:
    seed 0 over its grid; protocol 2: seeds 0-2 over the wider grid)."""
    for number, seeds in ((1, 1), (2, 3)):
        with use_protocol(number) as p:
            validation = claims.validation_hard_weight_sweep(RESULTS, "full")
        assert len(validation) == len(p.hard_weights) * seeds
        assert claims.best_hard_weight(validation)[0] == p.hard_weight


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


def test_runs_of_an_earlier_protocol_stay_listed_as_superseded(monkeypatch):
    from dataclasses import replace

    from kdlib import protocols
    from kdlib.results import provenance_rows
    with protocols.use_protocol(1):  # while protocol 1 was reported
        now = provenance_rows(RESULTS, "full")
    assert now and {r["status"] for r in now} <= {"", "ahead (protocol 2)", "ahead (protocol 3)"}
    # protocol 2's runs so far: its validation sweeps, and test-set runs that need no choice
    # it has not made (the choices are made on the validation split before the runs that use them)
    with protocols.use_protocol(2):
        for experiment in {r["experiment"] for r in now
                           if r["status"] and not r["experiment"].endswith("(validation)")}:
            configs_for(experiment, "full")  # raises ChoiceNotMade for a run that needs one
    # after the switch to protocol 2 (its choices made; its validation sweeps keep the hard
    # weight they were run with)
    chosen_epochs = protocols.PROTOCOLS[2].student_epochs or 20
    monkeypatch.setitem(protocols.PROTOCOLS, 2, replace(protocols.PROTOCOLS[2], student_epochs=chosen_epochs))
    monkeypatch.setattr(protocols, "PROTOCOL", 2)
    later = provenance_rows(RESULTS, "full")
    def names(rows):
        return sorted((r["experiment"], r["run"]) for r in rows)
    assert names(later) == names(now)
    # protocol 3's runs (same names) are ahead of both
    assert {r["status"] for r in later if r["status"].startswith("ahead")} <= {"ahead (protocol 3)"}
    status = {(r["experiment"], r["run"]): r["status"] for r in later
              if r["status"] != "ahead (protocol 3)"}
    assert status[("distilled", "distilled-T20-s0")] == "superseded (protocol 1)"
    assert status[("temperature", "w30-T4-s1")] == "superseded (protocol 1)"
    assert status[("student", "student-s0")] == "" and status[("teacher", "teacher-s2")] == ""


def test_validation_choices_table_marks_the_pick_and_the_value_in_use():
    from kdlib import choices as ch
    runs = [RunResult({"spec": {"epochs": e}, "member": {"seed": s}}, {"test_errors": n}, {},
                      Path("unused.json"))
            for e, s, n in [(80, 0, 115), (40, 0, 120), (160, 1, 118), (40, 1, 122), (80, 1, 117),
                            (160, 0, 118)]]
    grid = ch.student_epochs_grid(runs)
    assert grid == {40: [120, 122], 80: [115, 117], 160: [118, 118]}
    choices = [{"what": "hard-label weight", "grid": {0.0: [130, 128], 0.3: [120, 126], 3.0: [125, 127]},
                "choice": claims.validation_choice({0.0: [130, 128], 0.3: [120, 126], 3.0: [125, 127]},
                                                   floor=0.0), "set": 0.3},
               {"what": "student epochs", "grid": grid, "choice": claims.validation_choice(grid),
                "set": None},
               {"what": "later", "grid": {}, "choice": None, "set": None}]
    header, rows = ch.validation_choices_table(choices)
    assert header[2] == "validation errors (mean ± sd)"
    assert rows[1][1] == "0.3" and rows[1][4] == "fewest, used" and rows[0][4] == rows[2][4] == ""
    assert rows[4][1] == "80" and rows[4][4] == "fewest"  # chosen by the rule, not set yet
    assert rows[-1] == ["later", "-", "not run yet", "", ""]


def test_the_teacher_row_is_the_reported_protocols_teacher(monkeypatch):
    """Protocol 1's students learn from the 60-epoch teacher, protocol 2's from chapter 6's."""
    from kdlib.protocols import use_protocol
    asked = []
    monkeypatch.setattr(claims, "load_available", lambda name, *a, **k: asked.append(name) or [])
    for number, teacher in ((1, "teacher"), (2, "paper_teacher")):
        asked.clear()
        with use_protocol(number):
            rows = claims.claims_table("unused", "full", test_labels=np.zeros(10),
                                       train_labels=np.zeros(10))
        assert asked[:3] == [teacher, "student", "distilled"]
        assert rows[0]["claim"].startswith("Teacher 2x1200") and rows[0]["ours"] == "missing"


def test_protocol_comparison_sets_each_protocols_numbers_side_by_side(monkeypatch):
    """Rows keep claims_table's numbers; a count row is "closer" when the later protocol's
    seed mean lies nearer the paper's value (row 1), "farther" when it lies farther (row 3)."""
    from kdlib import protocols

    def table(*args, **kwargs):
        later = protocols.PROTOCOL == 2
        rows = [claims._count_row("teacher", 67, [76, 74] if later else [108, 110]),
                claims._count_row("student", 146, [140, 139]),
                claims._count_row("distilled", 74, [128, 130] if later else [108, 107]),
                claims.hard_weight_claim([])[0]]
        return [{**r, "number": i + 1} for i, r in enumerate(rows)]
    monkeypatch.setattr(claims, "claims_table", table)
    header, rows, moved = claims.protocol_comparison("unused")
    assert header == ["#", "Claim", "Paper", "first recipe", "second recipe"]
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    assert rows[0][3].startswith("109.0 ± 1.4") and rows[0][4].startswith("75.0 ± 1.4")
    assert rows[3][3] == "missing; not run"
    assert moved == {"closer": [1], "farther": [3]}
    # a filtered table keeps each row's own number
    shown = claims.claims_markdown([r for r in table() if r["number"] != 2])
    assert "| 3 | distilled |" in shown and "| 2 |" not in shown


def test_clipped_share_figure_has_a_panel_per_group_and_a_line_per_setting():
    from kdlib import plots
    fig = plots.clipped_share({"2x800": {f"T = {t}": [1.0, 0.5, 0.0] for t in range(9)},
                               "2x30": {"T = 1": [0.0, 0.0, 0.0]}}, 5.0)
    assert [len(ax.lines) for ax in fig.axes] == [9, 1]
    assert len({(line.get_color(), line.get_linestyle()) for line in fig.axes[0].lines}) == 9


def test_moved_sentence_lists_rows_or_says_none():
    assert claims.moved_sentence({"closer": [1], "farther": [3, 8, 9]}) == (
        "Of the 4 count claims measured under both protocols, the paper's teacher brings 1 (row 1) "
        "closer to the paper's number and moves 3 (rows 3, 8 and 9) farther from it.")
    assert "brings none closer" in claims.moved_sentence({"closer": [], "farther": [2]})
    assert claims.moved_sentence({"closer": [], "farther": []}).startswith("No count claim")


def test_clipped_share_curves_group_by_width_and_temperature_and_average_seeds():
    from kdlib.results import clipped_share_curves

    def run(width, t, seed, share):
        metrics = {"test_errors": 1} | ({"clipped_share_curve": share} if share else {})
        return RunResult({"name": f"w{width}-T{t}-s{seed}", "spec": {"widths": [width, width]},
                          "member": {"temperature": t, "seed": seed}}, metrics, {}, Path("x"))
    got = clipped_share_curves([run(30, 20.0, 0, [0.5, 0.0]), run(800, 20.0, 0, [1.0, 0.2]),
                                run(800, 20.0, 1, [0.8, 0.0]), run(800, 1.0, 0, [0.0, 0.0]),
                                run(800, 4.0, 0, None)])  # no record: left out
    assert list(got) == ["2x800", "2x30"] and list(got["2x800"]) == ["T = 1", "T = 20"]
    assert np.allclose(got["2x800"]["T = 20"], [0.9, 0.1]) and np.allclose(got["2x30"]["T = 20"], [0.5, 0.0])


def test_recipe_table_follows_the_reported_protocol():
    from kdlib.results import recipe_table
    for number, teacher_epochs, hard_weight, clip in ((1, "60", "hard weight 1", False),
                                                      (2, "1000", "hard weight 3", True)):
        with use_protocol(number):
            header, rows = recipe_table()
        table = {r[0]: r[1:] for r in rows}
        assert header == ["", "Teacher", "Student", "Distilled student"]
        assert table["Epochs"][0] == teacher_epochs and table["Targets"][2].endswith(hard_weight)
        assert ("clipped at 5" in table["Learning rate"][2]) == clip
        assert table["Dropout"] == ["20% input, 50% hidden", "none", "none"]


def test_clipping_by_setting_averages_seeds_and_ranks_share_against_errors():
    from kdlib.results import clipping_by_setting

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


def test_protocol_choices_state_the_reported_protocols_recipe():
    from kdlib.choices import protocol_choices
    for number, teacher, distilled, clip in ((1, "60 epochs", "distilled 40", "none"),
                                            (2, "1000 epochs", "distilled 20", "norm 5")):
        with use_protocol(number):
            rows = {what: (choice, why) for what, choice, why in protocol_choices()}
        assert rows["Teacher"][0].startswith(teacher) and distilled in rows["Student budget"][0]
        assert rows["Gradient clipping"][0].endswith(clip)
        assert f"hard weight {PROTOCOLS[number].hard_weight:g}," in rows["Distillation loss"][0]


def test_mean_logit_sd_is_the_seed_mean_of_each_runs_logit_sd(tmp_path):
    from kdlib.results import mean_logit_sd

    class Run:
        def __init__(self, scale):
            self.scale = scale

        def logits(self):
            return np.array([[-1.0, 1.0], [1.0, -1.0]]) * self.scale
    assert mean_logit_sd([Run(1.0), Run(3.0)]) == pytest.approx(2.0)
    assert mean_logit_sd([]) is None
