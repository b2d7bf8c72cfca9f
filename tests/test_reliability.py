"""ReliabilityBT (annotator reliability by EM) and the two synthetic worlds of lesson 06.

The fitter API itself is checked in test_fitter_conformance.py.
"""
import numpy as np
import pandas as pd
import pytest
from sklearn.utils._param_validation import InvalidParameterError

from plural_kit.data.synthetic import first_pairs_per_user, make_ideal_point_preferences, split_pairs
from plural_kit.reward import BradleyTerry, ReliabilityBT
from plural_kit.results import check_result
from plural_kit.reward.worlds import MINORITY, agreement, flip_labels, noise_or_view, two_worlds

PLANTED = np.array([1.0, 0.95, 0.85, 0.75, 0.65, 0.55])


@pytest.fixture(scope="module")
def annotators():
    """Six annotators of one clean linear reward, each flipping labels with probability 1 - eta."""
    data = make_ideal_point_preferences(
        n_items=400, n_features=8, n_groups=1, users_per_group=PLANTED.size, pairs_per_user=1500,
        reward="linear", temperature=0.05, seed=0,
    )
    eta = pd.Series(PLANTED, index=data.user_groups.index)
    return flip_labels(data, eta, seed=1), eta


def test_em_recovers_planted_reliability(annotators):
    data, eta = annotators
    model = ReliabilityBT(device="cpu").fit(data.X_chosen, data.X_rejected, data.users)
    assert model.converged_
    got = model.reliability_
    assert got.name == "reliability" and got.index.name == "user" and list(got.index) == list(eta.index)
    np.testing.assert_allclose(got.to_numpy(), eta.to_numpy(), atol=0.05)
    # a BT fit on the same labels is pulled towards zero by the noise; EM's reward is sharper
    bt = BradleyTerry(device="cpu").fit(data.X_chosen, data.X_rejected, data.users)
    assert np.linalg.norm(model.coef_) > 1.5 * np.linalg.norm(bt.coef_)
    assert model.mean_reliability_ == pytest.approx(float(got.mean()), abs=1e-9)  # equal label counts


