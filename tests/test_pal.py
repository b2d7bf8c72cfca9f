"""PAL: the ideal-point model recovers groups, gets near the oracle, adapts to new users."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from plural_kit.data.synthetic import first_pairs_per_user, make_ideal_point_preferences, split_pairs, split_users
from plural_kit.reward.bt import BradleyTerry
from plural_kit.reward.pal import PAL


@pytest.fixture(scope="module")
def data():
    return make_ideal_point_preferences(n_groups=3, users_per_group=10, pairs_per_user=80, reward="ideal_point", seed=0)


@pytest.fixture(scope="module")
def split(data):
    return split_pairs(data, test_size=0.25, seed=0)


@pytest.fixture(scope="module")
def fitted(split):
    train, _ = split
    return PAL(n_prototypes=3, device="cpu").fit(train.X_chosen, train.X_rejected, train.users)


def test_near_oracle_and_beats_single_bt(split, fitted):
    train, test = split
    acc = fitted.score(test.X_chosen, test.X_rejected, test.users)
    bt = BradleyTerry().fit(train.X_chosen, train.X_rejected).score(test.X_chosen, test.X_rejected)
    assert acc >= test.oracle_accuracy() - 0.03, (acc, test.oracle_accuracy())
    assert acc >= bt + 0.15, (acc, bt)


def test_recovers_groups(data, fitted):
    groups = fitted.predict_groups()
    assert adjusted_rand_score(data.user_groups.loc[groups.index], groups) >= 0.9


def test_linear_rewards_as_far_away_ideal_points():
    """Linear group rewards are the limit of ideal points far away (tau -> 0): PAL must not stall."""
    data = make_ideal_point_preferences(n_features=64, users_per_group=10, pairs_per_user=80, reward="linear", seed=0)
    train, test = split_pairs(data, test_size=0.25, seed=0)
    model = PAL(n_prototypes=3, device="cpu").fit(train.X_chosen, train.X_rejected, train.users)
    assert model.score(test.X_chosen, test.X_rejected, test.users) >= test.oracle_accuracy() - 0.05
    assert model.temperature_ < 0.1


def test_fitted_attributes(split, fitted):
    train, _ = split
    w = fitted.user_weights_
    assert w.shape == (30, 3) and list(w.index) == list(dict.fromkeys(train.users))
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    assert fitted.prototypes_.shape == (3, 16)
    np.testing.assert_array_equal(fitted.projection_, np.eye(16))
    np.testing.assert_allclose(fitted.ideal_points_.to_numpy(), w.to_numpy() @ fitted.prototypes_)
    np.testing.assert_allclose(fitted.population_weights_, w.to_numpy().mean(axis=0))
    assert fitted.temperature_ > 0
    # reward differences are differences of minus the scaled squared distances to the ideal point
    a, b, users = train.X_chosen[:5], train.X_rejected[:5], train.users[:5]
    ideal = fitted.ideal_points_.loc[users].to_numpy()  # in standardised units (x - feature_mean_) / feature_scale_
    sq = lambda x: (((x - fitted.feature_mean_) / fitted.feature_scale_ - ideal) ** 2).sum(1)  # noqa: E731
    np.testing.assert_allclose(
        fitted.reward(a, users) - fitted.reward(b, users), fitted.temperature_ * (sq(b) - sq(a)), rtol=1e-6, atol=1e-8
    )


def test_adapt_near_the_oracle_and_freezes_shared_params(data):
    seen, unseen = split_users(data, test_size=0.3, seed=0)
    model = PAL(n_prototypes=3, device="cpu").fit(seen.X_chosen, seen.X_rejected, seen.users)
    shots, rest = first_pairs_per_user(unseen, 10)
    protos, proj, tau = model.prototypes_.copy(), model.projection_.copy(), model.temperature_
    model.adapt(shots.X_chosen, shots.X_rejected, shots.users)
    adapted = model.score(rest.X_chosen, rest.X_rejected, rest.users)
    assert adapted >= rest.oracle_accuracy() - 0.05, (adapted, rest.oracle_accuracy())
    np.testing.assert_array_equal(model.prototypes_, protos)
    np.testing.assert_array_equal(model.projection_, proj)
    assert model.temperature_ == tau
    assert set(shots.users) <= set(model.user_weights_.index)


def test_learned_projection(split):
    train, test = split
    model = PAL(n_prototypes=3, latent_dim=8, device="cpu")
    model.fit(train.X_chosen, train.X_rejected, train.users)
    assert model.projection_.shape == (8, 16) and model.prototypes_.shape == (3, 8)
    assert model.transform(test.X_chosen[:3]).shape == (3, 8)
    assert model.score(test.X_chosen, test.X_rejected, test.users) >= test.oracle_accuracy() - 0.06


def test_fit_without_users(split):
    train, test = split
    model = PAL(n_prototypes=2, device="cpu").fit(train.X_chosen, train.X_rejected)
    assert model.user_weights_.shape == (0, 2)
    np.testing.assert_allclose(model.population_weights_.sum(), 1.0)
    assert model.score(test.X_chosen, test.X_rejected) > 0.6
