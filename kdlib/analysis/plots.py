"""The book's figures, each from plain numbers (no training, no file access).

Every function returns a ``matplotlib.figure.Figure`` that is not registered with pyplot,
so a notebook shows it only where it asks to (``myst_nb.glue`` or ``display``).
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatter

#: The width (inches) at which the book's text column shows a figure at its own size (about
#: 810 px at the inline backend's resolution); a wider figure is scaled down, its text with it.
PAGE_WIDTH_IN = 8.0
COLORS = {"teacher": "#1b7837", "student": "#b2182b", "distilled": "#2166ac"}
CYCLE = ["#2166ac", "#b2182b", "#1b7837", "#762a83", "#e08214", "#4d4d4d"]
STYLES = ["-", "-", "--", "-.", "-", "-"]


def _figure(width=6.4, height=4.0, **kwargs) -> Figure:
    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def _log_y(ax) -> None:
    """Log-scaled y axis labelled with plain numbers (200, not 2 x 10^2)."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter(minor_thresholds=(2, 0.5)))


def soft_target_bars(examples: list[tuple[np.ndarray, int, dict[float, np.ndarray]]]) -> Figure:
    """One row per example: the image, then its soft targets at each temperature (log scale).

    ``examples``: (image (28, 28), true label, {temperature: probabilities over the classes}).
    """
    temps = list(examples[0][2])
    # page width (8 in), so that 10-point text stays about 10 points in the book; one
    # probability scale per row, so the panels show how the targets flatten as T grows
    fig = _figure(8.0, 2.0 * len(examples))
    axes = fig.subplots(len(examples), len(temps) + 1, squeeze=False,
                        gridspec_kw={"width_ratios": [0.8] + [1] * len(temps)})
    for row, (image, label, probs) in zip(axes, examples):
        row[0].imshow(np.asarray(image).reshape(28, 28), cmap="gray_r")
        row[0].set_title(f"a test {label}", fontsize=10)
        row[0].axis("off")
        low = min(float(np.asarray(probs[t], dtype=np.float64).min()) for t in temps)
        for ax, t in zip(row[1:], temps):
            p = np.asarray(probs[t], dtype=np.float64)
            colors = [COLORS["teacher"] if k == label else "#888888" for k in range(len(p))]
            ax.bar(range(len(p)), np.maximum(p, 1e-30), color=colors)
            ax.set_yscale("log")
            ax.set_ylim(max(low / 10, 1e-30), 3)
            ax.set_xticks(range(0, len(p), 3))
            ax.tick_params(labelsize=10)
            ax.set_title(f"T = {t:g}", fontsize=10)
            if ax is not row[1]:
                ax.tick_params(labelleft=False)
        row[1].set_ylabel("probability", fontsize=10)
    for ax in axes[-1, 1:]:
        ax.set_xlabel("digit", fontsize=10)
    return fig


def approximation_error(temperatures, curves: dict[str, np.ndarray], slope_reference=True) -> Figure:
    """Relative error of a high-temperature approximation against T (log-log)."""
    fig = _figure()
    ax = fig.subplots()
    t = np.asarray(temperatures, dtype=np.float64)
    for (label, y), color, style in zip(curves.items(), CYCLE, STYLES):
        ax.loglog(t, y, label=label, color=color, lw=2, ls=style)
    if slope_reference:
        first = np.asarray(next(iter(curves.values())), dtype=np.float64)
        ax.loglog(t, first[-1] * t[-1] / t, "k:", label=r"$\propto 1/T$")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("relative error of the gradient")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig


def gradient_scale(temperatures, curves: dict[str, np.ndarray], hard_reference=None) -> Figure:
    """Size of the soft-target gradient against T, with and without the T^2 factor."""
    fig = _figure()
    ax = fig.subplots()
    t = np.asarray(temperatures, dtype=np.float64)
    for (label, y), color in zip(curves.items(), CYCLE):
        ax.loglog(t, y, label=label, color=color, lw=2)
    if hard_reference is not None:
        ax.axhline(hard_reference, color="k", ls="--", label="hard-label term (T = 1)")
    ax.set_xlabel("temperature T")
    ax.set_ylabel("gradient norm w.r.t. the student's logits")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig


def error_curves(curves: dict[str, list[np.ndarray]], paper: dict[str, float] | None = None,
                 projections: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
                 log_x: bool = False, ylabel: str = "test errors (of 10,000)") -> Figure:
    """Test errors after each epoch: seed mean (line) and seed range (band), log scale.

    ``projections`` maps a label to (epochs, errors) of a fitted continuation, drawn dashed;
    ``log_x``: a logarithmic epoch axis (curves of very different lengths in one figure).
    """
    fig = _figure(7.0, 4.2)
    ax = fig.subplots()
    for (label, runs), color in zip(curves.items(), CYCLE):
        color = COLORS.get(label, color)
        length = min(len(r) for r in runs)
        y = np.asarray([r[:length] for r in runs], dtype=np.float64)
        epochs = np.arange(1, length + 1)
        ax.plot(epochs, y.mean(0), color=color, lw=2,
                label=f"{label} ({len(runs)} seed{'s' if len(runs) > 1 else ''})")
        if len(runs) > 1:
            ax.fill_between(epochs, y.min(0), y.max(0), color=color, alpha=0.2)
        if paper and label in paper:
            ax.axhline(paper[label], color=color, ls=":", lw=1.5)
        if projections and label in projections:
            ax.plot(*projections[label], color=color, ls="--", lw=1.5,
                    label=f"{label}: power-law projection")
    _log_y(ax)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    if paper:
        ax.plot([], [], "k:", label="paper's final value")
    ax.legend()
    ax.grid(True, which="both", alpha=0.3)
    return fig