def test_equals_bradley_terry_when_every_eta_is_one(annotators):
    data, _ = annotators
    rows = slice(0, 3000)
    args = (data.X_chosen[rows], data.X_rejected[rows], data.users[rows])
    bt = BradleyTerry(alpha=2.0, device="cpu").fit(*args)
    rel = ReliabilityBT(alpha=2.0, reliability_init=1.0, device="cpu").fit(*args)
    assert (rel.reliability_ == 1.0).all()
    np.testing.assert_allclose(rel.coef_, bt.coef_, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(rel.predict_proba(*args), bt.predict_proba(*args), atol=1e-6)
    ll = -np.logaddexp(0, -(args[0] - args[1]) @ rel.coef_).sum()  # the BT log-likelihood
    assert rel.log_likelihood_ == pytest.approx(ll, rel=1e-6)


def test_predictions_mix_the_reward_with_each_annotators_reliability(annotators):
    data, eta = annotators
    model = ReliabilityBT(device="cpu").fit(data.X_chosen, data.X_rejected, data.users)
    a, b = data.X_chosen[:5], data.X_rejected[:5]
    p = 1 / (1 + np.exp(-(a - b) @ model.coef_))
    np.testing.assert_allclose(model.predict_proba(a, b), p)  # the population: the denoised preference
    k = eta.index[-1]
    e = model.reliability_[k]
    np.testing.assert_allclose(model.predict_proba(a, b, [k] * 5), e * p + (1 - e) * (1 - p))
    np.testing.assert_allclose(model.reward(a, [k] * 5), a @ model.coef_)  # one reward for everyone


def test_adapt_estimates_a_new_annotators_reliability(annotators):
    data, _ = annotators
    model = ReliabilityBT(adapt_strength=0.0, device="cpu").fit(data.X_chosen, data.X_rejected, data.users)
    new = make_ideal_point_preferences(n_items=400, n_features=8, n_groups=1, users_per_group=2, pairs_per_user=400,
                                       reward="linear", temperature=0.05, seed=0)  # the same reward, new users
    new = flip_labels(new, pd.Series([0.7, 0.1], index=["u0000", "u0001"]), seed=5)
    ids = np.where(new.users == "u0000", "careful", "contrarian")
    model.adapt(new.X_chosen, new.X_rejected, ids)
    assert model.reliability_["careful"] == pytest.approx(0.7, abs=0.07)
    assert model.reliability_["contrarian"] == pytest.approx(0.1, abs=0.07)
    # with few labels the prior keeps a new annotator near the fitted mean
    few, _ = first_pairs_per_user(new, 5)
    shrunk = ReliabilityBT(adapt_strength=20.0, device="cpu").fit(data.X_chosen, data.X_rejected, data.users)
    shrunk.adapt(few.X_chosen, few.X_rejected, np.where(few.users == "u0000", "a", "b"))
    assert abs(shrunk.reliability_["b"] - shrunk.mean_reliability_) < 0.25
    assert shrunk.reliability_["b"] > model.reliability_["contrarian"] + 0.3


def test_fit_without_users_has_one_reliability(annotators):
    data, _ = annotators
    model = ReliabilityBT(device="cpu").fit(data.X_chosen[:2000], data.X_rejected[:2000])
    assert len(model.reliability_) == 0 and 0.5 < model.mean_reliability_ <= 1.0
    assert model.user_representation().shape == (0, 1)


@pytest.mark.parametrize("param, value", [("reliability_init", 0.5), ("reliability_init", 1.2),
                                          ("adapt_strength", -1.0), ("newton_iter", 0)])
def test_bad_parameters_are_named(param, value, annotators):
    data, _ = annotators
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of ReliabilityBT"):
        ReliabilityBT(**{param: value}).fit(data.X_chosen[:50], data.X_rejected[:50])


def test_flip_labels_validates_and_flips():
    data = make_ideal_point_preferences(n_items=50, n_features=3, n_groups=1, users_per_group=2, pairs_per_user=200,
                                        reward="linear", seed=0)
    with pytest.raises(ValueError, match=r"reliability must be in \[0, 1\]"):
        flip_labels(data, pd.Series([1.5], index=["u0000"]))
    flipped = flip_labels(data, pd.Series([0.0], index=["u0000"]))  # u0000 flips every label, u0001 none
    mine = data.users == "u0000"
    np.testing.assert_array_equal(flipped.X_chosen[mine], data.X_rejected[mine])
    np.testing.assert_array_equal(flipped.X_chosen[~mine], data.X_chosen[~mine])
    np.testing.assert_array_equal(flipped.preferences["chosen"][mine], data.preferences["rejected"][mine])
    # under eta = 0 the observed label is the flip of the drawn one: as likely as the drawn one was
    np.testing.assert_allclose(flipped.p_chosen, data.p_chosen)
    half = flip_labels(data, pd.Series([0.5], index=["u0001"]))
    np.testing.assert_allclose(half.p_chosen[~mine], 0.5)


def test_two_worlds_share_the_agreement_rate_not_the_truth():
    worlds, planted = two_worlds(n_users=20, pairs_per_user=120, seed=0)
    assert (planted[worlds["noise"].user_groups == 0] == 1.0).all() and 0.5 < planted.min() < 0.8
    rates = {w: agreement(d.subset(d.groups == MINORITY)).mean() for w, d in worlds.items()}
    assert rates["noise"] == pytest.approx(rates["view"], abs=0.04)
    assert rates["view"] < 0.8  # the minority disagrees often
    for d in worlds.values():
        assert (d.user_groups == MINORITY).sum() == 6
    with pytest.raises(ValueError, match="minority must be in"):
        two_worlds(minority=0.6)


def test_reliability_calls_a_minority_view_noise():
    """The lesson's point: a consistent minority gets a low reliability, and its own held-out labels
    are predicted no better than by one shared reward, while a mixture serves them."""
    view = two_worlds(n_users=20, pairs_per_user=120, seed=0)[0]["view"]
    train, test = split_pairs(view, 0.25, seed=0)
    rel = ReliabilityBT(device="cpu").fit(train.X_chosen, train.X_rejected, train.users)
    eta = rel.reliability_.groupby(view.user_groups).mean()
    assert eta[0] - eta[MINORITY] > 0.2
    minority = test.subset(test.groups == MINORITY)
    assert rel.score(minority.X_chosen, minority.X_rejected, minority.users) < 0.65


def test_noise_or_view_result_and_claims():
    result = noise_or_view(n_users=20, pairs_per_user=80, seed=0, device="cpu")
    check_result(result)
    frame = result.to_frame()
    assert frame.loc[("view", "MixtureBT"), "minority accuracy"] > frame.loc[("view", "ReliabilityBT"),
                                                                             "minority accuracy"] + 0.2
    outcomes = result.claims(n_boot=200).outcomes()
    assert outcomes["mixture_serves_minority_view"] == "holds"
    assert outcomes["reliability_calls_view_noise"] == "holds"
