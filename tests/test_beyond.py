"""Configs of issue 15's studies (kdlib.beyond): what each run is, and that a changed teacher
makes its students' artifacts stale."""
from dataclasses import replace

import pytest

from kdlib import beyond as bd
from kdlib.protocols import use_protocol
from kdlib.recipes import EXPERIMENTS, configs_for


def test_registered_and_sized():
    assert {"soft_targets", "ensemble", "specialists"} <= set(EXPERIMENTS)
    assert len(configs_for("soft_targets", "full")) == 4 * 2 * 3
    assert len(configs_for("ensemble", "full")) == 2 * 3
    assert len(configs_for("specialists", "full")) == 3 + 3 * (3 + 4 + 5)


def test_soft_targets_pairs_differ_only_in_the_loss_and_keep_the_updates():
    """Under each protocol, with its distilled recipe (hard weight, student epochs) and teacher."""
    # 1/f times the epochs: 40 -> 1333 (protocol 1) or 20 -> 667 (2) at 3%, warm-up 2 -> 67
    for number, epochs, at_3_percent in ((1, 40, 1333), (2, 20, 667)):
        with use_protocol(number) as p:
            runs = {c.name: c for c in configs_for("soft_targets", "full")}
            hard, soft = runs["f3-hard-s1"], runs["f3-soft-s1"]
            assert hard.spec == soft.spec and hard.transfer == soft.transfer == "subset:0.03"
            assert hard.member.soft_weight == 0 and soft.member.temperature == 20
            assert soft.member.hard_weight == p.hard_weight
            teacher = bd.study_teacher_configs("full", [1])[0]
            assert soft.sources == (bd.ref(teacher),) and hard.sources == ()
            assert teacher.experiment == p.teacher and p.student_epochs == epochs
            assert runs["f3-hard-s0"].spec.epochs == at_3_percent
            assert runs["f3-hard-s0"].spec.warmup_epochs == 67
            assert runs["f100-hard-s0"].spec.epochs == epochs
            assert hard.spec.max_grad_norm == p.max_grad_norm


def test_ensemble_students_name_their_teachers():
    runs = {c.name: c for c in configs_for("ensemble", "full", [0, 1, 2])}
    teachers = bd.study_teacher_configs("full", [0, 1, 2])
    assert runs["from-ensemble3-s2"].sources == tuple(bd.ref(t) for t in teachers)
    assert runs["from-teacher-s2"].sources == (bd.ref(teachers[2]),)
    assert len(bd.ensemble_members("smoke")) == 2


def test_a_changed_source_changes_the_hash():
    cfg = configs_for("ensemble", "full", [0])[0]
    assert replace(cfg, sources=("teacher/other@0",)).hash != cfg.hash


def test_specialists_start_from_a_stored_generalist():
    cfgs = configs_for("specialists", "full", [0])
    gen = cfgs[0]
    assert gen.name == "generalist-s0" and gen.store_weights
    assert [c.transfer for c in cfgs[1:4]] == ["specialist:k3g0", "specialist:k3g1", "specialist:k3g2"]
    assert all(c.sources == (bd.ref(gen),) for c in cfgs[1:])
    assert cfgs[1].spec.epochs == 10 and cfgs[1].spec.jitter == 2
    assert configs_for("specialists", "smoke", [0])[1].spec.epochs == 1


def test_scaled_spec_rejects_unknown_profiles():
    with pytest.raises(ValueError, match="profile"):
        bd.scaled_spec(bd.SPECIALIST, "huge")


#: Issue 15's studies, config hashes of seeds 0-2 per profile under protocol 1 (pinned when the
#: studies' budgets became a table, STUDY_BUDGETS, instead of profile branches; the configs did
#: not change).
PINNED_STUDY_HASHES = {
    "soft_targets/smoke": "dfd058dcaf6dc91a", "soft_targets/full": "f894145ed7fa1cb9",
    "ensemble/smoke": "4dda1cf73c716d8f", "ensemble/full": "12adb9f9d67a29d6",
    "specialists/smoke": "22a80d4cce5b7784", "specialists/full": "95940bf667bf75bc",
}
#: The same under protocol 2 (pinned when the book switched to it): the students that learn
#: from a teacher differ; the specialists (no teacher) are the same runs.
PINNED_STUDY_HASHES_PROTOCOL_2 = {
    "soft_targets/smoke": "5e14dcb5046f974b", "soft_targets/full": "086f2f363ef6611b",
    "ensemble/smoke": "5153119de681ab61", "ensemble/full": "94fc58394640f0d0",
    "specialists/smoke": "22a80d4cce5b7784", "specialists/full": "95940bf667bf75bc",
}


def _study_hashes() -> dict:
    """The digests of PINNED_STUDY_HASHES under the current protocol."""
    import hashlib
    return {f"{e}/{p}": hashlib.sha256(" ".join(sorted(
        f"{c.name}:{c.hash}" for c in configs_for(e, p, [0, 1, 2]))).encode()).hexdigest()[:16]
        for e in ("soft_targets", "ensemble", "specialists") for p in ("smoke", "full")}


def test_the_studies_config_hashes_are_pinned():
    """Every study run of each protocol keeps its pinned config hash, whichever is reported."""
    for number, pinned in ((1, PINNED_STUDY_HASHES), (2, PINNED_STUDY_HASHES_PROTOCOL_2)):
        with use_protocol(number):
            assert _study_hashes() == pinned, f"protocol {number}"
