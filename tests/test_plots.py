"""Every figure of the book is readable where it is shown: no text smaller than 9 points once
the figure is scaled to the page's text column (``plots.PAGE_WIDTH_IN``), and distinct lines."""
import numpy as np
import pytest
from matplotlib.text import Text

from kdlib.analysis import plots

rng = np.random.default_rng(0)
T = [1.0, 2.0, 4.0, 8.0, 20.0]
FIGURES = {
    "soft_target_bars": lambda: plots.soft_target_bars(
        [(rng.random(784), 3, {t: rng.dirichlet(np.ones(10)) for t in T[:3]})] * 2),
    "approximation_error": lambda: plots.approximation_error(T, {"a": np.array(T) ** -1.0,
                                                                 "b": np.array(T) ** -2.0}),
    "gradient_scale": lambda: plots.gradient_scale(T, {"with T^2": np.ones(5), "without": 1 / np.array(T)},
                                                   hard_reference=1.0),
    "error_curves": lambda: plots.error_curves({"teacher": [np.arange(50, 0, -1) + 60] * 2,
                                                "distilled": [np.arange(40, 0, -1) + 100]},
                                               {"teacher": 67}),
    "confusion_matrices": lambda: plots.confusion_matrices(
        {name: rng.integers(0, 120, (10, 10)) for name in ("teacher", "student", "distilled")}),
    "digit_grid": lambda: plots.digit_grid([("wrong", rng.random((12, 28, 28)), ["3→5"] * 12)] * 2),
    "errors_vs_temperature": lambda: plots.errors_vs_temperature(
        {800: {t: [110, 114] for t in T}, 30: {t: [300, 310] for t in T}},
        highlight={30: (2.5, 4.0)}, baseline={800: [130, 135]}),
    "errors_vs_hard_weight": lambda: plots.errors_vs_hard_weight(
        {w: [110, 112] for w in (0.0, 0.1, 1.0, 10.0)}, {"hard labels": 132.0},
        validation={w: [115, 118] for w in (0.0, 0.1, 1.0, 10.0)}),
    "errors_vs_shift": lambda: plots.errors_vs_shift(
        np.linspace(0, 8, 9), {"seed 0": np.arange(9) + 100.0}, {"paper": 3.5},
        {"seed 0": np.arange(9) + 10.0}, "3s"),
    "clipped_share": lambda: plots.clipped_share({"2x800": {f"T = {t:g}": [1.0, 0.5] for t in T},
                                                  "2x30": {"T = 1": [0.0, 0.0]}}, 5.0),
}


@pytest.mark.parametrize("name", FIGURES)
def test_text_is_at_least_9_points_at_page_width(name):
    fig = FIGURES[name]()
    fig.canvas.draw()  # lays out tick labels and legends
    scale = min(1.0, plots.PAGE_WIDTH_IN / fig.get_figwidth())
    small = sorted({(t.get_text(), round(t.get_fontsize() * scale, 1))
                    for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()
                    and t.get_fontsize() * scale < 9})
    assert not small, f"{name}: text below 9 pt at page width: {small[:5]}"
