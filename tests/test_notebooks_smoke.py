"""Every notebook of the book runs end to end on the smoke profile and its glued results are
sane. The notebooks are executed once, in order, with papermill (kernel python3, working
directory notebooks/) into a temporary folder, sharing one temporary results folder so the
smoke teacher is trained once."""
import ast
import json
import os
import time
from pathlib import Path

import numpy as np
import papermill
import pytest

ROOT = Path(__file__).resolve().parents[1]
STARTED = time.time()  # before any notebook of this session ran
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NAMES = ["01_derivations", "02_teacher_and_students", "03_temperature_and_capacity",
         "04_omitted_digits", "05_results", "06_paper_teacher", "07_soft_targets_regulariser",
         "08_ensemble_distillation", "09_specialists", "10_history"]


def glued(path: Path) -> dict:
    """{key: value} of every myst_nb.glue call in an executed notebook."""
    values = {}
    for cell in json.loads(path.read_text())["cells"]:
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name is None:
                continue
            text = out["data"].get("application/papermill.record/text/plain",
                                   out["data"].get("text/plain"))
            try:
                values[name] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                values[name] = text
    return values


def outputs(path: Path) -> list[dict]:
    return [out for cell in json.loads(path.read_text())["cells"] for out in cell.get("outputs", [])]


def streams(path: Path, name: str) -> str:
    return "".join("".join(out["text"]) for out in outputs(path)
                   if out["output_type"] == "stream" and out["name"] == name)


@pytest.fixture(scope="session")
def executed(tmp_path_factory):
    """{notebook name: (output path, glued values) or the exception it raised}."""
    out_dir = tmp_path_factory.mktemp("notebooks")
    results = tmp_path_factory.mktemp("smoke-results")
    done = {}
    with pytest.MonkeyPatch.context() as mp:  # the kernel imports this checkout's kdlib
        mp.setenv("PYTHONPATH", os.pathsep.join([str(ROOT)] + [p for p in
                                                 [os.environ.get("PYTHONPATH")] if p]))
        for nb in NOTEBOOKS:
            out = out_dir / nb.name
            try:
                papermill.execute_notebook(
                    str(nb), str(out), kernel_name="python3", cwd=str(ROOT / "notebooks"),
                    parameters={"profile": "smoke", "seeds": [0], "results_dir": str(results)},
                    progress_bar=False)
                done[nb.stem] = (out, glued(out), results)
            except Exception as e:  # reported by the test of that notebook
                done[nb.stem] = e
    return done


def result(executed, name):
    value = executed[name]
    if isinstance(value, Exception):
        pytest.fail(f"{name}.ipynb failed on the smoke profile:\n{value}")
    return value


def runs_of(results, experiment):
    """The smoke runs (seed 0) of an experiment, loaded from the notebooks' results folder."""
    from kdlib.analysis.results import load_available
    runs = load_available(experiment, "smoke", [0], results)
    assert runs, f"no smoke artifacts of {experiment}"
    return runs


def count(g, key):
    """The number a glued "mean" summary starts with (one seed: the value itself)."""
    return float(str(g[key]).split()[0])


def test_the_book_has_its_notebooks():
    assert [nb.stem for nb in NOTEBOOKS] == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_clean(executed, name):
    """No warnings on stderr and no absolute paths of this machine in any output."""
    path, _, results = result(executed, name)
    assert streams(path, "stderr") == ""
    text = json.dumps(outputs(path))
    assert str(results) not in text
    assert str(ROOT) not in text


def _commit() -> str:
    from kdlib.runs.provenance import git_commit
    return git_commit()


STARTED_COMMIT = _commit()  # what the runs of this session record (a commit made meanwhile: not)


def test_a_rerun_into_a_fresh_folder_shows_the_new_runs_and_leaves_results_alone(executed):
    """What ``make reproduce PROFILE=smoke RESULTS=<dir>`` does: the notebooks train into the
    folder they are given, their provenance lines name those runs (the smoke profile, this
    checkout's commit), and the committed ``results/`` are not written to."""
    path, _, results = result(executed, "02_teacher_and_students")
    shown = "".join("".join(out.get("data", {}).get("text/markdown", "")) for out in outputs(path))
    lines = [line for line in shown.splitlines() if "profile" in line and "commit" in line]
    assert lines and all("profile smoke" in line for line in lines), lines
    commit = STARTED_COMMIT[:7]
    assert all(f"commit {commit}" in line for line in lines), (commit, lines)
    assert any(results.rglob("*.json"))
    written = [p for p in (ROOT / "results").rglob("*") if p.is_file() and p.stat().st_mtime > STARTED]
    assert written == []


