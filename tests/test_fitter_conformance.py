"""One API contract, checked on every reward-model fitter (small, fast settings).

scikit-learn clone and parameters, pickling, seeding, fitted-attribute naming, NotFittedError,
input errors, parameter validation, unknown users, adaptation of new users, metadata routing
and the per-user representation. Model-specific behaviour lives in test_<model>.py.
"""
from __future__ import annotations

import inspect
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.utils._param_validation import InvalidParameterError

from plural_kit.data.synthetic import first_pairs_per_user, make_ideal_point_preferences, split_users
from plural_kit.reward import PAL, VPL, BradleyTerry, MiCRo, MixtureBT, MultiHeadBT, PreferenceModel, ReliabilityBT, UnknownUserWarning
from plural_kit.reward.base import FitFailedError
from plural_kit.reward.worlds import flip_labels

FITTERS = {
    "BradleyTerry": lambda: BradleyTerry(adapt_alpha=1.0, device="cpu"),
    "MixtureBT": lambda: MixtureBT(n_components=2, n_init=1, device="cpu"),
    "PAL": lambda: PAL(n_prototypes=2, n_restarts=1, max_iter=100, device="cpu"),
    "VPL": lambda: VPL(latent_dim=2, hidden_dim=16, n_steps=150, device="cpu"),
    "MiCRo": lambda: MiCRo(n_heads=2, n_restarts=1, max_iter=100, device="cpu"),
    "ReliabilityBT": lambda: ReliabilityBT(device="cpu"),
    "MultiHeadBT": lambda: MultiHeadBT(weight_alpha=0.1, device="cpu"),
}
#: a bad value of one parameter of each fitter, and the parameter's name
BAD_PARAM = {
    "BradleyTerry": ("alpha", -1.0), "MixtureBT": ("init", "kmeans++"), "PAL": ("temperature", 0.0),
    "VPL": ("reward_scaling", "minmax"), "MiCRo": ("n_heads", 0), "ReliabilityBT": ("reliability_init", 0.3),
    "MultiHeadBT": ("weight_alpha", -1.0),
}
PLURALISTIC = ["MixtureBT", "PAL", "VPL", "MiCRo"]


@pytest.fixture(scope="module")
def data():
    """Two groups with orthogonal linear rewards: a user's own parameters matter."""
    return make_ideal_point_preferences(
        n_items=200, n_features=6, n_groups=2, users_per_group=12, pairs_per_user=50, reward="linear",
        disagreement=1.0, temperature=0.3, seed=3,
    )


@pytest.fixture(scope="module")
def seen_unseen(data):
    return split_users(data, test_size=0.25, seed=0)


@pytest.fixture(scope="module", params=list(FITTERS))
def name(request):
    return request.param


@pytest.fixture(scope="module")
def fitted(name, seen_unseen):
    seen, _ = seen_unseen
    return FITTERS[name]().fit(seen.X_chosen, seen.X_rejected, seen.users)


def test_clone_and_params_round_trip(name):
    model = FITTERS[name]()
    assert isinstance(model, PreferenceModel)
    twin = clone(model)
    assert twin is not model and twin.get_params() == model.get_params()
    params = model.get_params()
    assert set(type(model)._parameter_constraints) == set(params)  # every parameter validated one way
    assert type(model)(**params).get_params() == params
    key = next(k for k, v in params.items() if isinstance(v, int) and not isinstance(v, bool) and k != "random_state")
    assert model.set_params(**{key: params[key] + 1}).get_params()[key] == params[key] + 1


def test_public_methods_are_typed(name):
    model = FITTERS[name]()
    for method in ("fit", "reward", "predict_proba", "score", "adapt", "user_representation", "predict_groups"):
        hints = inspect.get_annotations(getattr(type(model), method))
        assert "return" in hints, (name, method)
        params = [p for p in inspect.signature(getattr(model, method)).parameters]
        assert all(p in hints for p in params), (name, method, params, hints)