def confusion_matrices(matrices: dict[str, np.ndarray]) -> Figure:
    """Off-diagonal confusion counts (true digit by row, predicted by column), two panels a
    row, every non-zero count written in its cell, one shared colour scale."""
    columns = min(2, len(matrices))
    rows = -(-len(matrices) // columns)
    fig = _figure(PAGE_WIDTH_IN if columns > 1 else 4.9, 3.9 * rows)
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    offs = {t: np.asarray(m) * (1 - np.eye(len(m), dtype=int)) for t, m in matrices.items()}
    vmax = max(1, max(int(o.max()) for o in offs.values()))
    image = None
    for ax, (title, off) in zip(axes, offs.items()):
        image = ax.imshow(off, cmap="Reds", vmin=0, vmax=vmax)
        for i, j in zip(*np.nonzero(off)):
            ax.text(j, i, str(off[i, j]), ha="center", va="center", fontsize=9,
                    color="white" if off[i, j] > 0.6 * vmax else "black")
        ax.set_title(f"{title}: {int(off.sum())} errors")
        ax.set_xticks(range(len(off)))
        ax.set_yticks(range(len(off)))
        ax.set_xlabel("predicted digit")
        ax.set_ylabel("true digit")
    for ax in axes[len(offs):]:
        ax.axis("off")
    fig.colorbar(image, ax=list(axes[:len(offs)]), shrink=0.7,
                 label="test digits of the row's class taken for the column's")
    return fig


def digit_grid(rows: list[tuple[str, np.ndarray, list[str]]], columns: int = 12) -> Figure:
    """Rows of test digits; each row is (title, images (n, 28, 28), one caption per image)."""
    fig = Figure(figsize=(PAGE_WIDTH_IN, 1.3 * len(rows)))
    axes = fig.subplots(len(rows), columns, squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, top=1 - 0.45 / len(rows), bottom=0.02, hspace=0.9)
    for r, (title, images, captions) in enumerate(rows):
        for c in range(columns):
            ax = axes[r, c]
            ax.axis("off")
            if c < len(images):
                ax.imshow(np.asarray(images[c]).reshape(28, 28), cmap="gray_r")
                ax.set_title(captions[c], fontsize=9.5)
        top = axes[r, 0].get_position().y1
        fig.text(0.01, top + 0.3 / len(rows), title, fontsize=10, ha="left", va="bottom")
    return fig


def digit_row(title: str, images, labels, predicted, mask, columns: int = 12
              ) -> tuple[str, np.ndarray, list[str]]:
    """One row of ``digit_grid``: the first ``columns`` digits where ``mask`` is true, each
    captioned 'true→predicted' (Section 3: which test digits the networks get wrong)."""
    index = np.flatnonzero(mask)[:columns]
    return title, np.asarray(images)[index], [f"{labels[i]}→{predicted[i]}" for i in index]


def errors_vs_temperature(grid: dict[int, dict[float, list[int]]],
                          highlight: dict[int, tuple] | None = None,
                          baseline: dict[int, list[int]] | None = None) -> Figure:
    """Test errors against T, one panel (with its own y axis) per hidden width, seed mean with
    sd over seeds as error bars; ``highlight`` shades a range of T in a width's panel:
    {width: (low T, high T)} or {width: (low T, high T, legend label)}; ``baseline`` draws
    the same width trained on hard labels ({width: errors of each seed}) as a dashed line."""
    fig = _figure(7.0, 2.2 * len(grid) + 0.5)
    axes = fig.subplots(len(grid), 1, squeeze=False, sharex=True)[:, 0]
    all_t = sorted({t for by_t in grid.values() for t in by_t})
    for ax, (width, by_t), color in zip(axes, grid.items(), CYCLE):
        temps = sorted(by_t)
        means = np.array([np.mean(by_t[t]) for t in temps])
        sds = np.array([np.std(by_t[t], ddof=1) if len(by_t[t]) > 1 else 0.0 for t in temps])
        seeds = min(len(v) for v in by_t.values())
        ax.errorbar(temps, means, yerr=sds, color=color, marker="o", capsize=3, lw=2)
        if baseline and width in baseline:
            ax.axhline(float(np.mean(baseline[width])), color="0.35", ls="--", lw=1.2,
                       label=f"hard labels only ({np.mean(baseline[width]):.0f})")
        if highlight and width in highlight:
            lo, hi, *label = highlight[width]
            ax.axvspan(lo, hi, color=color, alpha=0.12,
                       label=label[0] if label else f"T = {lo:g} to {hi:g}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=9, loc="best")
        ax.set_title(f"2x{width} student ({seeds} seed{'s' if seeds > 1 else ''})", fontsize=10)
        ax.set_xscale("log")
        ax.set_xticks(all_t)
        ax.set_xticklabels([f"{t:g}" for t in all_t])
        ax.minorticks_off()
        ax.set_ylabel("test errors")
        ax.grid(True, which="both", alpha=0.3)
    axes[-1].set_xlabel("distillation temperature T")
    return fig


def errors_vs_hard_weight(grid: dict[float, list[int]], reference: dict[str, float] | None = None,
                          validation: dict[float, list[int]] | None = None) -> Figure:
    """Errors against the weight of the hard-label term (soft weight 1, T = 20): test errors
    (seed mean, error bars sd over seeds) and optionally the validation split's errors."""
    fig = _figure()
    ax = fig.subplots()
    weights = sorted(grid)
    means = [float(np.mean(grid[w])) for w in weights]
    sds = [float(np.std(grid[w], ddof=1)) if len(grid[w]) > 1 else 0.0 for w in weights]
    seeds = min(len(e) for e in grid.values())
    ax.errorbar(weights, means, yerr=sds, fmt="o-", color=CYCLE[0], lw=2, capsize=3,
                label=f"distilled 2x800, test set ({seeds} seed{'s' if seeds > 1 else ''})")
    if validation:
        vw = sorted(validation)
        ax.plot(vw, [float(np.mean(validation[w])) for w in vw], "s--", color=CYCLE[3], lw=1.5,
                label="validation split (last 10,000 training images)")
    for (label, value), color in zip((reference or {}).items(), CYCLE[1:]):
        ax.axhline(value, ls="--", color=color, label=label)
    ax.set_xscale("symlog", linthresh=0.01)
    ax.set_xticks(list(weights))
    ax.set_xticklabels([f"{w:g}" for w in weights])
    ax.set_xlabel("weight of the hard-label term")
    ax.set_ylabel("test errors (of 10,000)")
    ax.legend()
    ax.grid(True, alpha=0.3)
    return fig


def errors_vs_shift(shifts, curves: dict[str, np.ndarray], marks: dict[str, float] | None = None,
                    class_curves: dict[str, np.ndarray] | None = None,
                    class_label: str = "", total: int | None = None) -> Figure:
    """Test errors against the bias shift of the chosen classes (one line per seed), with the
    shifts chosen by each rule marked; optionally the errors on one class below.

    With ``total`` (the number of test digits) the top panel shows the test error in percent
    of ``total`` on a linear axis instead of counts on a log axis."""
    panels = 2 if class_curves else 1
    fig = _figure(7.0, 3.0 * panels + 0.6)
    axes = fig.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
    top = "test error (% of all digits)" if total else "test errors (all digits)"
    for n, (ax, data, ylabel) in enumerate(zip(axes, (curves, class_curves or {}),
                                               (top, f"test errors on {class_label}"))):
        percent = bool(total) and n == 0
        for (label, y), color in zip(data.items(), CYCLE):
            y = 100.0 * np.asarray(y, dtype=np.float64) / total if percent else y
            ax.plot(shifts, y, color=color, lw=1.8, label=label)
        for (label, value), style in zip((marks or {}).items(), ("--", ":", "-.")):
            ax.axvline(value, color="k", ls=style, lw=1, label=label)
        if percent:
            ax.set_ylim(bottom=0)
        elif min(float(np.min(y)) for y in data.values()) > 0:
            _log_y(ax)
        else:  # zero errors cannot be shown on a log scale
            ax.set_yscale("symlog", linthresh=1)
            ax.set_ylim(bottom=0)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=9)
    axes[-1].set_xlabel("bias shift (added to the logits of the shifted classes)")
    return fig


def clipped_share(curves: dict[str, dict[str, np.ndarray]], bound: float) -> Figure:
    """Share of the updates whose gradient norm exceeded ``bound`` (and was clipped) in each
    epoch, one panel per group (e.g. hidden width), one line per setting (seed mean): colours
    in the settings' order (a sequential map, e.g. low to high temperature) and line styles
    that tell neighbours apart; page width, 10-point text."""
    from matplotlib import colormaps
    fig = _figure(8.0, 3.2)
    axes = fig.subplots(1, len(curves), squeeze=False, sharey=True)[0]
    styles = ["-", "--", ":", "-."]
    for ax, (title, lines) in zip(axes, curves.items()):
        colors = colormaps["viridis"](np.linspace(0, 0.9, max(len(lines), 2)))
        for i, (label, share) in enumerate(lines.items()):
            share = np.asarray(share, dtype=float)
            ax.plot(np.arange(1, len(share) + 1), share, label=label, color=tuple(colors[i]),
                    linestyle=styles[i % len(styles)], linewidth=1.5)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch", fontsize=10)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=10)
    axes[0].set_ylabel(f"share clipped (norm > {bound:g})", fontsize=10)
    axes[-1].legend(fontsize=9, ncol=2)
    return fig
