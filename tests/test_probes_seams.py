"""Issue 12: the held-out-source split keeps the class balance (class 8) and what judges and
engines return to the probes is validated (class 7); chance is the majority-class rate."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from plural_kit.claims import HOLDS
from plural_kit.probes import check_judge, group_split, misalignment_rates, number_distribution, probe_by_layer
from plural_kit.probes.directions import refusal_score
from plural_kit.probes.judge import CallableJudge, score_answers
from tests.test_scoring import FakeEngine


def one_class_sources(seed: int = 0, n_sources: int = 16):
    """Sources of 2-11 prompts each, every source of one class (as datasets are)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 12, n_sources)
    y = np.repeat(np.array([0, 1] * (n_sources // 2)), sizes)
    groups = np.repeat([f"s{i}" for i in range(n_sources)], sizes).astype(object)
    return y, groups


@pytest.mark.parametrize("seed", range(10))
def test_group_split_keeps_the_class_balance(seed):
    y, groups = one_class_sources()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, test = group_split(y, groups, test_size=0.3, seed=seed)
    assert not set(groups[train]) & set(groups[test])
    for side in (train, test):
        assert abs(y[side].mean() - y.mean()) <= 0.1
    assert 0.15 <= len(test) / len(y) <= 0.45


def test_group_split_with_few_one_class_sources_is_balanced():
    # 4 sources per class of equal size: a shuffle holds 3 of 8 sources (33% or 67% positive)
    y = np.repeat([0, 1] * 4, 10)
    groups = np.repeat([f"s{i}" for i in range(8)], 10).astype(object)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train, test = group_split(y, groups, test_size=0.3, seed=3)
    assert y[test].mean() == pytest.approx(0.5) and y[train].mean() == pytest.approx(0.5)


def test_group_split_warns_when_no_balanced_split_exists():
    # two sources per class, of very different sizes: every split is unbalanced
    y = np.array([0] * 30 + [0] * 2 + [1] * 5 + [1] * 20)
    groups = np.array(["a"] * 30 + ["b"] * 2 + ["c"] * 5 + ["d"] * 20, dtype=object)
    with pytest.warns(UserWarning, match=r"no split of whole sources keeps the class balance within 0.1"):
        train, test = group_split(y, groups)
    assert set(y[train]) == set(y[test]) == {0, 1}
    with pytest.raises(ValueError, match="balance_tol"):
        group_split(y, groups, balance_tol=-1)


def test_probe_chance_is_the_held_out_majority_rate():
    y, groups = one_class_sources(seed=1)
    rng = np.random.default_rng(0)
    acts = {0: rng.standard_normal((len(y), 4))}
    res = probe_by_layer(acts, y, groups=groups, seed=2, n_boot=50)
    share = y[res.test_idx].mean()
    assert res.chance == pytest.approx(max(share, 1 - share))
    assert abs(share - y.mean()) <= 0.1
    assert res.accuracy_claim("x", "x", layer=0).threshold == res.chance


# ------------------------------------------------------------------ judges
def test_judge_chance_is_the_majority_label_rate():
    """A judge that never flags anything is right on every aligned answer: on 9 aligned and 3
    misaligned answers that is 75%, which is chance, not agreement."""
    labelled = pd.DataFrame({"question": [f"q{i}" for i in range(40)], "answer": ["a"] * 40,
                             "label": [0] * 36 + [1] * 4})
    never = check_judge(lambda q, a: (90.0, 90.0), labelled)
    assert never.accuracy == pytest.approx(0.9) and never.chance == pytest.approx(0.9)
    claim = never.claim()
    assert claim.threshold == pytest.approx(0.9) and claim.outcome != HOLDS and not never.passed
    balanced = check_judge(lambda q, a: (90.0, 90.0), labelled.iloc[32:].reset_index(drop=True))
    assert balanced.chance == 0.5 and balanced.claim().threshold == 0.5


@pytest.mark.parametrize("ret, match", [
    ({"alignment": 50}, "without 'alignment' and 'coherence'"),
    ((True, 80), "two numbers"),
    ("50, 80", "two numbers"),
    ("57", "two numbers"),  # was read as alignment 5, coherence 7
    ((50, 80, 1), "two numbers"),
    ((150, 80), "alignment=150.0 .* outside 0-100"),
    ((50, -1), "coherence=-1.0 .* outside 0-100"),
    ((float("inf"), 80), "alignment=inf"),
])
def test_callable_judge_returns_are_checked(ret, match):
    with pytest.raises(ValueError, match=match):
        CallableJudge(lambda q, a: ret).score(["q"], ["a"])


def test_a_judge_object_that_returns_the_wrong_rows():
    class Short(CallableJudge):
        def score(self, questions, answers):
            return pd.DataFrame({"alignment": [50.0], "coherence": [50.0]})

    answers = pd.DataFrame({"question": ["q1", "q2"], "answer": ["a1", "a2"]})
    with pytest.raises(ValueError, match="1 score rows for 2 answers"):
        score_answers(Short(lambda q, a: (0, 0)), answers)


def test_scored_answers_outside_0_100_are_refused():
    scored = pd.DataFrame({"id": ["x", "x"], "alignment": [20.0, 250.0], "coherence": [80.0, 80.0]})
    with pytest.raises(ValueError, match=r"alignment scores must be in 0-100 .* rows \[1\]: \[250.0\]"):
        misalignment_rates(scored)
    scored = pd.DataFrame({"id": ["x", "x"], "alignment": [20.0, "low"], "coherence": [80.0, 80.0]})
    with pytest.raises(ValueError, match="not numbers at rows"):
        misalignment_rates(scored)
    ok = misalignment_rates(pd.DataFrame({"id": ["x", "x"], "alignment": [20.0, np.nan], "coherence": [80.0, 80.0]}))
    assert ok.to_frame().set_index("id").loc["all", "n_unscored"] == 1


# ------------------------------------------------------------------ engines
class NaNEngine(FakeEngine):
    def __init__(self):
        super().__init__()
        inverse = {i: t for t, i in self.tokenizer.vocab.items()}
        self.tokenizer.decode = lambda ids: "".join(inverse[i] for i in ids)

    def apply_chat_template(self, prompts, system=None, add_generation_prompt=True):
        return [p + "\n" for p in prompts]

    def next_token_logprobs(self, texts, token_ids=None):
        return np.full((len(texts), len(token_ids)), np.nan)


def test_number_distribution_and_refusal_score_check_the_engine():
    with pytest.raises(ValueError, match="NaN"):
        number_distribution(NaNEngine(), ["Score:"], max_value=9)
    with pytest.raises(ValueError, match="NaN"):
        refusal_score(NaNEngine(), ["hi"], token_ids=[40, 41])
    with pytest.raises(ValueError, match="distinct"):
        refusal_score(NaNEngine(), ["hi"], token_ids=[40, 40])


def test_a_judges_log_probability_above_zero_is_refused():
    """expected_number({'50': 5.0}) returned (50.0, 148.4): a "probability" of 148."""
    from plural_kit.probes.judge import expected_number

    with pytest.raises(ValueError, match=r"log-probability of token '50' is 5.0: log-probabilities are <= 0"):
        expected_number({"50": 5.0})
    with pytest.raises(ValueError, match="is nan"):
        expected_number({"50": float("nan")})
    assert expected_number({"50": 0.0, "70": -np.inf}) == (50.0, 1.0)  # probability 0 is a valid log-prob


def test_a_distribution_with_nan_is_refused():
    """scores_from_distribution([[nan, 1, 0]]) returned (nan, nan): 'not scored' instead of an error."""
    from plural_kit.probes.judge import scores_from_distribution

    with pytest.raises(ValueError, match=r"without NaN; shape \(1, 3\), bad entries at \[\[0, 0\]\]"):
        scores_from_distribution(np.array([[np.nan, 1.0, 0.0]]))
    np.testing.assert_allclose(scores_from_distribution(np.array([[0.0, 1.0, 0.0]]))[0], [1.0])


def test_misalignment_rule_checks_the_0_to_100_scale():
    """is_misaligned([500], [90]) returned [False] without a word."""
    from plural_kit.probes.judge import is_misaligned

    with pytest.raises(ValueError, match=r"alignment scores must be in 0-100 \(NaN = not scored\); got \[500.0\]"):
        is_misaligned(np.array([500.0]), np.array([90.0]))
    with pytest.raises(ValueError, match="coherence scores must be in 0-100"):
        is_misaligned(np.array([10.0]), np.array([-1.0]))
    np.testing.assert_array_equal(is_misaligned([10.0, np.nan, 40.0], [90.0, 90.0, 90.0]), [True, False, False])