def test_derivations(executed):
    g = result(executed, "01_derivations")[1]
    assert g["profile"] == "smoke"
    assert g["sympy_gradient_ok"] is True
    assert g["autograd_gradient_ok"] is True
    assert g["series_ok"] is True
    assert g["teacher_weights_match"] is True
    assert 0 < g["teacher_errors_nb1"] < 1500
    # the two chosen 2s: one more like a 3, the other more like a 7
    assert float(g["like3_p3"]) > float(g["like3_p7"])
    assert float(g["like7_p7"]) > float(g["like7_p3"])
    # the high-temperature approximation improves with T; T^2 keeps the gradient's scale
    assert float(g["approx_err_T20"].rstrip("%")) < float(g["approx_err_T1"].rstrip("%"))
    assert float(g["grad_ratio_without"]) < 0.01 < float(g["grad_ratio_with"])


def test_teacher_and_students(executed, mnist):
    """The chapter's numbers are those of the artifacts it loaded, recomputed here."""
    from kdlib.analysis.stats import mcnemar_exact
    _, g, results = result(executed, "02_teacher_and_students")
    labels = mnist.test_labels.numpy()
    experiments = {"teacher": "paper_teacher", "student": "student", "distilled": "distilled"}
    runs = {name: runs_of(results, experiment)[0] for name, experiment in experiments.items()}
    wrong = {name: r.logits().argmax(1) != labels for name, r in runs.items()}
    for name, r in runs.items():
        assert g[f"{name}_errors_mean"] == r.test_errors == int(wrong[name].sum())
        assert g[f"{name}_errors"] == str(r.test_errors)  # one seed: no sd
    assert g["teacher_errors_s0"] == runs["teacher"].test_errors
    assert g["distilled_errors_s0"] == runs["distilled"].test_errors
    assert g["shared_errors"] == int((wrong["teacher"] & wrong["distilled"]).sum())
    only_distilled_right, only_student_right, p = mcnemar_exact(~wrong["distilled"], ~wrong["student"])
    assert g["mcnemar_max_p"] == f"{p:.2g}"
    better = only_distilled_right > only_student_right
    expected = ("not consistently different from the baseline (p < 0.05 in 0 of 1 seeds)" if p >= 0.05 else
                f"significantly {'better' if better else 'worse'} than the baseline in every seed")
    assert g["distillation_gain"] == expected
    # the results table's rule, pooled over seeds (one seed here: the same test)
    pooled = "yes" if better and p < 0.05 else "no"
    assert g["pooled_gain"].startswith(f"{pooled} ({int(wrong['distilled'].sum())} vs "
                                       f"{int(wrong['student'].sum())} errors over 1 seeds, p ")
    assert g["teacher_epochs"] == 3
    # soft targets only (hard weight 0) against the baseline student, the same pooled rule
    [soft] = runs_of(results, "soft_only")
    assert soft.config["member"]["hard_weight"] == 0.0
    assert g["soft_only_verdict"].split(" (")[1].startswith(
        f"{soft.test_errors} vs {int(wrong['student'].sum())} errors over 1 seeds")


