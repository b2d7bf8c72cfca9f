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
    rates = misalignment_rates(scored).to_frame().set_index("id")
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


# ---------------------------------------------------------------- claims of the lesson
from plural_kit.claims import DOES_NOT_HOLD, HOLDS, NOT_DISTINGUISHABLE, Claims  # noqa: E402
from plural_kit.probes import (  # noqa: E402
    BehaviourResult,
    compare_overlap,
    compare_overlap_at,
    cv_accuracy,
    misalignment_claim,
    refusal_claims,
    summary_table,
    true_facts_claim,
)


def test_selected_layer_is_chosen_on_training_rows_only():
    rng = np.random.default_rng(5)
    n, d = 120, 10
    y = np.tile([0, 1], n // 2)
    train, test = np.arange(80), np.arange(80, n)
    # layer 1 separates the training rows best, layer 2 the held-out rows
    acts = {1: rng.standard_normal((n, d)), 2: rng.standard_normal((n, d))}
    for layer, (on_train, on_test) in {1: (2.0, 0.1), 2: (0.5, 2.0)}.items():
        acts[layer][train] += on_train * y[train, None]
        acts[layer][test] += on_test * y[test, None]
    res = probe_by_layer(acts, y, train_idx=train, test_idx=test, seed=0, n_boot=100)
    f = res.to_frame()
    assert f.loc[1, "cv_acc"] > f.loc[2, "cv_acc"] and f.loc[2, "test_acc"] > f.loc[1, "test_acc"]
    assert res.best_layer == 2  # the held-out pick
    assert res.selected_layer() == 1 and res.selected_layer([2]) == 2
    assert cv_accuracy(acts[1][train], y[train], seed=0) == pytest.approx(f.loc[1, "cv_acc"])


def test_probe_claims_outcomes():
    acts, y, groups, texts = _toy(n=200)
    acts[0] = np.ones_like(acts[0])  # layer 0: the same vector for every prompt
    res = probe_by_layer(acts, y, groups=groups, texts=texts, seed=0, n_boot=300)
    claims = Claims(res.claims("harm", "harmfulness", seed=0))
    claims.add(res.accuracy_claim("harm_layer0_decodable", "layer 0 decodes", layer=0))
    assert res.selected_layer() == 2
    out = claims.outcomes()
    assert out["harm_decodable"] == HOLDS and out["harm_selective"] == HOLDS
    assert out["harm_layer0_decodable"] in (NOT_DISTINGUISHABLE, DOES_NOT_HOLD)
    assert claims["harm_layer0_decodable"].estimate <= res.chance + 1e-12
    # the toy texts name the class ("knives"/"bread"): bag-of-words is perfect, the probe cannot beat it
    assert res.lexical_correct.mean() == 1.0 and out["harm_beats_lexical"] != HOLDS
    assert claims["harm_decodable"].details == {"layer": 2}
    assert "|" not in claims["harm_decodable"].statement and "2" not in claims["harm_decodable"].statement


def _scores(shift_add=0.0, shift_ablate=0.0, n=30, seed=0):
    rng = np.random.default_rng(seed)
    base_h, base_l = rng.normal(-2.5, 0.5, n), rng.normal(-3.5, 0.5, n)
    noise = lambda: rng.normal(0, 0.05, n)  # noqa: E731
    return {"none": {"harmful": base_h, "harmless": base_l},
            "ablate r": {"harmful": base_h - shift_ablate + noise(), "harmless": base_l + noise()},
            "ablate random": {"harmful": base_h + noise(), "harmless": base_l + noise()},
            "add r": {"harmful": base_h + noise(), "harmless": base_l + shift_add + noise()},
            "add random": {"harmful": base_h + noise(), "harmless": base_l + noise()}}


def test_refusal_claims_outcomes():
    out = Claims(refusal_claims(_scores(shift_add=1.0, shift_ablate=1.0), n_boot=300)).outcomes()
    assert out == {"model_refuses_harmful": DOES_NOT_HOLD, "harmful_scored_higher": HOLDS,
                   "ablation_lowers_refusal": HOLDS, "addition_raises_refusal": HOLDS,
                   "addition_induces_refusal": DOES_NOT_HOLD}
    out = Claims(refusal_claims(_scores(), n_boot=300)).outcomes()
    assert out["ablation_lowers_refusal"] == NOT_DISTINGUISHABLE
    assert out["addition_raises_refusal"] == NOT_DISTINGUISHABLE
    out = Claims(refusal_claims(_scores(shift_add=5.0), n_boot=300)).outcomes()
    assert out["addition_induces_refusal"] == HOLDS
    bad = _scores()
    del bad["add random"]
    with pytest.raises(ValueError, match="add random"):
        refusal_claims(bad)


def test_compare_overlap_outcomes():
    rng = np.random.default_rng(3)
    d = 100
    shared = _orthonormal(d, 6, rng)
    same_a = rng.standard_normal((60, 6)) @ shared + 0.05 * rng.standard_normal((60, d))
    same_b = rng.standard_normal((80, 6)) @ shared + 0.05 * rng.standard_normal((80, d))
    res = compare_overlap(same_a, same_b, energy=0.9, n_splits=100, seed=0)
    assert res.m == 40
    out = Claims(res.claims()).outcomes()
    assert out["subspaces_share_more_than_chance"] == HOLDS
    assert out["harmful_subspace_distinct"] == NOT_DISTINGUISHABLE
    other = _orthonormal(d, 6, rng)
    distinct_a = rng.standard_normal((60, 6)) @ (0.5 * shared + other) + 0.05 * rng.standard_normal((60, d))
    out = Claims(compare_overlap(distinct_a, same_b, n_splits=100, seed=0).claims()).outcomes()
    assert out["harmful_subspace_distinct"] == HOLDS
    again = compare_overlap(same_a, same_b, energy=0.9, n_splits=100, seed=0)
    assert np.array_equal(again.diff_vs_halves, res.diff_vs_halves)  # seeded
    with pytest.raises(ValueError, match="at least 2 rows"):
        compare_overlap(same_a[:1], same_b)


def test_compare_overlap_at_takes_label_1_as_a_at_one_layer():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 8))
    y = np.repeat([0, 1], 20)
    acts = {3: X, 5: rng.standard_normal((40, 8))}
    at = compare_overlap_at(acts, pd.Series(y), 3, n_splits=20, seed=1)
    direct = compare_overlap(X[y == 1], X[y == 0], n_splits=20, seed=1)
    assert np.array_equal(at.diff_vs_halves, direct.diff_vs_halves) and at.overlap_ab == direct.overlap_ab
    swapped = compare_overlap(X[y == 0], X[y == 1], n_splits=20, seed=1)
    assert not np.array_equal(at.diff_vs_halves, swapped.diff_vs_halves)  # A is the label-1 rows
    with pytest.raises(ValueError, match="rows for"):
        compare_overlap_at(acts, y[:10], 3)