def test_bad_parameter_names_itself(name, seen_unseen):
    seen, _ = seen_unseen
    param, value = BAD_PARAM[name]
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of {name}"):
        FITTERS[name]().set_params(**{param: value}).fit(seen.X_chosen, seen.X_rejected, seen.users)


def test_not_fitted_before_fit(name, seen_unseen):
    seen, _ = seen_unseen
    model = FITTERS[name]()
    for call in (
        lambda: model.predict_proba(seen.X_chosen, seen.X_rejected),
        lambda: model.reward(seen.X_chosen),
        lambda: model.score(seen.X_chosen, seen.X_rejected, seen.users),
        lambda: model.adapt(seen.X_chosen, seen.X_rejected, seen.users),
        model.user_representation,
    ):
        with pytest.raises(NotFittedError):
            call()


def test_fitted_attributes_end_in_underscore(name, fitted):
    unfitted = set(vars(FITTERS[name]()))
    new = [k for k in vars(fitted) if k not in unfitted and not k.startswith("_")]
    assert new and all(k.endswith("_") for k in new), new
    assert fitted.n_features_in_ == 6 and len(fitted.users_) == 18


def test_pickle_round_trip_and_same_seed_same_numbers(name, fitted, seen_unseen):
    seen, unseen = seen_unseen
    args = (unseen.X_chosen, unseen.X_rejected)
    p = fitted.predict_proba(*args, seen.users[: len(unseen)])
    again = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(again.predict_proba(*args, seen.users[: len(unseen)]), p)
    refit = FITTERS[name]().fit(seen.X_chosen, seen.X_rejected, seen.users)
    np.testing.assert_array_equal(refit.predict_proba(*args, seen.users[: len(unseen)]), p)
    assert ((p > 0) & (p < 1)).all()


def test_unknown_users_warn_and_get_the_population(name, fitted, seen_unseen):
    _, unseen = seen_unseen
    a, b = unseen.X_chosen[:6], unseen.X_rejected[:6]
    with pytest.warns(UnknownUserWarning, match="never seen"):
        p = fitted.predict_proba(a, b, ["nobody"] * 6)
    np.testing.assert_allclose(p, fitted.predict_proba(a, b))


def test_input_errors_name_the_problem(name, fitted, seen_unseen):
    seen, _ = seen_unseen
    c, r, u = seen.X_chosen[:60], seen.X_rejected[:60], seen.users[:60]
    bad = c.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="'chosen' has NaN"):
        FITTERS[name]().fit(bad, r, u)
    with pytest.raises(ValueError, match="'rejected' has 3 features"):
        FITTERS[name]().fit(c, r[:, :3], u)
    with pytest.raises(ValueError, match="'chosen' .* and 'rejected' .* same shape"):
        FITTERS[name]().fit(c, r[:50], u)
    with pytest.raises(ValueError, match="'users' must have one id per pair"):
        FITTERS[name]().fit(c, r, u[:10])
    with pytest.raises(ValueError, match="2-D array"):
        FITTERS[name]().fit(c[0], r[0], u[:1])
    with pytest.raises(ValueError, match="fitted with 6"):
        fitted.predict_proba(c[:, :4], r[:, :4], u)
    with pytest.raises(ValueError, match="needs 'users'"):
        fitted.adapt(c, r, None)
    if name != "MiCRo":
        with pytest.raises(ValueError, match="does not read prompt features"):
            fitted.predict_proba(c, r, u, prompts=np.zeros((60, 2)))


