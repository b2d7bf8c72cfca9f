import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import torch
from sklearn.linear_model import LogisticRegression

from plural_kit.data.synthetic import first_pairs_per_user, make_ideal_point_preferences, split_users
from plural_kit.reward import BradleyTerry, pairs_from_labels


def logistic_pairs(n=3000, d=8, seed=0, scale=1.5):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((n, d)), rng.standard_normal((n, d))
    w = rng.standard_normal(d) * scale / np.sqrt(d)
    y = rng.random(n) < 1 / (1 + np.exp(-(a - b) @ w))
    chosen, rejected = pairs_from_labels(a, b, y)
    return chosen, rejected, w


def test_recovers_known_weights():
    data = make_ideal_point_preferences(
        n_items=400, n_features=10, n_groups=1, users_per_group=200, pairs_per_user=50, reward="linear",
        temperature=0.5, seed=2,
    )
    model = BradleyTerry(alpha=1e-3).fit(data.X_chosen, data.X_rejected)
    assert model.converged_
    true = data.params[0] / (data.reward_scale[0] * data.temperature)  # the generating logit weights
    cos = model.coef_ @ true / np.linalg.norm(model.coef_) / np.linalg.norm(true)
    assert cos > 0.995
    assert np.linalg.norm(model.coef_) == pytest.approx(np.linalg.norm(true), rel=0.05)
    assert model.score(data.X_chosen, data.X_rejected) > data.oracle_accuracy() - 0.02


def test_same_weights_as_statsmodels_logit():
    chosen, rejected, _ = logistic_pairs()
    model = BradleyTerry(alpha=0.0, tol=1e-9).fit(chosen, rejected)
    D = chosen - rejected
    flip = np.arange(len(D)) % 2 == 1  # both classes for the Logit
    ref = sm.Logit((~flip).astype(float), np.where(flip[:, None], -D, D)).fit(disp=0)
    np.testing.assert_allclose(model.coef_, ref.params, atol=1e-5)


def test_penalty_matches_sklearn_convention():
    chosen, rejected, _ = logistic_pairs(n=500, seed=1)
    model = BradleyTerry(alpha=5.0, tol=1e-9).fit(chosen, rejected)
    D = chosen - rejected
    flip = np.arange(len(D)) % 2 == 1
    ref = LogisticRegression(C=1 / 5.0, fit_intercept=False, tol=1e-12, max_iter=10_000)
    ref.fit(np.where(flip[:, None], -D, D), (~flip).astype(int))
    np.testing.assert_allclose(model.coef_, ref.coef_[0], atol=1e-5)


def test_hessian_approximations_do_not_change_the_optimum():
    chosen, rejected, _ = logistic_pairs(n=2000, d=12, seed=3)
    exact = BradleyTerry(hessian_rows=None, hessian_dtype="float64", tol=1e-9).fit(chosen, rejected)
    cheap = BradleyTerry(hessian_rows=60, hessian_dtype="bfloat16", tol=1e-9, random_state=5).fit(chosen, rejected)
    np.testing.assert_allclose(cheap.coef_, exact.coef_, atol=1e-6)
    with pytest.raises(ValueError, match="hessian_dtype"):
        BradleyTerry(hessian_dtype="int8").fit(chosen, rejected)


def test_gpu_path_is_the_same_fit():
    chosen, rejected, _ = logistic_pairs(n=1000, seed=4)
    cpu = BradleyTerry(device="cpu", hessian_dtype="float32").fit(chosen, rejected)
    if torch.cuda.is_available():
        gpu = BradleyTerry(device="cuda", hessian_dtype="float32").fit(chosen, rejected)
        np.testing.assert_allclose(gpu.coef_, cpu.coef_, atol=1e-5)
    else:
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            BradleyTerry(device="cuda").fit(chosen, rejected)


def test_probabilities_rewards_and_params():
    chosen, rejected, _ = logistic_pairs(n=500, seed=5)
    model = BradleyTerry().fit(chosen, rejected)
    p = model.predict_proba(chosen, rejected)
    np.testing.assert_allclose(p + model.predict_proba(rejected, chosen), 1.0)
    r = model.reward(chosen) - model.reward(rejected)
    np.testing.assert_allclose(p, 1 / (1 + np.exp(-r)))
    assert model.score(chosen, rejected) == np.mean(p > 0.5)


def test_adapt_gives_only_the_adapted_users_an_offset():
    data = make_ideal_point_preferences(
        n_items=300, n_features=8, n_groups=2, users_per_group=[40, 10], pairs_per_user=60, reward="linear", seed=6
    )
    seen, unseen = split_users(data, test_size=0.3, seed=0)
    seen = seen.subset(seen.groups == 0)  # the population model only knows group 0
    model = BradleyTerry().fit(seen.X_chosen, seen.X_rejected, seen.users)
    coef = model.coef_.copy()
    few, _ = first_pairs_per_user(unseen.subset(unseen.groups == 1), 30)
    model.adapt(few.X_chosen, few.X_rejected, few.users)
    offsets = model.user_offsets_
    assert isinstance(offsets, pd.DataFrame) and offsets.shape == (len(model.users_), 8)
    assert list(offsets.index) == list(model.users_)
    # users seen only in fit keep the population weights; the shared weights are frozen
    assert np.abs(offsets.loc[list(dict.fromkeys(seen.users))].to_numpy()).max() == 0
    assert (np.abs(offsets.loc[list(dict.fromkeys(few.users))].to_numpy()).max(axis=1) > 0).all()
    np.testing.assert_array_equal(model.coef_, coef)
    u = few.users[:5]  # an adapted user's reward uses w + delta_u
    np.testing.assert_allclose(model.reward(few.X_chosen[:5], u), few.X_chosen[:5] @ coef
                               + np.einsum("ij,ij->i", few.X_chosen[:5], offsets.loc[u].to_numpy()))


def test_labels_to_pairs():
    chosen, rejected, _ = logistic_pairs(n=50)
    with pytest.raises(ValueError, match=r"labels must be 0 or 1.*\[2.0\]"):
        pairs_from_labels(chosen, rejected, np.r_[np.ones(49), 2])
    c, r = pairs_from_labels(chosen, rejected, np.r_[np.ones(25), np.zeros(25)])
    np.testing.assert_array_equal(c[:25], chosen[:25])
    np.testing.assert_array_equal(c[25:], rejected[25:])
    np.testing.assert_array_equal(r[25:], chosen[25:])
