"""A fit that failed never returns as if it succeeded (issue 12, class 5), one test per reported case.

Non-finite parameters or predictions raise ``FitFailedError`` and leave the model unfitted; a
degenerate but finite solution (separable pairs without a penalty, a collapsed PAL temperature)
gives a ``ConvergenceWarning`` naming the cause and the fix. The checks shared by every fitter
are in test_fitter_conformance.py.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted

from plural_kit.data.synthetic import make_ideal_point_preferences
from plural_kit.reward import PAL, VPL, BradleyTerry, MiCRo, MixtureBT
from plural_kit.reward.base import FeatureScaleWarning, FitFailedError


@pytest.fixture(scope="module")
def linear():
    """Linear group rewards: no ideal-point curvature, PAL's ideal points belong at infinity."""
    return make_ideal_point_preferences(
        n_items=150, n_features=4, n_groups=2, users_per_group=20, pairs_per_user=60, reward="linear", seed=0
    )


@pytest.fixture(scope="module")
def separable():
    """Pairs ranked without noise by one linear reward: no finite maximum-likelihood weights."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 3)), rng.normal(size=(300, 3))
    first = (a - b) @ np.array([1.0, -2.0, 0.5]) > 0
    chosen, rejected = np.where(first[:, None], a, b), np.where(first[:, None], b, a)
    return chosen, rejected, np.repeat(np.arange(30), 10).astype(str)


def assert_unfitted(model):
    with pytest.raises(NotFittedError):
        check_is_fitted(model, "n_features_in_")
    assert not [k for k in vars(model) if k.endswith("_") and not k.startswith("__")]


def test_pal_on_tiny_features_fits_as_on_unit_features(linear):
    """PAL(alpha=0) on features scaled by 1e-3: temperature_ underflowed to 0 and every
    prediction was NaN, yet fit returned normally. PAL now standardises the features (class 6),
    so the same pairs in other units give the fit of unit-scale features: finite, the same
    predictions, and the same warning that the temperature collapsed on linear rewards."""
    fits = []
    for scale in (1e-3, 1.0):
        with pytest.warns(ConvergenceWarning, match="temperature_ collapsed"):
            model = PAL(alpha=0, device="cpu").fit(linear.X_chosen * scale, linear.X_rejected * scale, linear.users)
        fits.append(model.predict_proba(linear.X_chosen * scale, linear.X_rejected * scale, linear.users))
    assert np.isfinite(fits[0]).all()
    # the ideal points run off to infinity on both: rounding moves where they stop, not the ranking
    np.testing.assert_allclose(fits[0], fits[1], atol=0.05)
    assert abs(np.mean(fits[0] > 0.5) - np.mean(fits[1] > 0.5)) < 0.01


def test_pal_collapsed_temperature_warns(linear):
    """At the defaults on linear rewards temperature_ reached ~1e-151 silently: now a warning naming the fix."""
    with pytest.warns(ConvergenceWarning, match=r"temperature_ collapsed to .*ideal points ran off to infinity.*Fix"):
        model = PAL(device="cpu").fit(linear.X_chosen, linear.X_rejected, linear.users)
    assert np.isfinite(model.predict_proba(linear.X_chosen, linear.X_rejected, linear.users)).all()


def test_pal_tiny_fixed_temperature_raises(linear):
    with pytest.raises(FitFailedError, match="fixed temperature=1e-320 is too small"):
        PAL(temperature=1e-320, n_restarts=1, device="cpu").fit(linear.X_chosen, linear.X_rejected, linear.users)


def test_pal_on_ideal_points_fits_without_warning():
    data = make_ideal_point_preferences(n_items=150, n_features=4, users_per_group=20, pairs_per_user=60, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        PAL(device="cpu").fit(data.X_chosen, data.X_rejected, data.users)


@pytest.mark.parametrize("alpha", [0.0, 1e-300])
def test_bt_without_penalty_on_separable_pairs_is_not_converged(separable, alpha):
    """BradleyTerry(alpha=0) on separable pairs reported converged_=True with |w| = 2e6 and no warning."""
    chosen, rejected, _ = separable
    with pytest.warns(ConvergenceWarning, match=r"linearly separable.*weights are infinite.*Fix: use a penalty, alpha > 0"):
        model = BradleyTerry(alpha=alpha, device="cpu").fit(chosen, rejected)
    assert model.converged_ is False


def test_bt_with_a_penalty_on_separable_pairs_is_fine(separable):
    chosen, rejected, _ = separable
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert BradleyTerry(alpha=1.0, device="cpu").fit(chosen, rejected).converged_


def test_bt_adapt_without_penalty_on_separable_pairs_warns(separable, linear):
    chosen, rejected, _ = separable
    model = BradleyTerry(adapt_alpha=0, device="cpu").fit(linear.X_chosen[:, :3], linear.X_rejected[:, :3])
    with pytest.warns(ConvergenceWarning, match=r"adapt: the pairs of 2 adapted user\(s\).*adapt_alpha > 0"):
        model.adapt(chosen[:20], rejected[:20], ["new"] * 10 + ["new2"] * 10)


def test_mixture_and_micro_without_penalty_on_separable_pairs_warn(separable):
    with pytest.warns(ConvergenceWarning, match=r"MixtureBT.fit: the pairs of component\(s\).*separable"):
        model = MixtureBT(alpha=0, n_init=1, device="cpu").fit(*separable)
    assert model.converged_ is False
    with pytest.warns(ConvergenceWarning, match=r"MiCRo.fit: the pairs routed to head\(s\).*separable"):
        MiCRo(alpha=0, n_restarts=1, device="cpu").fit(*separable)


@pytest.mark.parametrize(
    "model, param",
    [
        (BradleyTerry(max_iter=0), "max_iter"), (MixtureBT(max_iter=0), "max_iter"), (PAL(max_iter=0), "max_iter"),
        (MiCRo(max_iter=0), "max_iter"), (VPL(n_steps=0), "n_steps"), (PAL(n_restarts=0), "n_restarts"),
    ],
)
def test_zero_iterations_are_refused(separable, model, param):
    """max_iter=0 was accepted and returned zero weights."""
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of {type(model).__name__} must be an int in the range \\[1, inf\\)"):
        model.set_params(device="cpu").fit(*separable)


def test_features_that_overflow_float32_are_an_input_error(separable):
    """BradleyTerry solves in raw units: features beyond float32 are refused by name. MixtureBT
    standardises first (in float64), so the same pairs at 1e300 fit as at unit scale."""
    chosen, rejected, users = separable
    model = BradleyTerry(device="cpu")
    with pytest.raises(ValueError, match="overflows float32"):
        model.fit(chosen * 1e300, rejected * 1e300, users)
    assert_unfitted(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow on the way
        huge = MixtureBT(alpha=1.0, n_init=1, device="cpu", random_state=0).fit(chosen * 1e300, rejected * 1e300, users)
    unit = MixtureBT(alpha=1.0, n_init=1, device="cpu", random_state=0).fit(chosen, rejected, users)
    np.testing.assert_allclose(huge.predict_proba(chosen * 1e300, rejected * 1e300, users),
                               unit.predict_proba(chosen, rejected, users), atol=1e-6)


def test_vpl_diverged_training_raises_and_leaves_unfitted(linear):
    model = VPL(lr=1e6, n_steps=20, hidden_dim=8, device="cpu")
    with pytest.raises(FitFailedError, match=r"net_ has \d+ non-finite.*loss is non-finite from step .*smaller lr"):
        model.fit(linear.X_chosen, linear.X_rejected, linear.users)
    assert_unfitted(model)


def test_failed_refit_does_not_leave_the_old_fit(linear):
    model = BradleyTerry(device="cpu").fit(linear.X_chosen, linear.X_rejected)
    with pytest.raises(ValueError, match="overflows float32"):
        model.fit(linear.X_chosen * 1e300, linear.X_rejected * 1e300)
    assert_unfitted(model)


@pytest.mark.parametrize("make", [lambda: BradleyTerry(device="cpu"), lambda: MixtureBT(n_init=1, device="cpu")])
def test_pairs_of_an_item_with_itself_are_refused(make):
    """chosen == rejected everywhere: MixtureBT answered 0.5 with only numpy's and k-means' warnings."""
    X = np.ones((100, 3))
    model = make()
    with pytest.raises(ValueError, match="every pair has 'chosen' equal to 'rejected'"):
        model.fit(X, X, np.repeat(np.arange(10), 10).astype(str))
    assert_unfitted(model)


@pytest.mark.parametrize("make", [
    lambda: MixtureBT(n_init=1, device="cpu"), lambda: PAL(n_restarts=1, max_iter=50, device="cpu"),
    lambda: VPL(n_steps=20, device="cpu"), lambda: MiCRo(n_restarts=1, max_iter=20, device="cpu"),
])
def test_columns_in_different_units_are_named(linear, make):
    """One scale for all columns keeps the geometry, so a column 1e6 times narrower than another hardly
    counts (MixtureBT 0.910 -> 0.618): the standardising fitters say so and name the columns."""
    units = np.array([1e-3, 1.0, 1e3, 1.0])
    with pytest.warns(FeatureScaleWarning, match=r"columns differ in spread by 1.1\de\+06x \(column 2: 1.04e\+03, column 0: 0.000925\).*"
                      r"StandardScaler"):
        make().fit(linear.X_chosen * units, linear.X_rejected * units, linear.users)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FeatureScaleWarning)
        make().fit(linear.X_chosen * 50.0, linear.X_rejected * 50.0, linear.users)  # one unit for all: silent


@pytest.mark.parametrize("alpha", [1e-12, 1e-9])
def test_a_penalty_too_small_to_bound_separable_weights_warns(separable, alpha):
    """BradleyTerry(alpha=1e-12) on separable pairs reported converged_=True with |w| = 3.4e3 and no
    warning (the check wanted every margin saturated; a near-tie pair is not)."""
    chosen, rejected, _ = separable
    with pytest.warns(ConvergenceWarning, match="linearly separable"):
        model = BradleyTerry(alpha=alpha, device="cpu").fit(chosen, rejected)
    assert model.converged_ is False
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        BradleyTerry(device="cpu").fit(chosen, rejected)  # the default alpha=1 bounds them: silent