def test_adapt_improves_new_users(name, data):
    """Held-out pairs of new users: more accurate after ``adapt`` on their first pairs than before.

    BradleyTerry knows only group 0 (its one reward) and the new users come from group 1.
    ReliabilityBT's own parameter is a reliability: its new users flip every label.
    """
    seen, unseen = split_users(data, test_size=0.3, seed=1)
    if name == "BradleyTerry":
        seen, unseen = seen.subset(seen.groups == 0), unseen.subset(unseen.groups == 1)
    if name == "ReliabilityBT":
        unseen = flip_labels(unseen, pd.Series(0.0, index=unseen.user_groups.index))
    model = FITTERS[name]().fit(seen.X_chosen, seen.X_rejected, seen.users)
    few, rest = first_pairs_per_user(unseen, 15)
    with pytest.warns(UnknownUserWarning):
        before = model.score(rest.X_chosen, rest.X_rejected, rest.users)
    n_known = len(model.users_)
    model.adapt(few.X_chosen, few.X_rejected, few.users)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownUserWarning)  # the new users are known now
        after = model.score(rest.X_chosen, rest.X_rejected, rest.users)
    assert after >= before + 0.05, (before, after)
    assert len(model.users_) == n_known + len(unseen.user_groups)


def test_metadata_requests_users_and_prompts(name):
    routing = FITTERS[name]().get_metadata_routing()
    for method in ("fit", "score", "predict_proba"):
        requests = getattr(routing, method).requests
        assert requests == {"users": True, "prompts": True}, (method, requests)


@pytest.mark.parametrize("model_name", PLURALISTIC)
def test_score_without_users_is_refused_after_fitting_with_users(model_name, seen_unseen):
    seen, _ = seen_unseen
    model = FITTERS[model_name]().fit(seen.X_chosen, seen.X_rejected, seen.users)
    with pytest.raises(ValueError, match="enable_metadata_routing=True"):
        model.score(seen.X_chosen, seen.X_rejected)


def test_user_representation_and_groups(name, fitted, data):
    rep = fitted.user_representation()
    assert isinstance(rep, pd.DataFrame) and list(rep.index) == list(fitted.users_)
    assert rep.index.name == "user" and rep.shape[0] == 18
    rep.iloc[:, 0] = 99.0  # a copy
    rep = fitted.user_representation()
    assert not (rep.iloc[:, 0] == 99.0).any()
    if name == "BradleyTerry":  # its per-user parameters are adapted offsets: none yet
        assert (rep.to_numpy() == 0).all() and rep.shape[1] == 6
        with pytest.raises(ValueError, match="pass n_groups"):
            fitted.predict_groups()
        return
    if name == "ReliabilityBT":  # one reliability per annotator, no view: it cannot find the groups
        assert list(rep.columns) == ["reliability"] and ((rep > 0.5) & (rep <= 1)).all().all()
        pd.testing.assert_series_equal(rep["reliability"], fitted.reliability_)
        return
    groups = fitted.predict_groups(n_groups=2)
    assert groups.name == "group" and list(groups.index) == list(fitted.users_)
    assert set(groups) == {0, 1}
    pd.testing.assert_series_equal(groups, fitted.predict_groups(n_groups=2))  # seeded k-means
    with pytest.raises(ValueError, match="n_groups must be"):
        fitted.predict_groups(n_groups=0)
    if name in ("MixtureBT", "PAL", "MiCRo", "MultiHeadBT"):  # group weights: the largest one is the group
        pd.testing.assert_series_equal(
            fitted.predict_groups(), pd.Series(rep.to_numpy().argmax(axis=1), index=rep.index, name="group")
        )
        np.testing.assert_allclose(fitted.user_representation().sum(axis=1), 1.0)
    else:
        with pytest.raises(ValueError, match="pass n_groups"):
            fitted.predict_groups()
    if name == "MultiHeadBT":  # each user of fit is a source with its own head: one-hot weights, no groups
        return
    # the users' own parameters recover the two true groups
    assert adjusted_rand_score(data.user_groups.loc[groups.index], groups) > 0.7


def test_predict_groups_needs_known_users(seen_unseen):
    seen, _ = seen_unseen
    model = FITTERS["MixtureBT"]().fit(seen.X_chosen[:100], seen.X_rejected[:100])
    with pytest.raises(ValueError, match="knows no users"):
        model.predict_groups()
    assert sklearn.get_config()["enable_metadata_routing"] is False  # no test leaks the global switch


