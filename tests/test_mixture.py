import numpy as np
import pytest
import sklearn
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV, KFold

from plural_kit.data.synthetic import first_pairs_per_user, make_ideal_point_preferences, split_pairs, split_users
from plural_kit.reward import BradleyTerry, MixtureBT


@pytest.fixture(scope="module")
def separated():
    """Three groups with orthogonal linear rewards and clean labels (oracle about 0.9)."""
    return make_ideal_point_preferences(
        n_items=300, n_features=12, n_groups=3, users_per_group=30, pairs_per_user=80, reward="linear",
        disagreement=1.0, temperature=0.25, seed=11,
    )


@pytest.fixture(scope="module")
def fitted(separated):
    train, test = split_pairs(separated, test_size=0.25, seed=0)
    model = MixtureBT(n_components=3, n_init=2, random_state=0).fit(train.X_chosen, train.X_rejected, train.users)
    return model, train, test


def test_close_to_the_oracle_and_groups_recovered(fitted, separated):
    model, train, test = fitted
    acc = model.score(test.X_chosen, test.X_rejected, test.users)
    oracle = test.oracle_accuracy(observed=True)
    assert acc > oracle - 0.02
    ari = adjusted_rand_score(separated.user_groups.loc[model.users_], model.predict_groups())
    assert ari > 0.95
    # one BT for everyone stays far below
    bt = BradleyTerry().fit(train.X_chosen, train.X_rejected)
    assert bt.score(test.X_chosen, test.X_rejected) < oracle - 0.1
    assert model.converged_ and np.isfinite(model.log_likelihood_)


def test_fitted_attributes(fitted):
    model, train, _ = fitted
    resp = model.user_responsibilities_
    assert list(resp.index) == list(dict.fromkeys(train.users))
    assert resp.shape == (30 * 3, 3)
    np.testing.assert_allclose(resp.sum(axis=1), 1.0)
    assert model.coef_.shape == (3, 12)
    np.testing.assert_allclose(model.weights_.sum(), 1.0)
    assert np.all(model.weights_ > 0.25)
    # predictions: responsibility-weighted mixture of the components' probabilities
    u = train.users[:5]
    p = model.predict_proba(train.X_chosen[:5], train.X_rejected[:5], u)
    R = resp.loc[u].to_numpy()
    # coef_ weighs the standardised features (x - feature_mean_) / feature_scale_: the mean cancels in a difference
    assert model.feature_mean_.shape == (12,) and model.feature_scale_ > 0
    diff = (train.X_chosen[:5] - train.X_rejected[:5]) / model.feature_scale_
    comp = 1 / (1 + np.exp(-diff @ model.coef_.T))
    np.testing.assert_allclose(p, (R * comp).sum(axis=1))


def test_one_component_is_bradley_terry(separated):
    X, Y = separated.X_chosen, separated.X_rejected
    mix = MixtureBT(n_components=1, alpha=2.0, tol=1e-12, max_iter=500).fit(X, Y, separated.users)
    units = lambda x: (x - mix.feature_mean_) / mix.feature_scale_  # noqa: E731 (MixtureBT's own units)
    bt = BradleyTerry(alpha=2.0, tol=1e-10).fit(units(X), units(Y))
    np.testing.assert_allclose(mix.coef_[0], bt.coef_, atol=1e-4)


def test_adapt_new_users_near_the_oracle_and_grouped(separated):
    seen, unseen = split_users(separated, test_size=0.2, seed=1)
    model = MixtureBT(n_components=3, random_state=0).fit(seen.X_chosen, seen.X_rejected, seen.users)
    few, rest = first_pairs_per_user(unseen, 10)
    model.adapt(few.X_chosen, few.X_rejected, few.users)
    adapted = model.score(rest.X_chosen, rest.X_rejected, rest.users)
    assert adapted > rest.oracle_accuracy(observed=True) - 0.05
    new_resp = model.user_responsibilities_.loc[list(unseen.user_groups.index)]
    ari = adjusted_rand_score(unseen.user_groups, model.predict_groups().loc[new_resp.index])
    assert ari > 0.9
    assert len(model.users_) == len(separated.user_groups)


def test_restarts_and_random_init_are_reproducible(separated):
    small = separated.subset(np.arange(len(separated)) % 4 == 0)
    a = MixtureBT(3, init="random", n_init=3, random_state=7).fit(small.X_chosen, small.X_rejected, small.users)
    b = MixtureBT(3, init="random", n_init=3, random_state=7).fit(small.X_chosen, small.X_rejected, small.users)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    one = MixtureBT(3, init="random", n_init=1, random_state=7).fit(small.X_chosen, small.X_rejected, small.users)
    assert a.log_likelihood_ >= one.log_likelihood_ - 1e-6 * len(small)


def test_without_users_every_pair_is_its_own_unit(separated):
    small = separated.subset(np.arange(len(separated)) % 8 == 0)
    model = MixtureBT(2, n_init=1).fit(small.X_chosen, small.X_rejected)
    assert len(model.users_) == 0 and model.user_responsibilities_.shape == (0, 2)
    p = model.predict_proba(small.X_chosen, small.X_rejected)
    assert p.shape == (len(small),) and np.all((p > 0) & (p < 1))


def test_more_components_than_users(separated):
    X, Y, u = separated.X_chosen[:100], separated.X_rejected[:100], separated.users[:100]
    with pytest.raises(ValueError, match="more than the 2 users"):
        MixtureBT(3).fit(X, Y, u)  # the first 100 pairs come from 2 users


def test_grid_search_picks_the_true_number_of_groups():
    """GridSearchCV routes ``users`` to fit and score (metadata routing): K=2 for 2 true groups.

    What a user writes: ``X_rejected`` travels as scikit-learn's ``y``; a shuffled KFold keeps
    every user on both sides of each split. Without routing, score gets no users and refuses.
    """
    data = make_ideal_point_preferences(
        n_groups=2, users_per_group=15, pairs_per_user=40, reward="linear", disagreement=1.0, seed=0
    )
    cv = KFold(3, shuffle=True, random_state=0)
    grid = {"n_components": [1, 2, 3]}
    with sklearn.config_context(enable_metadata_routing=True):
        search = GridSearchCV(MixtureBT(n_init=1), grid, cv=cv).fit(data.X_chosen, data.X_rejected, users=data.users)
    assert search.best_params_ == {"n_components": 2}
    scores = search.cv_results_["mean_test_score"]
    assert scores[1] > scores[0] + 0.1, scores
    assert search.best_estimator_.score(data.X_chosen, data.X_rejected, data.users) > data.oracle_accuracy() - 0.05
    # routing off: users reach fit only, so scoring fails loudly (nan scores and the fix named)
    with pytest.warns(UserWarning, match="enable_metadata_routing=True"), \
            pytest.warns(UserWarning, match="test scores are non-finite"):
        silent = GridSearchCV(MixtureBT(n_init=1), grid, cv=cv).fit(data.X_chosen, data.X_rejected, users=data.users)
    assert np.isnan(silent.cv_results_["mean_test_score"]).all()
