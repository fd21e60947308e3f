"""How the notebooks state results (kdlib.analysis.results, kdlib.analysis.claims,
kdlib.analysis.plots), on hand-made cases: the functions that used to be defined in notebooks 02 and 04."""
import numpy as np
import pytest
from matplotlib.figure import Figure

from kdlib.analysis import claims, plots, results
from kdlib.runs.recipes import STUDENT, TEACHER
from kdlib.core.spec import TrainSpec


def test_dropout_text():
    assert results.dropout_text(TEACHER) == "20% input, 50% hidden"
    assert results.dropout_text(STUDENT) == "none"
    # hidden dropout alone is still dropout, its input share stated as 0%
    assert results.dropout_text(TrainSpec(hidden_dropout=0.5)) == "0% input, 50% hidden"


def test_errors_and_shift_texts():
    assert results.errors_text((206, 133)) == "206 (133)"
    assert results.shift_errors_text(3.5, (109, 14)) == "+3.5: 109 (14)"
    assert results.shift_errors_text(-0.25, (7, 0)) == "-0.2: 7 (0)"       # one decimal, signed
    assert results.shift_errors_text(None, (109, 14)) == "no train logits"


def test_error_percent_and_shift_percent_text():
    assert results.error_percent(4730, 10_000) == pytest.approx(47.3)
    assert results.error_percent(np.float64(1), 8) == 12.5
    assert results.shift_percent_text(-7.6, (1320, 5), 10_000) == "-7.6: 13.2%"
    assert results.shift_percent_text(0.0, (1, 0), 3) == "+0.0: 33.3%"
    assert results.shift_percent_text(None, (1320, 5), 10_000) == "no train logits"


def _row(p_value, difference):
    return {"p_value": p_value, "difference": difference}


def test_distillation_gain_needs_every_seed():
    assert claims.distillation_gain([_row(0.001, -30), _row(0.04, -12)]).startswith("significantly better")
    assert claims.distillation_gain([_row(0.001, 30), _row(0.01, 12)]).startswith("significantly worse")
    # one seed not significant, or the seeds disagree in direction: no claim
    assert claims.distillation_gain([_row(0.001, -30), _row(0.06, -12)]) == (
        "not consistently different from the baseline (p < 0.05 in 1 of 2 seeds)")
    assert claims.distillation_gain([_row(0.001, -30), _row(0.001, 12)]).endswith("in 2 of 2 seeds)")
    assert claims.distillation_gain([_row(0.05, -30)]).endswith("in 0 of 1 seeds)")   # p < alpha, strictly
    assert claims.distillation_gain([]).startswith("not consistently")                # no seeds, no claim
    assert claims.distillation_gain([_row(0.08, -30)], alpha=0.1).startswith("significantly better")


def test_digit_row_takes_the_first_masked_digits_with_captions():
    images = np.arange(5 * 784).reshape(5, 28, 28)
    labels = np.array([3, 1, 4, 1, 5])
    predicted = np.array([3, 7, 4, 2, 9])
    mask = predicted != labels
    title, shown, captions = plots.digit_row("wrong", images, labels, predicted, mask, columns=2)
    assert title == "wrong"
    assert captions == ["1→7", "1→2"]                  # test-set order, true → predicted
    assert np.array_equal(shown, images[[1, 3]])
    assert len(plots.digit_row("wrong", images, labels, predicted, mask)[2]) == 3
    assert isinstance(plots.digit_grid([(title, shown, captions)]), Figure)


def test_p_text_hides_the_underflow_that_depends_on_the_denormal_mode():
    from kdlib.analysis.results import p_text
    assert p_text(0.0123) == "0.012" and p_text(6e-93) == "6e-93"
    assert p_text(9.9e-324) == p_text(0.0) == "< 1e-300"
    assert p_text(0.0123, with_p=True) == "p = 0.012" and p_text(0.0, with_p=True) == "p < 1e-300"


def test_direction_text_says_better_worse_or_neither():
    from kdlib.analysis.results import direction_text
    assert direction_text({"errors_a": 10, "errors_b": 30, "p_value": 0.001}) == "significantly better"
    assert direction_text({"errors_a": 30, "errors_b": 10, "p_value": 0.001}) == "significantly worse"
    assert direction_text({"errors_a": 10, "errors_b": 30, "p_value": 0.2}) == "not significantly different"


def test_parity_rows_read_the_parity_runs_in_the_order_given(tmp_path):
    import json

    from kdlib.analysis.results import parity_rows
    row = {"student": "distilled", "bfloat16_errors": [120, 125], "float32_errors": [122, 121],
           "difference_of_means": 1.0, "seed_sd_float32": 0.7, "pooled_mcnemar": {"p_value": 0.5}}
    for name, hard_weight in (("t.json", None), ("s.json", 10.0)):
        (tmp_path / name).write_text(json.dumps({"hard_weight": hard_weight, "epochs": 100,
                                                 "rows": [row]}))
    header, rows, p = parity_rows([tmp_path / "t.json", tmp_path / "s.json"])
    assert header[0] == "Run" and p == [0.5, 0.5]
    assert rows[0][:2] == ["paper-recipe teacher, 100 epochs", "120, 125"]
    assert rows[1][0] == "2x800 student, distilled, 100 epochs" and rows[1][3] == "+1.0 (seed sd 0.7)"


def test_superseded_runs_group_by_recipe_and_experiment_in_table_order():
    from kdlib.runs import history
    rows = history.superseded_runs()
    groups = history.by_recipe_and_experiment(rows)
    assert sum(len(g) for _, _, g in groups) == len(rows)
    assert groups[0][:2] == (rows[0]["recipe"], rows[0]["experiment"])
    assert all(r["recipe"] == rec and r["experiment"] == exp for rec, exp, g in groups for r in g)