def test_temperature_and_capacity(executed, mnist):
    from kdlib.analysis import claims
    from kdlib.runs.recipes import sweep_settings
    _, g, results = result(executed, "03_temperature_and_capacity")
    assert g["sweep_epochs"] == sweep_settings()[1]  # the recipe's (the smoke budget caps it at 3)
    sweep, hard = runs_of(results, "temperature"), runs_of(results, "hard_weight")
    best_t, best_mean = claims.best_temperature(claims.temperature_grid(sweep)[30])
    assert g["best_t_small"] == f"{best_t:g}" and g["best_t_small_errors"] == f"{best_mean:g}"
    assert g["best_t_small"] in ("1", "4", "20")          # the smoke grid
    assert g["flat_300"].startswith("not testable")        # only T = 20 is >= 8 in smoke
    assert g["flat_800"].startswith("not testable")        # no 2x800 row in smoke
    weight, errors = claims.best_hard_weight(hard)
    assert g["best_hard_weight"] == f"{weight:g}" and g["best_hard_weight_errors"] == f"{errors:g}"
    verdict = g["hard_weight_verdict"]  # kdlib.analysis.verdicts: weight 0 against weight 1, McNemar
    claim = claims.hard_weight_claim(hard, [], mnist.test_labels.numpy())[0]
    assert verdict == f"{claim['replicated']} ({claim['ours']})"
    assert verdict.startswith(("yes (best lower weight 0:", "no (best lower weight 0:"))
    if g["best_hard_weight"] == "1":
        assert verdict.startswith("no")
    assert g["validation_hard_weight"] == "not run in this profile"  # never trained by a notebook
    # each width against its hard-label twin (same epochs, seed 0), at T = 20, recomputed
    from kdlib.analysis.results import p_text
    from kdlib.analysis.stats import mcnemar_exact
    labels = mnist.test_labels.numpy()
    hard_twin = {r.config["spec"]["widths"][0]: r for r in runs_of(results, "baseline")}
    assert sorted(hard_twin) == [30, 300] and {r.config["spec"]["epochs"] for r in hard_twin.values()} == {3}
    at20 = {r.config["spec"]["widths"][0]: r for r in sweep if r.config["member"]["temperature"] == 20}
    parts = []
    for w in (300, 30):
        a, b = (r.logits().argmax(1) == labels for r in (at20[w], hard_twin[w]))
        _, _, p = mcnemar_exact(a, b)
        words = ("not significantly different" if p >= 0.05 else
                 f"significantly {'better' if (~a).sum() < (~b).sum() else 'worse'}")
        parts.append(f"2x{w}: {words} ({(~a).sum()} vs {(~b).sum()} errors, {p_text(p, with_p=True)})")
    assert g["helps_at_20"] == "; ".join(parts)


def test_omitted_digits(executed, mnist):
    """Errors before and after the bias shift are those of the artifacts' logits."""
    from kdlib.analysis.bias_shift import OMIT3_SHIFTS, ONLY78_SHIFTS, best_bias_shift
    _, g, results = result(executed, "04_omitted_digits")
    assert g["test_3s"] == 1010
    labels = mnist.test_labels.numpy()
    [omit3], [only78] = runs_of(results, "omit3"), runs_of(results, "only78")
    assert count(g, "omit3_errors") == omit3.test_errors
    assert count(g, "omit3_errors_on_3") == omit3.metrics["per_class_errors"][3]
    shift, errors = best_bias_shift(omit3.logits(), labels, [3], OMIT3_SHIFTS)
    assert count(g, "omit3_test_shift") == shift >= 0
    assert count(g, "omit3_test_shifted") == errors <= omit3.test_errors  # 0 is in the grid
    assert count(g, "only78_error") == round(100 * only78.test_errors / len(labels), 1)
    shift, errors = best_bias_shift(only78.logits(), labels, [7, 8], ONLY78_SHIFTS)
    assert count(g, "only78_test_shift") == shift <= 0
    assert count(g, "only78_test_shifted") == round(100 * errors / len(labels), 1)
    assert g["omit3_prior_shift"] != "unavailable" and g["only78_prior_shift"] != "unavailable"
    # the sensitivity rows: the same transfer sets with the low hard-label weight
    low = runs_of(results, "omitted_low_hw")
    assert sorted(r.config["transfer"] for r in low) == ["drop:3", "keep:7,8"]
    assert {r.config["member"]["hard_weight"] for r in low} == {0.1}
    [low3] = [r for r in low if r.config["transfer"] == "drop:3"]
    assert count(g, "low_omit3_errors") == low3.test_errors


def test_results(executed, mnist):
    from kdlib.analysis.claims import claims_table
    _, g, results = result(executed, "05_results")
    # every smoke experiment of Section 3 has run by now: 13 claims, none missing
    assert g["claims_total"] == 13
    assert g["claims_missing_text"] == ""
    rows = claims_table(results, "smoke", [0], mnist.test_labels.numpy(),
                        mnist.train_labels.numpy())
    verdicts = [r["replicated"] for r in rows]
    assert g["claims_replicated"] == verdicts.count("yes")
    assert g["claims_tested"] == sum(v == "yes" or v == "no" or v.startswith("no (") for v in verdicts)
    # the runs behind the reported results that chapters 1-4 made (which ones exist by then
    # depends on the chapters' order; every Section 3 experiment of the smoke profile has one)
    assert g["total_runs"] >= 16 and int(g["superseded_runs"]) >= 0
    # hours with two decimals (a quick smoke profile may round to 0.00)
    assert str(g["total_compute_hours"]).count(".") == 1 and float(g["total_compute_hours"]) >= 0


