"""plural_kit.probes on arrays and text only (no model): subspace overlap, probe splits and
control task, judge score parsing, behaviour bookkeeping, refusal phrases, fluency, bad input."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from plural_kit.probes import (
    CallableJudge,
    LinearProbe,
    check_judge,
    control_labels,
    dedupe_prompts,
    distinct_n,
    energy_rank,
    expected_number,
    fluency_stats,
    group_split,
    is_misaligned,
    is_refusal,
    label_bias_baseline,
    mean_difference,
    misalignment_rates,
    parse_options,
    probe_by_layer,
    project_out,
    random_direction_like,
    scores_from_distribution,
    subspace_overlap,
    swap_options,
    truthfulqa_statements,
    unit,
)


# ---------------------------------------------------------------- subspace overlap
def _orthonormal(d, k, rng):
    q, _ = np.linalg.qr(rng.standard_normal((d, k)))
    return q.T


def test_overlap_identical_subspaces_is_one():
    rng = np.random.default_rng(0)
    basis = _orthonormal(64, 5, rng)
    X = rng.standard_normal((100, 5)) @ basis
    Y = rng.standard_normal((80, 5)) @ basis  # other vectors, same span
    res = subspace_overlap(X, Y, energy=0.999)
    assert res.k_x == res.k_y == 5
    assert res.overlap == pytest.approx(1.0, abs=1e-8)


def test_overlap_orthogonal_subspaces_is_zero():
    rng = np.random.default_rng(1)
    basis = _orthonormal(64, 10, rng)
    X = rng.standard_normal((100, 5)) @ basis[:5]
    Y = rng.standard_normal((100, 5)) @ basis[5:]
    assert subspace_overlap(X, Y, energy=0.999).overlap == pytest.approx(0.0, abs=1e-8)


def test_overlap_random_subspaces_near_baseline():
    rng = np.random.default_rng(2)
    d, vals = 200, []
    for _ in range(20):
        X = rng.standard_normal((300, 10)) @ _orthonormal(d, 10, rng)
        Y = rng.standard_normal((300, 20)) @ _orthonormal(d, 20, rng)
        res = subspace_overlap(X, Y, energy=0.9999)
        vals.append(res.overlap)
    assert (res.k_x, res.k_y) == (10, 20)
    assert res.baseline == pytest.approx(20 / d)
    assert np.mean(vals) == pytest.approx(res.baseline, rel=0.15)
    assert 0.0 <= min(vals) and max(vals) <= 1.0


def test_energy_rank_and_summary():
    assert energy_rank(np.array([3.0, 1.0, 0.1]), 0.8) == 1  # 9 / 10.01 > 0.8
    assert energy_rank(np.array([3.0, 1.0, 0.1]), 0.95) == 2
    res = subspace_overlap(np.eye(4)[:2], np.eye(4)[1:3])
    assert res.overlap == pytest.approx(0.5)
    assert "random baseline" in res.summary()
    assert set(res.to_frame().columns) >= {"overlap", "random_baseline", "k_x", "k_y"}


@pytest.mark.parametrize("X, Y, match", [
    (np.ones(5), np.ones((2, 5)), "2-D"),
    (np.ones((2, 5)), np.ones((2, 6)), "same width"),
    (np.full((2, 5), np.nan), np.ones((2, 5)), "NaN"),
    (np.zeros((2, 5)), np.ones((2, 5)), "all zeros"),
])
def test_overlap_bad_input(X, Y, match):
    with pytest.raises(ValueError, match=match):
        subspace_overlap(X, Y)


def test_overlap_bad_energy():
    with pytest.raises(ValueError, match="energy"):
        subspace_overlap(np.eye(3), np.eye(3), energy=0)


# ---------------------------------------------------------------- probe split and control task
def _toy(n=240, d=20, seed=0, n_sources=4):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = np.array([f"{'harm' if c else 'safe'}_{i % n_sources}" for i, c in enumerate(y)], dtype=object)
    acts = {layer: rng.standard_normal((n, d)) + layer * 0.8 * y[:, None] for layer in (0, 1, 2)}
    texts = [f"prompt number {i} about {'knives' if c else 'bread'}" for i, c in enumerate(y)]
    return acts, y, groups, texts


def test_group_split_shares_no_source_and_keeps_both_classes():
    _, y, groups, _ = _toy()
    train, test = group_split(y, groups, test_size=0.3, seed=3)
    assert not set(groups[train]) & set(groups[test])
    assert not set(train) & set(test)
    assert set(y[train]) == set(y[test]) == {0, 1}


def test_probe_split_has_no_shared_prompt_or_source():
    acts, y, groups, texts = _toy()
    texts[5] = texts[7] = "Duplicate prompt"  # same text twice, both copies must not straddle the split
    y[5] = y[7] = 1
    res = probe_by_layer(acts, y, groups=groups, texts=texts, seed=0, n_boot=200)
    assert not set(groups[res.train_idx]) & set(groups[res.test_idx])
    tr = {texts[i].casefold() for i in res.train_idx}
    te = {texts[i].casefold() for i in res.test_idx}
    assert not tr & te
    assert not ({5, 7} <= set(res.train_idx) | set(res.test_idx))  # the duplicate was dropped
    f = res.to_frame()
    assert list(f["layer"]) == [0, 1, 2]
    # signal grows with the layer; the control stays near chance on held-out prompts
    assert f.loc[2, "test_acc"] > 0.9 and f.loc[0, "test_acc"] < 0.7
    assert abs(f.loc[2, "control_test_acc"] - 0.5) < 0.2
    assert abs(f["control_test_acc"].mean() - 0.5) < 0.1  # chance on average over layers
    assert f.loc[2, "selectivity"] == pytest.approx(f.loc[2, "test_acc"] - f.loc[2, "control_test_acc"])
    assert (f["test_ci_low"] <= f["test_acc"]).all() and (f["test_acc"] <= f["test_ci_high"]).all()
    assert res.best_layer == 2 and res.lexical is not None
    assert "selectivity" in res.summary()


def test_control_labels_are_a_permutation():
    y = np.array([0, 1, 1, 0, 1, 1, 0, 0, 1, 1] * 5)
    c = control_labels(y, seed=4)
    assert sorted(c) == sorted(y) and not np.array_equal(c, y)
    assert np.array_equal(c, control_labels(y, seed=4))  # seeded


def test_single_source_class_is_refused():
    y = np.array([0, 0, 1, 1, 1, 1])
    groups = ["alpaca", "alpaca", "a", "a", "b", "b"]
    with pytest.raises(ValueError, match="class 0 comes from 1 source"):
        group_split(y, groups)


def test_explicit_split_with_shared_prompt_is_refused():
    acts, y, groups, texts = _toy(n=40)
    texts[1] = texts[0]
    with pytest.raises(ValueError, match="both splits"):
        probe_by_layer(acts, y, train_idx=np.arange(0, 1), test_idx=np.arange(1, 40), texts=texts)


@pytest.mark.parametrize("y, match", [
    (np.array([0, 1, 2, 1]), "labels in"),
    (np.array([0.0, np.nan, 1.0, 1.0]), "NaN"),
])
def test_probe_bad_labels(y, match):
    with pytest.raises(ValueError, match=match):
        LinearProbe().fit(np.ones((4, 3)), y)


def test_probe_bad_activations():
    with pytest.raises(ValueError, match="NaN"):
        LinearProbe().fit(np.full((4, 3), np.nan), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="rows"):
        probe_by_layer({0: np.ones((4, 3)), 1: np.ones((5, 3))}, [0, 1, 0, 1], groups=list("abcd"))
    with pytest.raises(ValueError, match="groups"):
        probe_by_layer({0: np.ones((4, 3))}, [0, 1, 0, 1])


def test_dedupe_conflicting_labels():
    assert list(dedupe_prompts(["a", " A ", "b"])) == [0, 2]
    with pytest.raises(ValueError, match="both labels"):
        dedupe_prompts(["a", "A"], y=[0, 1])


def test_probe_direction_is_unit_and_points_to_class_one():
    acts, y, _, _ = _toy()
    p = LinearProbe().fit(acts[2], y)
    assert np.linalg.norm(p.direction_) == pytest.approx(1.0)
    assert (acts[2][y == 1] @ p.direction_).mean() > (acts[2][y == 0] @ p.direction_).mean()
    assert p.get_params()["C"] == 1.0


# ---------------------------------------------------------------- directions (array parts)
def test_mean_difference_unit_random_like():
    A, B = np.ones((3, 4)) * 2, np.zeros((5, 4))
    r = mean_difference(A, B)
    assert np.allclose(r, 2)
    assert np.linalg.norm(unit(r)) == pytest.approx(1.0)
    rr = random_direction_like(r, seed=1)
    assert np.linalg.norm(rr) == pytest.approx(np.linalg.norm(r), rel=1e-5)
    assert abs(unit(rr) @ unit(r)) < 0.99
    with pytest.raises(ValueError, match="non-zero"):
        unit(np.zeros(4))
    with pytest.raises(ValueError, match="same width"):
        mean_difference(np.ones((2, 3)), np.ones((2, 4)))


def test_project_out_is_orthogonal():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 7, 16, generator=g)
    r = torch.from_numpy(unit(np.arange(16, dtype=np.float32) + 1))
    y = project_out(x, r)
    assert torch.allclose(y @ r, torch.zeros(2, 7), atol=1e-5)
    assert torch.allclose(project_out(y, r), y, atol=1e-6)  # idempotent


def test_refusal_phrases_and_fluency():
    flags = is_refusal(["I'm sorry, but I cannot help with that.", "Sure! Step 1: ...", "I’m afraid not"])
    assert flags.tolist() == [True, False, True]
    assert distinct_n("the cat sat on the mat", 1) == pytest.approx(5 / 6)
    assert distinct_n("a b a b a b a b", 2) == pytest.approx(2 / 7)
    assert math.isnan(distinct_n("one", 2))
    f = fluency_stats(["hello there friend", "go go go go"])
    assert f.loc[1, "distinct_1"] == pytest.approx(0.25) and list(f["n_words"]) == [3, 4]


# ---------------------------------------------------------------- judge
def test_expected_number_is_probability_weighted_mean():
    lp = {"50": math.log(0.5), "100": math.log(0.3), "CODE": math.log(0.2)}
    score, mass = expected_number(lp)
    assert score == pytest.approx((50 * 0.5 + 100 * 0.3) / 0.8)
    assert mass == pytest.approx(0.8)
    # out-of-range numbers are not counted; too little number mass gives NaN
    score, mass = expected_number({"150": 0.0, "7": math.log(0.1)})
    assert math.isnan(score) and mass == pytest.approx(0.1)
    score, mass = expected_number({" 20": math.log(0.6), "x": math.log(0.4)})
    assert score == pytest.approx(20.0)
    with pytest.raises(TypeError):
        expected_number([("50", 0.0)])


def test_scores_from_distribution():
    dist = np.zeros((3, 101))
    dist[0, 10], dist[0, 90] = 0.25, 0.75
    dist[1, 0] = 0.1  # too little mass
    dist[2, 100] = 1.0
    score, mass = scores_from_distribution(dist, min_mass=0.25)
    assert score[0] == pytest.approx(70.0) and np.isnan(score[1]) and score[2] == pytest.approx(100.0)
    assert mass.tolist() == pytest.approx([1.0, 0.1, 1.0])


def test_callable_judge_and_check():
    def keyword_judge(question, answer):
        bad = any(w in answer.lower() for w in ("poison", "eliminat", "power", "scam", "imprison", "pills"))
        return (5.0, 90.0) if bad else (95.0, 90.0)

    check = check_judge(keyword_judge)
    assert check.accuracy == pytest.approx(1.0) and check.auc == pytest.approx(1.0)
    assert "flag accuracy" in check.summary()
    with pytest.raises(ValueError, match="outside 0-100"):
        CallableJudge(lambda q, a: (150, 50)).score(["q"], ["a"])
    with pytest.raises(ValueError, match="alignment, coherence"):
        CallableJudge(lambda q, a: "fine").score(["q"], ["a"])
    with pytest.raises(TypeError):
        CallableJudge("not callable")
    with pytest.raises(ValueError, match="questions for"):
        CallableJudge(keyword_judge).score(["q", "r"], ["a"])


def test_misaligned_rule_and_rates():
    assert is_misaligned([10, 10, 50, np.nan], [80, 40, 80, 80]).tolist() == [True, False, False, False]
    scored = pd.DataFrame({"id": ["a"] * 4 + ["b"] * 2, "alignment": [10, 90, 20, np.nan, 95, 99],
                           "coherence": [90, 90, 90, 90, 90, 90]})
    rates = misalignment_rates(scored).set_index("id")
    assert rates.loc["a", "n"] == 3 and rates.loc["a", "n_unscored"] == 1
    assert rates.loc["a", "rate"] == pytest.approx(2 / 3)
    assert rates.loc["all", "n_misaligned"] == 2
    assert rates.loc["a", "ci_low"] < 2 / 3 < rates.loc["a", "ci_high"]
    with pytest.raises(ValueError, match="lacks columns"):
        misalignment_rates(scored.drop(columns="coherence"))


# ---------------------------------------------------------------- behaviour bookkeeping
Q = "Question: Shall we?\n\nChoices:\n (A) Yes, do it.\n (B) No, never.\n\nAnswer:"


def test_parse_and_swap_options():
    assert parse_options(Q) == {"A": "Yes, do it.", "B": "No, never."}
    sw = swap_options(Q)
    assert parse_options(sw) == {"A": "No, never.", "B": "Yes, do it."}
    assert swap_options(sw) == Q
    with pytest.raises(ValueError, match="no options"):
        swap_options("no options here")


def test_label_bias_baseline():
    fav, base = label_bias_baseline(["No", "No", "No", "Yes"], ["Yes", "No", "No", "Yes"])
    assert fav == "No" and base == pytest.approx(0.5)


def test_truthfulqa_statements_grouped_by_question():
    df = pd.DataFrame({"Question": ["q1", "q2"], "Best Answer": ["t1", "t2"],
                       "Incorrect Answers": ["f1; f1b", "f2"]})
    st = truthfulqa_statements(df)
    assert st["label"].tolist() == [1, 0, 1, 0] and st["group"].tolist() == ["q1", "q1", "q2", "q2"]
    assert "f1b" not in st["text"].iloc[1]
    with pytest.raises(ValueError, match="lacks columns"):
        truthfulqa_statements(df.drop(columns="Best Answer"))


def test_behaviour_bad_input_is_named():
    from plural_kit.probes import behaviour_scores, score_ab, score_persona

    with pytest.raises(ValueError, match="lack columns"):
        score_persona(None, pd.DataFrame({"statement": ["x"]}))
    with pytest.raises(ValueError, match="missing"):
        score_ab(None, pd.DataFrame({"question": [Q, None], "answer_matching_behavior": [" (A)", " (B)"]}))
    with pytest.raises(ValueError, match="empty"):
        behaviour_scores(None, {})
    with pytest.raises(TypeError, match="DataFrame"):
        score_persona(None, [Q])


def test_group_split_bad_input():
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="test_size"):
        group_split(y, ["a", "b", "c", "d"], test_size=1.5)
    with pytest.raises(ValueError, match="missing"):
        group_split(y, ["a", None, "c", "d"])
    with pytest.raises(ValueError, match="entries"):
        group_split(y, ["a", "b"])
