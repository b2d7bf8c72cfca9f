"""MultiHeadBT (one head per source, simplex weights per user) and calibration per source.

The fitter API itself is checked in test_fitter_conformance.py.
"""
import numpy as np
import pandas as pd
import pytest

from plural_kit.data.synthetic import first_pairs_per_user, make_ideal_point_preferences
from plural_kit.reward import BradleyTerry, MultiHeadBT
from plural_kit.reward.multihead import calibration_by_source
from plural_kit.reward.worlds import flip_labels, weighted_user_preferences

PLANTED = pd.DataFrame([[0.8, 0.2], [0.5, 0.5], [0.1, 0.9]], index=["a", "b", "c"])


@pytest.fixture(scope="module")
def sources():
    data = make_ideal_point_preferences(n_items=300, n_features=8, n_groups=2, users_per_group=10, pairs_per_user=100,
                                        reward="linear", temperature=0.1, disagreement=1.0, seed=0)
    return data, np.where(data.groups == 0, "helpful", "harmless")


@pytest.fixture(scope="module")
def fitted(sources):
    data, src = sources
    return MultiHeadBT(device="cpu").fit(data.X_chosen, data.X_rejected, src)


def test_one_head_per_source_is_that_sources_bradley_terry(sources, fitted):
    data, src = sources
    assert list(fitted.heads_) == ["helpful", "harmless"] and fitted.coef_.shape == (2, 8)
    bt = BradleyTerry(device="cpu").fit(data.X_chosen[src == "harmless"], data.X_rejected[src == "harmless"])
    np.testing.assert_allclose(fitted.coef_[1], bt.coef_)
    np.testing.assert_array_equal(fitted.user_weights_.to_numpy(), np.eye(2))
    x = data.items[:4]
    np.testing.assert_allclose(fitted.head_rewards(x), x @ fitted.coef_.T)
    np.testing.assert_allclose(fitted.reward(x, ["harmless"] * 4), x @ bt.coef_)
    np.testing.assert_allclose(fitted.reward(x), (x @ fitted.coef_.T).mean(axis=1))  # the population: uniform


def test_weights_of_a_planted_user_are_recovered(sources):
    data, src = sources
    model = MultiHeadBT(weight_alpha=0.0, device="cpu").fit(data.X_chosen, data.X_rejected, src)
    users = weighted_user_preferences(data, PLANTED, pairs_per_user=200, seed=1)
    model.adapt(users.X_chosen, users.X_rejected, users.users)
    got = model.user_weights_.loc[PLANTED.index]
    np.testing.assert_allclose(got.sum(axis=1), 1.0)
    np.testing.assert_allclose(got.to_numpy(), PLANTED.to_numpy(), atol=0.1)
    assert list(model.predict_groups().loc[["a", "c"]]) == [0, 1]  # the head each weighs most


def test_few_pairs_are_pulled_towards_uniform(sources, fitted):
    data, src = sources
    few, _ = first_pairs_per_user(weighted_user_preferences(data, PLANTED, pairs_per_user=10, seed=2), 5)
    strong = MultiHeadBT(weight_alpha=1e4, device="cpu").fit(data.X_chosen, data.X_rejected, src)
    strong.adapt(few.X_chosen, few.X_rejected, few.users)
    np.testing.assert_allclose(strong.user_weights_.loc[PLANTED.index].to_numpy(), 0.5, atol=0.02)


def test_calibration_per_source_shows_what_pooling_hides(sources):
    """Each head is calibrated on its own source (even a noisy one) better than one BT on the pooled sources."""
    data, src = sources
    noisy = flip_labels(data, pd.Series(0.7, index=data.user_groups.index[data.user_groups == 1]), seed=3)
    model = MultiHeadBT(device="cpu").fit(noisy.X_chosen, noisy.X_rejected, src)
    own = calibration_by_source(model.predict_proba(noisy.X_chosen, noisy.X_rejected, src), src)
    pooled = BradleyTerry(device="cpu").fit(noisy.X_chosen, noisy.X_rejected)
    one = calibration_by_source(pooled.predict_proba(noisy.X_chosen, noisy.X_rejected), src)
    assert list(own.columns) == ["pairs", "accuracy", "ECE"] and own.loc["harmless", "pairs"] == 1000
    assert (own["ECE"] < one["ECE"] - 0.03).all(), (own, one)
    assert own.loc["helpful", "ECE"] < 0.05


def test_validation_errors(sources, fitted):
    data, src = sources
    with pytest.raises(ValueError, match="needs 'users': the source"):
        MultiHeadBT().fit(data.X_chosen, data.X_rejected)
    with pytest.raises(ValueError, match="one entry per pair"):
        calibration_by_source(np.full(5, 0.6), src[:4])
    with pytest.raises(ValueError, match="rows on the simplex"):
        weighted_user_preferences(data, pd.DataFrame([[0.5, 0.6]], index=["x"]))
    with pytest.raises(ValueError, match="fitted with 8"):
        fitted.head_rewards(data.items[:3, :4])


def test_lesson_experiments_follow_the_result_protocol():
    from plural_kit.data.synthetic import split_pairs
    from plural_kit.results import check_result
    from plural_kit.reward.worlds import rerank, source_calibration, source_of, two_sources, weigh_objectives

    data = two_sources(users_per_source=8, pairs_per_user=60, reliability=0.7, seed=0)
    assert set(source_of(data)) == {"helpful", "harmless"}
    train, test = split_pairs(data, test_size=0.25, seed=0)
    heads = MultiHeadBT(device="cpu").fit(train.X_chosen, train.X_rejected, source_of(train))
    assert np.linalg.norm(heads.coef_[0]) > 3 * np.linalg.norm(heads.coef_[1])  # noise shrinks the harmless head
    best = rerank(heads, data, n_prompts=60, n_candidates=5, seed=0)
    check_result(best)
    assert set(best.rates().columns) == {"helpful", "harmless", "all"}
    calibration = source_calibration(heads, train, test, device="cpu")
    check_result(calibration)
    assert set(calibration.claims(n_boot=100).outcomes()) == {"head_calibrated_helpful", "head_calibrated_harmless"}
    weights = weigh_objectives(heads, data, n_users=6, shots=10, pairs_per_user=30, seed=0)
    check_result(weights)
    assert weights.frame.shape == (6, 4) and weights.frame["fitted"].between(0, 1).all()
    with pytest.raises(ValueError, match="shots must be in"):
        weigh_objectives(heads, data, shots=30, pairs_per_user=30)