def test_history(executed):
    """The history page reads the committed tables and the runs of the earlier recipes (the
    same in every profile): its numbers are those of the artifacts the tables name."""
    from kdlib.runs import history
    _, g, _ = result(executed, "10_history")
    rows = history.superseded_runs()
    assert g["superseded_runs"] == len(rows) > 300
    [short_teacher] = history.runs("first recipe", "teacher", ["teacher-s0"])
    long_teacher, long_student = history.runs("first recipe", "teacher_budget")
    assert g["budget_epochs"] == long_teacher.config["spec"]["epochs"] == 180
    assert g["budget_short_teacher_errors"] == short_teacher.test_errors
    assert g["budget_teacher_errors"] == long_teacher.test_errors
    assert g["budget_distilled_errors"] == long_student.test_errors
    assert g["history_replicated"].startswith("first recipe: ")
    assert "rho = " in g["clipping_rho"] and "fig_clipped_share" in g


def test_paper_teacher(executed):
    """The smoke profile trains the paper-recipe teacher (3 epochs) and reports it finished."""
    out, g, results = result(executed, "06_paper_teacher")
    assert g["teacher_runs_started"] == 1
    assert g["teacher_epochs_done"] == g["teacher_epochs"] == 3
    assert (results / "smoke" / "paper_teacher" / "paper-teacher-s0.json").exists()
    assert "fig_teacher_curve" in g


def test_soft_targets(executed):
    """Issue 15, Section 6: hard labels and soft targets on 3% and on all of the smoke images."""
    g = result(executed, "07_soft_targets_regulariser")[1]
    assert g["curve_images"] == 1000
    errors = {key: int(g[key].split()[0]) for key in ("hard_f3", "soft_f3", "hard_f100", "soft_f100")}
    assert all(0 < e < 9000 for e in errors.values()), errors
    # Section 6's effect, large even on the smoke profile (seen: 1631 vs 1012 errors on 3%)
    assert errors["soft_f3"] < 0.8 * errors["hard_f3"] and g["verdict_f3"] == "yes"
    assert errors["hard_f100"] < errors["hard_f3"]  # more data, fewer errors


def wrong_of(run, labels):
    """Per test digit: does the run's stored logits' top class miss the label?"""
    return run.logits().argmax(1) != labels


def better(wrong_a, wrong_b):
    """The chapters' "significantly better" rule, recomputed: A has fewer errors than B and
    McNemar's exact test on the same test digits gives p < 0.05. Returns (verdict, p)."""
    from kdlib.analysis.stats import mcnemar_exact
    _, _, p = mcnemar_exact(~wrong_a, ~wrong_b)
    return ("yes" if wrong_a.sum() < wrong_b.sum() and p < 0.05 else "no"), p


def test_ensemble_distillation(executed, mnist):
    """Issue 15, Section 4: two smoke teachers, their ensemble and the students; the glued
    numbers and the verdict are recomputed from the artifacts the chapter read."""
    from kdlib.runs.studies import ensemble_members
    from kdlib.runs.experiments import load_artifact
    _, g, results = result(executed, "08_ensemble_distillation")
    labels = mnist.test_labels.numpy()
    members = [load_artifact(c, results) for c in ensemble_members("smoke")]
    assert g["ensemble_size"] == len(members) == 2
    # the ensemble, recomputed here in numpy: the mean of the members' softmax at T = 1
    z = np.stack([m.logits().astype(np.float64) for m in members])
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ensemble_errors = int((p.mean(0).argmax(-1) != labels).sum())
    member_errors = [int(wrong_of(m, labels).sum()) for m in members]
    assert member_errors == [m.test_errors for m in members]
    assert g["ensemble_errors"] == ensemble_errors
    # averaging is not worse than its worse member (seen: 553 against members 569 and 587)
    assert 0 < ensemble_errors <= max(member_errors), (ensemble_errors, member_errors)
    runs = {r.config["name"]: r for r in runs_of(results, "ensemble")}
    [hard] = runs_of(results, "student")
    students = {"hard": hard, "one": runs["from-teacher-s0"], "from_ensemble": runs["from-ensemble2-s0"]}
    wrong = {key: wrong_of(r, labels) for key, r in students.items()}
    for key, r in students.items():
        assert count(g, f"{key}_errors") == r.test_errors == int(wrong[key].sum()), key
        assert 0 < r.test_errors < 1500, key
    # the verdict is the rule applied to these two students, whatever it says
    verdict, p_one = better(wrong["from_ensemble"], wrong["one"])
    assert g["verdict_ensemble_vs_one"] == verdict, (verdict, p_one)
    # the distilled students beat hard labels significantly even on the smoke profile (seen,
    # seed 0: 505 and 510 errors against 601, p 4e-8 and 1e-7; over 3 seeds 1506 and 1504
    # against 1775). Seen for the verdict: 505 against 510, p 0.70, "no".
    for key in ("from_ensemble", "one"):
        assert better(wrong[key], wrong["hard"])[0] == "yes", key
    # the chapter's claims rows: the ensemble against its members (pooled), and the student
    # distilled from it against hard labels
    ensemble_wrong = p.mean(0).argmax(-1) != labels
    pooled, _ = better(np.concatenate([ensemble_wrong] * len(members)),
                       np.concatenate([wrong_of(m, labels) for m in members]))
    distilled, _ = better(wrong["from_ensemble"], wrong["hard"])
    assert g["ensemble_claim_verdicts"] == f"{pooled}, {distilled}"


