"""The paper teacher's committed checkpoints stay resumable: their file names (the group's
config hashes), the fingerprint inside (``kdlib.train.checkpoint_identity``), the state-dict
keys and shapes, the velocity list and the RNG-state layout are what the code computes now.
A refactor that changed any of them would silently restart 1000-epoch runs from scratch.
A finished run has its artifact (every epoch's test errors) and no checkpoint left."""
import pytest
import torch

from kdlib.experiments import artifact_path, checkpoint_path, load_artifact
from kdlib.recipes import configs_for
from kdlib.io import read_torch
from kdlib.models import MLP
from kdlib.results import default_results_dir
from kdlib.step import Step
from kdlib.train import checkpoint_identity

RESULTS = default_results_dir()
RUNS = (configs_for("paper_teacher", "full", [0, 1, 2])
        + configs_for("paper_teacher", "full", [0], validation=True))
#: A finished run has its artifact and no checkpoint; the others resume from theirs.
FINISHED = [c for c in RUNS if artifact_path(c, RESULTS).exists()]
CONFIGS = [c for c in RUNS if c not in FINISHED]


def transfer_size(cfg) -> int:
    """Profile full, transfer set "all": every training image (the first 50,000 on the
    validation split)."""
    return 50000 if cfg.validation else 60000


def test_the_code_names_the_committed_checkpoints():
    committed = sorted((RESULTS / "checkpoints").glob("paper_teacher-*.pt"))
    assert sorted(checkpoint_path([c], RESULTS) for c in CONFIGS) == committed
    # the names the runs were started under (a changed config hash would orphan a checkpoint)
    assert {c.name + ("-validation" if c.validation else ""): checkpoint_path([c], RESULTS).name
            for c in RUNS} == {"paper-teacher-s0": "paper_teacher-738027260d04186c.pt",
                               "paper-teacher-s1": "paper_teacher-da55a171e327d82b.pt",
                               "paper-teacher-s2": "paper_teacher-d65ca88a35fd8646.pt",
                               "paper-teacher-s0-validation": "paper_teacher-c223fcd223168ef6.pt"}
    # the validation-split teacher finished on 2026-12-03 (1000 epochs), before the others
    assert ("paper-teacher-s0", True) in [(c.name, c.validation) for c in FINISHED]
    assert not any(checkpoint_path([c], RESULTS).exists() for c in FINISHED)


@pytest.mark.parametrize("cfg", RUNS, ids=[c.name + ("-validation" if c.validation else "")
                                           for c in RUNS])
def test_a_committed_checkpoint_resumes_under_the_current_code(cfg):
    if cfg in FINISHED:  # its artifact holds every epoch; nothing is left to resume
        run = load_artifact(cfg, RESULTS)
        assert len(run.metrics["test_errors_curve"]) == cfg.spec.epochs == 1000
        assert run.metrics["resumed_from_epoch"] > 0  # it ran over several sessions
        return
    state = read_torch(checkpoint_path([cfg], RESULTS))
    assert state["fingerprint"] == checkpoint_identity(cfg.spec, [cfg.member], transfer_size(cfg))
    assert sorted(state) == ["epoch", "fingerprint", "history", "model", "noise_rng",
                             "order_rng", "velocity"]
    spec = cfg.spec
    model = MLP(spec.widths, num_models=1, input_dropout=spec.input_dropout,
                hidden_dropout=spec.hidden_dropout, max_norm=spec.max_norm, seeds=[0])
    expected = model.state_dict()
    assert list(state["model"]) == list(expected)
    assert all(state["model"][k].shape == v.shape for k, v in expected.items())
    velocity = Step(model, "float32").velocity
    assert [v.shape for v in state["velocity"]] == [v.shape for v in velocity]
    assert len(state["order_rng"]) == len(state["noise_rng"]) == 1
    assert state["order_rng"][0].shape == torch.Generator().get_state().shape
    assert len(state["history"]["train_loss"]) == state["epoch"] > 0