# ---- a fit that failed never returns as if it succeeded (issue 12, class 5) --------------------
def _corrupt_first_float_attribute(model):
    """Set one value of the model's first fitted float array (``*_``) to NaN; return its name."""
    for attr, value in vars(model).items():
        if attr.endswith("_") and isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            value.flat[0] = np.nan
            return attr
    raise AssertionError(f"no fitted float array on {type(model).__name__}")


def _assert_unfitted(model, seen):
    assert not [k for k in vars(model) if k.endswith("_") and not k.startswith("__")]
    with pytest.raises(NotFittedError):
        model.predict_proba(seen.X_chosen[:5], seen.X_rejected[:5], seen.users[:5])


def test_non_finite_parameters_fail_the_fit_and_leave_it_unfitted(name, seen_unseen, monkeypatch):
    seen, _ = seen_unseen
    cls = type(FITTERS[name]())
    real_fit, corrupted = cls._fit, []

    def broken_fit(self, *args, **kwargs):
        real_fit(self, *args, **kwargs)
        corrupted.append(_corrupt_first_float_attribute(self))

    monkeypatch.setattr(cls, "_fit", broken_fit)
    model = FITTERS[name]()
    with pytest.raises(FitFailedError, match=rf"{name}.fit failed: .*non-finite.*left unfitted"):
        model.fit(seen.X_chosen, seen.X_rejected, seen.users)
    assert corrupted
    _assert_unfitted(model, seen)


def test_nan_predictions_on_the_training_pairs_fail_the_fit(name, seen_unseen, monkeypatch):
    seen, _ = seen_unseen
    cls = type(FITTERS[name]())
    monkeypatch.setattr(cls, "_predict_proba", lambda self, a, b, user_idx, **kw: np.full(len(a), np.nan))
    model = FITTERS[name]()
    with pytest.raises(FitFailedError, match=r"predictions on the training pairs are not probabilities"):
        model.fit(seen.X_chosen, seen.X_rejected, seen.users)
    _assert_unfitted(model, seen)


def test_a_failed_adapt_leaves_the_model_as_it_was(name, seen_unseen, monkeypatch):
    seen, unseen = seen_unseen
    model = FITTERS[name]().fit(seen.X_chosen, seen.X_rejected, seen.users)
    users, rep = model.users_.copy(), model.user_representation()
    p = model.predict_proba(seen.X_chosen[:20], seen.X_rejected[:20], seen.users[:20])
    cls, real_adapt = type(model), type(model)._adapt

    def broken_adapt(self, *args, **kwargs):
        real_adapt(self, *args, **kwargs)
        _corrupt_first_float_attribute(self)

    monkeypatch.setattr(cls, "_adapt", broken_adapt)
    with pytest.raises(FitFailedError, match=rf"{name}.adapt failed: .*left as it was"):
        model.adapt(unseen.X_chosen, unseen.X_rejected, unseen.users)
    monkeypatch.undo()
    np.testing.assert_array_equal(model.users_, users)
    pd.testing.assert_frame_equal(model.user_representation(), rep)
    np.testing.assert_array_equal(model.predict_proba(seen.X_chosen[:20], seen.X_rejected[:20], seen.users[:20]), p)


