import numpy as np
import pytest

from kdlib.analysis import progress
from kdlib.analysis.progress import epoch_reaching, fit_learning_curve, power_law, project


def test_fit_recovers_a_known_power_law():
    epochs = np.arange(1, 301)
    curve = power_law(epochs, 55.0, 900.0, 0.7)
    fit = fit_learning_curve(curve)
    assert fit["from_epoch"] == 150 and fit["to_epoch"] == 300
    assert fit["floor"] == pytest.approx(55.0, rel=1e-3)
    assert fit["exponent"] == pytest.approx(0.7, rel=1e-3)
    assert project(fit, 1000) == pytest.approx(power_law(1000, 55.0, 900.0, 0.7), rel=1e-4)


def test_epoch_reaching_inverts_the_curve_and_says_never_below_the_floor():
    fit = {"floor": 50.0, "scale": 1000.0, "exponent": 1.0}
    assert epoch_reaching(fit, 60.0) == pytest.approx(100.0)
    assert epoch_reaching(fit, 50.0) is None
    assert epoch_reaching(fit, 40.0) is None


def test_fit_ignores_the_early_part_when_asked():
    epochs = np.arange(1, 201)
    curve = power_law(epochs, 60.0, 500.0, 0.5)
    curve[:20] = 5000  # a dead start that the fit must not see
    fit = fit_learning_curve(curve, from_epoch=21)
    assert fit["floor"] == pytest.approx(60.0, rel=1e-3)


@pytest.mark.parametrize("bad", [[], [100.0] * 9, [1.0, np.nan] * 8])
def test_fit_refuses_short_or_broken_curves(bad):
    with pytest.raises(ValueError, match="curve"):
        fit_learning_curve(bad)


def test_mean_curve_averages_the_common_epochs():
    from kdlib.analysis.progress import mean_curve
    assert mean_curve([[10, 8, 6], [20, 10]]).tolist() == [15.0, 9.0]
    with pytest.raises(ValueError, match="no curve"):
        mean_curve([[], []])


def test_run_progress_reads_checkpoints_and_skips_runs_not_started(tmp_path):
    """A run in progress is read from its checkpoint (epoch, per-epoch test errors)."""
    from kdlib.runs import experiments
    from kdlib.core.io import write_torch
    from kdlib.analysis.progress import run_progress
    from kdlib.runs.catalogue import configs_for
    cfgs = configs_for("paper_teacher", "full", [0, 1])
    path = experiments.checkpoint_path([cfgs[0]], tmp_path)
    history = {"train_loss": [[0.5], [0.4]], "test_errors": [[300], [280]]}
    write_torch(path, {"epoch": 2, "history": history, "model": {}, "fingerprint": "x"})
    got = run_progress(cfgs, tmp_path)
    assert list(got) == ["paper-teacher-s0"]
    assert got["paper-teacher-s0"]["epoch"] == 2 and got["paper-teacher-s0"]["test_errors"] == [300, 280]
    assert not got["paper-teacher-s0"]["finished"] and got["paper-teacher-s0"]["epochs"] == 1000


def test_projection_waits_for_enough_epochs_then_continues_the_mean():
    from kdlib.analysis.progress import projection
    assert projection([[500, 400, 300], [450, 350, 250]], 1000) is None  # smoke: 3 epochs
    curves = [power_law(np.arange(1, 41), 60.0, 800.0, 0.6)] * 2
    got = projection(curves, 100)
    assert got["epochs"][0] == 40 and got["epochs"][-1] == 100
    assert got["errors"][-1] == pytest.approx(power_law(100, 60.0, 800.0, 0.6), rel=1e-3)


def test_status_rows_and_summary_report_the_last_epoch_of_each_run():
    def run(seed, epoch, errors, validation=False, epochs=1000):
        return {"seed": seed, "validation": validation, "epoch": epoch, "epochs": epochs,
                "test_errors": errors, "finished": epoch == epochs}
    runs = {"a": run(1, 290, [140, 135]), "b": run(0, 300, [90, 137]),
            "v": run(0, 600, [80, 87], validation=True), "new": run(2, 0, [])}
    assert progress.status_rows(runs) == [
        ["a", "test", "290 of 1000", 135, "in progress"],
        ["b", "test", "300 of 1000", 137, "in progress"],
        ["v", "validation", "600 of 1000", 87, "in progress"],
        ["new", "test", "0 of 1000", "-", "in progress"]]
    assert len(progress.STATUS_HEADER) == len(progress.status_rows(runs)[0])
    summary = progress.test_split_summary(runs, paper=67)
    assert summary == {"runs": 3, "finished": 0, "errors": [137, 135], "mean": None, "sd": None,
                       "verdict": None}
    done = {"a": run(0, 4, [70, 71], epochs=4), "b": run(1, 4, [60, 69], epochs=4),
            "c": run(2, 4, [75, 73], epochs=4), "v": run(0, 2, [80], validation=True, epochs=4)}
    summary = progress.test_split_summary(done, paper=67)
    assert summary["errors"] == [71, 69, 73] and summary["finished"] == summary["runs"] == 3
    assert summary["mean"] == pytest.approx(71.0) and summary["sd"] == pytest.approx(2.0)
    # the count rule: the paper's 67 within our mean +- 2 sd (67 to 75)
    assert summary["verdict"]["verdict"] == "yes" and summary["verdict"]["low"] == pytest.approx(67)
    assert progress.test_split_summary(done, paper=60)["verdict"]["verdict"] == "no (ours higher)"
    assert progress.test_split_summary(done)["verdict"] is None
    # only once every test-split run finished, and only with a band (three seeds)
    mixed = {**done, "a": run(0, 3, [70, 72], epochs=4)}
    assert progress.test_split_summary(mixed, paper=67)["verdict"] is None
    two = {"a": done["a"], "b": done["b"]}
    assert progress.test_split_summary(two, paper=67)["verdict"] is None
    assert progress.test_split_summary({}, paper=67)["runs"] == 0