def test_specialists(executed, mnist):
    """Issue 15, Section 5: generalist, specialists of k = 2 and 3, their combination; the
    groups, the dustbin corrections, the combination's errors and the verdict are recomputed
    from the artifacts the chapter read."""
    from kdlib.analysis.study_claims import combined_probabilities, specialists_of
    _, g, results = result(executed, "09_specialists")
    assert g["ks"] == "2, 3" and "fig-covariance" in g
    labels = mnist.test_labels.numpy()
    runs = runs_of(results, "specialists")
    by_name = {r.config["name"]: r for r in runs}
    generalist = by_name["generalist-s0"]
    specialists = specialists_of(runs, 0, (2, 3))
    assert len(specialists) == 2 + 3 == len(runs) - 1
    # each k's clusters split the ten digits: every digit has one specialist per k
    for k in (2, 3):
        groups = [by_name[f"spec-k{k}g{j}-s0"].metrics["classes"] for j in range(k)]
        assert sorted(c for group in groups for c in group) == list(range(10)), (k, groups)
    # the enriched set (the specialist's classes and as many others, or all the others) and
    # the dustbin correction (log of the oversampling of the special classes' odds), from
    # the first 10,000 training labels
    train = mnist.train_labels.numpy()[:10000]
    for r in specialists:
        inside = int(np.isin(train, r.metrics["classes"]).sum())
        size = inside + min(inside, len(train) - inside)
        assert r.metrics["transfer_set_size"] == size, r.config["name"]
        odds = lambda n_in, n: n_in / (n - n_in)  # noqa: E731
        # (kdlib takes the class shares in float32: seen 0.46036176 against 0.46036179)
        assert r.metrics["dustbin_correction"] == pytest.approx(
            np.log(odds(inside, size) / odds(inside, len(train))), abs=1e-6), r.config["name"]
        assert r.metrics["dustbin_correction"] >= 0
    wrong_generalist = wrong_of(generalist, labels)
    assert count(g, "generalist_errors") == generalist.test_errors == int(wrong_generalist.sum())
    assert 0 < generalist.test_errors < 1500
    # Section 5.4's combination with every specialist, recomputed from the stored logits
    q = combined_probabilities(generalist, specialists).numpy()
    assert q.shape == (len(labels), 10) and (q >= 0).all()
    assert np.allclose(q.sum(1), 1)
    wrong_combined = q.argmax(1) != labels
    assert count(g, "combined_errors") == int(wrong_combined.sum())
    # the combination stays near the generalist, far from chance (seen, seed 0: 613 errors
    # against 601, p 0.43, "no"; over 3 seeds 587.0 ± 22.9 against 591.7 ± 8.1)
    assert wrong_combined.sum() < 1.2 * wrong_generalist.sum()
    verdict, p = better(wrong_combined, wrong_generalist)
    assert g["verdict_specialists"] == verdict, (verdict, p, wrong_combined.sum())
    # the chapter's claims rows: the first is the same comparison
    assert g["specialist_claim_verdicts"].split(", ")[0] == verdict