def test_a_well_posed_fit_passes_the_check_silently(name):
    """No ConvergenceWarning where the problem is well posed (PAL on ideal points: its own model)."""
    data = make_ideal_point_preferences(
        n_items=200, n_features=6, n_groups=2, users_per_group=12, pairs_per_user=50,
        reward="ideal_point" if name == "PAL" else "linear", disagreement=1.0, temperature=0.3, seed=3,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = FITTERS[name]().fit(data.X_chosen, data.X_rejected, data.users)
        model.adapt(data.X_chosen[:40], data.X_rejected[:40], ["new"] * 40)


# ---- user ids of different types are never merged (issue 12, class 8) -------------------------
def test_colliding_user_ids_are_refused(name, seen_unseen):
    seen, _ = seen_unseen
    c, r = seen.X_chosen[:60], seen.X_rejected[:60]
    for ids in ([1, 1.0, True], [1, "1"], [0, False]):
        users = [ids[i % len(ids)] for i in range(60)]
        with pytest.raises(ValueError, match="'users' mixes id types that collide: .*one id of one type"):
            FITTERS[name]().fit(c, r, users)


def test_user_ids_are_compared_as_given_by_type(name, seen_unseen):
    """Ids of another type at prediction or adaptation are an error, not a silent match or miss."""
    seen, unseen = seen_unseen
    c, r = seen.X_chosen[:5], seen.X_rejected[:5]
    model = FITTERS[name]().fit(seen.X_chosen, seen.X_rejected, pd.factorize(seen.users)[0])  # int ids 0..17
    same = model.predict_proba(c, r, np.zeros(5, dtype=np.int64))  # np.int64(0) is the int 0
    np.testing.assert_array_equal(same, model.predict_proba(c, r, [0] * 5))
    for other, shown in (("0", r"0 \(int\) vs '0' \(str\)"), (0.0, r"0 \(int\) vs 0.0 \(float\)")):
        with pytest.raises(ValueError, match=r"collide with the ids the model knows \(users_\): " + shown):
            model.predict_proba(c, r, [other] * 5)
    n_users = len(model.users_)
    with pytest.raises(ValueError, match=r"1 \(int\) vs True \(bool\)"):
        model.adapt(unseen.X_chosen[:5], unseen.X_rejected[:5], [True] * 5)
    assert len(model.users_) == n_users


@pytest.mark.parametrize("scale,offset", [(1e-3, 0.0), (0.05, 0.0), (1e3, 0.0), (1.0, 5.0), (1e6, -3.0)])
@pytest.mark.parametrize("name", PLURALISTIC)
def test_pluralistic_predictions_do_not_depend_on_the_features_units(name, seen_unseen, scale, offset):
    """Issue 12, class 6: MixtureBT scored 0.917 at scale 1 and 0.742 (one population BT) at 1e-3;
    PAL and MiCRo collapsed at 1e-3 and VPL dropped at 1e6. The pluralistic fitters standardise
    inside (one location and scale), so the same pairs in other units give the same predictions."""
    seen, unseen = seen_unseen
    ref = FITTERS[name]().set_params(random_state=0).fit(seen.X_chosen, seen.X_rejected, seen.users)
    p_ref = ref.predict_proba(seen.X_chosen, seen.X_rejected, seen.users)

    def units(x):
        return x * scale + offset

    model = FITTERS[name]().set_params(random_state=0).fit(units(seen.X_chosen), units(seen.X_rejected), seen.users)
    p = model.predict_proba(units(seen.X_chosen), units(seen.X_rejected), seen.users)
    np.testing.assert_allclose(p, p_ref, atol=1e-4)
    assert ref.score(seen.X_chosen, seen.X_rejected, seen.users) > 0.75  # well above one BT on these groups
    np.testing.assert_allclose(model.feature_scale_ / ref.feature_scale_, scale, rtol=1e-9)
    # adaptation of new users reads the same units
    few, rest = first_pairs_per_user(unseen, 10)
    ref.adapt(few.X_chosen, few.X_rejected, few.users)
    model.adapt(units(few.X_chosen), units(few.X_rejected), few.users)
    np.testing.assert_allclose(model.predict_proba(units(rest.X_chosen), units(rest.X_rejected), rest.users),
                               ref.predict_proba(rest.X_chosen, rest.X_rejected, rest.users), atol=1e-4)


def test_bradley_terry_weights_scale_inversely_with_the_features(seen_unseen):
    """BT without a penalty is equivariant: features times c give weights divided by c, the same predictions."""
    seen, _ = seen_unseen
    ref = BradleyTerry(alpha=0.0, device="cpu").fit(seen.X_chosen, seen.X_rejected)
    for c in (1e-3, 1e3):
        model = BradleyTerry(alpha=0.0, device="cpu").fit(seen.X_chosen * c, seen.X_rejected * c)
        np.testing.assert_allclose(model.coef_ * c, ref.coef_, rtol=1e-4, atol=1e-5)  # to the solver tolerance
