"""Reward transforms: log-sigmoid centring, the conjunction, best-of-n reranking."""
import math

import numpy as np
import pytest

from plural_kit.results import check_result
from plural_kit.reward.transforms import best_of_n, compare_best_of_n, conjunction, log_sigmoid_centre


def test_log_sigmoid_centre_by_hand():
    # log sigmoid(d) = -log(1 + exp(-d))
    got = log_sigmoid_centre([2.0, 0.0, -3.0], 1.0)
    want = [-math.log(1 + math.exp(-1.0)), -math.log(1 + math.exp(1.0)), -math.log(1 + math.exp(4.0))]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert log_sigmoid_centre(0.5, 0.5) == pytest.approx(math.log(0.5))
    # saturates above the reference, linear below it; finite far out
    far = log_sigmoid_centre([800.0, -800.0], 0.0)
    assert far[0] == 0.0 and far[1] == pytest.approx(-800.0)


def test_conjunction_by_hand():
    r = np.array([[3.0, -1.0], [1.2, 0.6]])  # (candidates, objectives)
    ref = np.array([1.0, 0.0])

    def ls(d):
        return -math.log(1 + math.exp(-d))

    want = [ls(2.0) + ls(-1.0), ls(0.2) + ls(0.6)]
    np.testing.assert_allclose(conjunction(r, ref), want, rtol=1e-12)
    # the raw sum prefers the first candidate (2.0 vs 1.8), the conjunction the balanced second
    assert r.sum(axis=1).argmax() == 0 and conjunction(r, ref).argmax() == 1


def test_best_of_n_raw_sum_vs_conjunction():
    rewards = np.array([
        [[10.0, -2.0], [1.0, 1.0], [0.0, 0.0]],  # a huge win on one objective, a loss on the other
        [[0.5, 0.5], [0.2, 3.0], [-1.0, -1.0]],
    ])
    ref = np.zeros((2, 2))
    np.testing.assert_array_equal(best_of_n(rewards, combine="sum"), [0, 1])
    np.testing.assert_array_equal(best_of_n(rewards, ref, combine="conjunction"), [1, 1])
    result = compare_best_of_n(rewards, ref, objectives=["helpful", "harmless"])
    check_result(result)
    rates = result.rates()
    assert rates.loc["sum", "all"] == 0.5 and rates.loc["conjunction", "all"] == 1.0
    assert rates.loc["sum", "helpful"] == 1.0 and rates.loc["sum", "harmless"] == 0.5
    frame = result.to_frame()
    row = frame[(frame["method"] == "sum") & (frame["prompt"] == 0)].iloc[0]
    assert row["margin_helpful"] == 10.0 and row["margin_harmless"] == -2.0 and not row["all_above"]
    claim = result.claims()["conjunction_all_above"]
    assert claim.estimate == pytest.approx(0.5)


def test_conjunction_wins_on_many_prompts_where_one_objective_has_the_larger_scale():
    rng = np.random.default_rng(0)
    r = rng.standard_normal((300, 8, 2)) * np.array([5.0, 1.0])  # objective 0 has five times the spread
    r[..., 1] -= 0.3 * r[..., 0] / 5.0  # and the two are in tension
    ref = np.zeros((300, 2))
    result = compare_best_of_n(r, ref)
    assert result.claims()["conjunction_all_above"].outcome == "holds"
    assert result.rates().loc["sum", "objective_0"] > result.rates().loc["conjunction", "objective_0"] - 0.05


def test_validation_errors_name_the_problem():
    with pytest.raises(ValueError, match="'rewards' has NaN"):
        log_sigmoid_centre([np.nan], 0.0)
    with pytest.raises(ValueError, match="do not broadcast"):
        log_sigmoid_centre(np.zeros(3), np.zeros(2))
    with pytest.raises(ValueError, match="last axis of objectives"):
        conjunction(1.0, 0.0)
    with pytest.raises(ValueError, match=r"shape \(n_prompts, n_candidates >= 2, n_objectives\)"):
        best_of_n(np.zeros((4, 3)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"'reference' must have shape \(n_prompts, n_objectives\) = \(4, 2\)"):
        best_of_n(np.zeros((4, 3, 2)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match="needs 'reference'"):
        best_of_n(np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="combine must be one of"):
        best_of_n(np.zeros((4, 3, 2)), np.zeros((4, 2)), combine="max")
    with pytest.raises(ValueError, match="'objectives' names 1 objectives"):
        compare_best_of_n(np.zeros((4, 3, 2)), np.zeros((4, 2)), objectives=["a"])


def test_winners_can_be_judged_by_other_rewards():
    seen = np.array([[[3.0, -1.0], [0.5, 0.5]]])  # the reranker sees these
    truth = np.array([[[-1.0, -1.0], [1.0, 1.0]]])  # the winners are judged by these
    result = compare_best_of_n(seen, np.zeros((1, 2)), truth=truth, truth_reference=np.zeros((1, 2)))
    frame = result.to_frame().set_index("method")
    assert frame.loc["sum", "margin_objective_0"] == -1.0 and frame.loc["conjunction", "all_above"]
    with pytest.raises(ValueError, match="pass both 'truth' and 'truth_reference'"):
        compare_best_of_n(seen, np.zeros((1, 2)), truth=truth)