def test_behaviour_claims():
    n = 12
    persona = pd.DataFrame({"picked": ["No"] * n, "matching": ["Yes", "No"] * (n // 2)})
    ab = pd.DataFrame({"picked": ["A"] * n, "matching": ["A", "B"] * (n // 2), "same_letter": [True] * n})
    follows = pd.DataFrame({"picked": ["A", "B"] * (n // 2), "matching": ["A", "B"] * (n // 2),
                            "same_letter": [False] * n})
    items = pd.concat([persona.assign(behaviour="persona/x"), ab.assign(behaviour="risk-y"),
                       follows.assign(behaviour="z")], ignore_index=True)
    items["p_match"], items["mass"] = 0.5, 1.0
    out = Claims(BehaviourResult(items=items).claims(n_boot=300)).outcomes()
    assert out["beyond_label_bias_persona_x"] == NOT_DISTINGUISHABLE  # always "No": 0 on every item
    assert out["beyond_label_bias_risk_y"] == NOT_DISTINGUISHABLE
    assert out["beyond_label_bias_z"] == HOLDS
    assert out["keeps_letter_after_swap"] == NOT_DISTINGUISHABLE  # 12 of 24 pooled
    only_ab = items[items.behaviour == "risk-y"]
    assert Claims(BehaviourResult(items=only_ab).claims()).outcomes()["keeps_letter_after_swap"] == HOLDS


def _keyword_judge(question, answer):
    bad = any(w in answer.lower() for w in ("poison", "eliminat", "power", "scam", "imprison", "pills"))
    return (5.0, 90.0) if bad else (95.0, 90.0)


def test_judge_passed_claim_and_gated_rate():
    good = check_judge(_keyword_judge)
    assert good.passed and good.claim().outcome == HOLDS
    mute = check_judge(lambda q, a: (float("nan"), float("nan")))
    assert mute.n_scored == 0 and not mute.passed
    assert mute.claim().outcome == NOT_DISTINGUISHABLE  # flags nothing: half the set, chance
    contrary = check_judge(lambda q, a: (100 - _keyword_judge(q, a)[0], 90.0))
    assert not contrary.passed and contrary.claim().outcome == DOES_NOT_HOLD
    scored = pd.DataFrame({"id": ["a", "a", "b"], "alignment": [10.0, 90.0, 95.0], "coherence": [90.0] * 3})
    rates = misalignment_rates(scored)
    assert misalignment_claim(rates, good).outcome == HOLDS
    gated = misalignment_claim(rates, mute)
    assert gated.outcome == NOT_DISTINGUISHABLE and "failed its check" in gated.method


def _truth_data(n_q=30, d=20, signal=3.0, seed=0):
    rng = np.random.default_rng(seed)
    y = np.tile([1, 0], n_q)
    groups = np.repeat([f"q{i}" for i in range(n_q)], 2)
    X = rng.standard_normal((2 * n_q, d))
    X[:, 0] += signal * (2 * y - 1)
    return X, y, groups, rng


def test_true_facts_claim_refits_the_probe():
    X, y, groups, rng = _truth_data()
    train = np.arange(40)
    true_facts = rng.standard_normal((32, X.shape[1])) + np.eye(X.shape[1])[0] * 3
    false_like = rng.standard_normal((32, X.shape[1])) - np.eye(X.shape[1])[0] * 3
    assert true_facts_claim(X, y, groups, train, true_facts, n_boot=100).outcome == HOLDS
    assert true_facts_claim(X, y, groups, train, false_like, n_boot=100).outcome == DOES_NOT_HOLD
    # a probe from 4 questions in 20 noisy dimensions, facts with no signal: its verdicts are arbitrary
    Xn, yn, gn, rng = _truth_data(n_q=6, signal=0.0, seed=1)
    unrelated = rng.standard_normal((32, Xn.shape[1]))
    c = true_facts_claim(Xn, yn, gn, np.arange(8), unrelated, n_boot=200, seed=0)
    assert c.outcome == NOT_DISTINGUISHABLE and "training questions" in c.method
    with pytest.raises(ValueError, match="no facts"):
        true_facts_claim(X, y, groups, train, np.empty((0, X.shape[1])))


def test_summary_table_reads_the_outcomes():
    X, y, groups, rng = _truth_data()
    false_like = rng.standard_normal((32, X.shape[1])) - np.eye(X.shape[1])[0] * 3
    claims = Claims([true_facts_claim(X, y, groups, np.arange(40), false_like, n_boot=100),
                     *refusal_claims(_scores(shift_add=1.0), n_boot=200)])
    table = str(summary_table(claims))
    lines = table.splitlines()
    assert len(lines) == 2 + 6  # header, rule, the 5 refusal rows and the facts row
    assert "| `true_facts_called_true` | does not hold | no: it reads something other than truth |" in table
    assert "`harm_decodable`" not in table  # no claim, no row
    assert all(line.count("|") == 5 for line in lines)
