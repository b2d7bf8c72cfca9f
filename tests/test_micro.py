"""MiCRo: linear heads mixed by a prompt router; stage-2 adaptation of the router only."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from plural_kit.data.synthetic import make_ideal_point_preferences, split_pairs
from plural_kit.reward.base import UnknownUserWarning
from plural_kit.reward.bt import BradleyTerry
from plural_kit.reward.micro import MiCRo

D, DP, K, TEMP = 8, 6, 2, 0.3


def _world(seed: int = 0):
    """Two orthogonal unit reward directions and two prompt-topic centres (the ground truth)."""
    rng = np.random.default_rng(seed)
    heads = np.linalg.qr(rng.standard_normal((D, K)))[0].T
    centres = 2.0 * rng.standard_normal((K, DP))
    return heads, centres


def _pairs(head_of_pair, topic, rng):
    """Pairs whose label follows head ``head_of_pair``; prompts drawn around the ``topic`` centres."""
    heads, centres = _world()
    n = len(head_of_pair)
    prompts = centres[topic] + rng.standard_normal((n, DP))
    a, b = rng.standard_normal((n, D)), rng.standard_normal((n, D))
    p = 1.0 / (1.0 + np.exp(-((a - b) * heads[head_of_pair]).sum(1) / TEMP))
    a_wins = rng.random(n) < p
    chosen, rejected = np.where(a_wins[:, None], a, b), np.where(a_wins[:, None], b, a)
    return chosen, rejected, prompts, np.maximum(p, 1 - p).mean()


@pytest.fixture(scope="module")
def topic_data():
    """The preferred head depends on the prompt's topic (what a router can learn)."""
    rng = np.random.default_rng(1)
    topic = rng.integers(0, K, 3000)
    return _pairs(topic, topic, rng)


@pytest.fixture(scope="module")
def fitted(topic_data):
    chosen, rejected, prompts, _ = topic_data
    return MiCRo(n_heads=K, device="cpu").fit(chosen[:2000], rejected[:2000], prompts=prompts[:2000])


def test_router_reaches_oracle_and_beats_bt(topic_data, fitted):
    chosen, rejected, prompts, oracle = topic_data
    acc = fitted.score(chosen[2000:], rejected[2000:], prompts=prompts[2000:])
    bt = BradleyTerry().fit(chosen[:2000], rejected[:2000]).score(chosen[2000:], rejected[2000:])
    no_router = MiCRo(n_heads=K, device="cpu").fit(chosen[:2000], rejected[:2000]).score(chosen[2000:], rejected[2000:])
    assert acc >= oracle - 0.03, (acc, oracle)
    assert acc >= bt + 0.1 and acc >= no_router + 0.1, (acc, bt, no_router)


def test_fitted_attributes(topic_data, fitted):
    _, _, prompts, _ = topic_data
    heads, _ = _world()
    assert fitted.heads_.shape == (K, D) and fitted.router_coef_.shape == (K, DP)
    assert fitted.router_intercept_.shape == (K,) and fitted.n_prompt_features_ == DP
    np.testing.assert_allclose(fitted.mixing_weights_.sum(), 1.0)
    assert fitted.mixing_weights_.min() > 0.3  # load balancing: both heads in use
    # each learned head points along one true direction
    cos = np.abs(fitted.heads_ @ heads.T) / np.linalg.norm(fitted.heads_, axis=1, keepdims=True)
    assert np.sort(cos.max(axis=1)).min() > 0.9
    pi = fitted.routing(prompts[:50])
    assert pi.shape == (50, K)
    np.testing.assert_allclose(pi.sum(1), 1.0)


def test_adapt_router_beats_population(fitted):
    """New users who want one head whatever the topic: 10 pairs each fix their routing."""
    rng = np.random.default_rng(2)
    user = np.repeat(np.arange(12), 100)
    chosen, rejected, prompts, _ = _pairs(user % K, rng.integers(0, K, user.size), rng)
    users = np.array([f"new{u}" for u in user], dtype=object)
    shots = np.tile(np.arange(100), 12) < 10
    heads, coef = fitted.heads_.copy(), fitted.router_coef_.copy()
    with pytest.warns(UnknownUserWarning):
        population = fitted.score(chosen[~shots], rejected[~shots], users[~shots], prompts[~shots])
    fitted.adapt(chosen[shots], rejected[shots], users[shots], prompts[shots])
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownUserWarning)
        adapted = fitted.score(chosen[~shots], rejected[~shots], users[~shots], prompts[~shots])
    assert adapted >= population + 0.05, (adapted, population)
    np.testing.assert_array_equal(fitted.heads_, heads)
    np.testing.assert_array_equal(fitted.router_coef_, coef)
    assert fitted.user_offsets_.shape == (12, K)


def test_per_user_groups_without_prompts():
    """With user ids and no prompts, per-user router offsets make it a mixture over users."""
    data = make_ideal_point_preferences(n_groups=2, users_per_group=10, pairs_per_user=80, reward="linear", seed=0)
    train, test = split_pairs(data, test_size=0.25, seed=0)
    model = MiCRo(n_heads=2, device="cpu").fit(train.X_chosen, train.X_rejected, train.users)
    bt = BradleyTerry().fit(train.X_chosen, train.X_rejected).score(test.X_chosen, test.X_rejected)
    acc = model.score(test.X_chosen, test.X_rejected, test.users)
    assert acc >= test.oracle_accuracy() - 0.05 and acc >= bt + 0.1, (acc, bt, test.oracle_accuracy())
    groups = model.predict_groups()  # each user's head at the (empty) mean prompt
    assert adjusted_rand_score(data.user_groups.loc[groups.index], groups) >= 0.9


def test_bad_input_errors(topic_data, fitted):
    chosen, rejected, prompts, _ = topic_data
    with pytest.raises(ValueError, match="pass prompts"):
        fitted.predict_proba(chosen[:3], rejected[:3])
    with pytest.raises(ValueError, match="one row per pair"):
        fitted.predict_proba(chosen[:3], rejected[:3], prompts=prompts[:2])
    with pytest.raises(ValueError, match="features"):
        fitted.reward(chosen[:3], prompts=prompts[:3, :2])
    with pytest.raises(ValueError, match="without prompts"):
        no_prompts = MiCRo(n_heads=2, max_iter=5).fit(chosen[:50], rejected[:50])
        no_prompts.score(chosen[:3], rejected[:3], prompts=prompts[:3])
    bad = prompts[:50].copy()
    bad[1, 1] = np.nan
    with pytest.raises(ValueError, match="prompts.*NaN"):
        MiCRo().fit(chosen[:50], rejected[:50], prompts=bad)
    with pytest.raises(ValueError, match="does not read prompt features"):
        BradleyTerry().fit(chosen[:50], rejected[:50], prompts=prompts[:50])
