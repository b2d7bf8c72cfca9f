"""Metrics for preference models, all computed from ``p_chosen``.

``p_chosen`` (shape (n,)) is the probability a model gives to the *observed* winner of each
pair, i.e. ``model.predict_proba(chosen, rejected, users)``. A pair counts as ranked correctly
when ``p_chosen > 0.5`` (a tie counts as wrong, as in ``PreferenceModel.score``).

Log-loss and calibration use the symmetrised view: every pair gives the two events
"chosen beats rejected" (label 1, probability ``p``) and "rejected beats chosen"
(label 0, probability ``1 - p``), which makes the labels binary without changing the log-loss.

Intervals of these metrics come from :mod:`plural_kit.stats` (``stats.bootstrap_ci(p > 0.5)``,
``stats.bootstrap_ci((p_chosen, groups), worst_group_accuracy)``), the one home of bootstraps.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss as _sk_log_loss


def _check_p(p_chosen) -> np.ndarray:
    p = np.asarray(p_chosen, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"'p_chosen' must be a non-empty 1-D array of probabilities; got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("'p_chosen' must hold probabilities in [0, 1] (no NaN)")
    return p


def _check_labels(values, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    if arr.shape != (n,):
        raise ValueError(f"'{name}' must have one entry per pair: shape ({n},), got {arr.shape}")
    if pd.isna(arr).any():
        raise ValueError(f"'{name}' has missing values")
    return arr


def _symmetrise(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.r_[np.ones(p.size), np.zeros(p.size)], np.r_[p, 1.0 - p]


def accuracy(p_chosen) -> float:
    """Fraction of pairs ranked correctly: ``mean(p_chosen > 0.5)``."""
    return float(np.mean(_check_p(p_chosen) > 0.5))


def per_user_accuracy(p_chosen, users, groups=None) -> pd.DataFrame:
    """Accuracy of each user: DataFrame indexed by user with ``n_pairs``, ``accuracy`` (and ``group``)."""
    p = _check_p(p_chosen)
    frame = pd.DataFrame({"user": _check_labels(users, p.size, "users"), "correct": p > 0.5})
    if groups is not None:
        frame["group"] = _check_labels(groups, p.size, "groups")
        if (frame.groupby("user")["group"].nunique() > 1).any():
            raise ValueError("a user appears in more than one group")
    agg = {"n_pairs": ("correct", "size"), "accuracy": ("correct", "mean")}
    if groups is not None:
        agg["group"] = ("group", "first")
    return frame.groupby("user", sort=False).agg(**agg)


def group_accuracy(p_chosen, groups) -> pd.Series:
    """Accuracy within each group (pooled over its pairs): Series indexed by group, sorted."""
    p = _check_p(p_chosen)
    g = _check_labels(groups, p.size, "groups")
    return pd.Series(p > 0.5).groupby(g).mean().rename("accuracy").rename_axis("group")


def worst_group_accuracy(p_chosen, groups) -> float:
    """The lowest per-group accuracy (pairs pooled within each group)."""
    return float(group_accuracy(p_chosen, groups).min())


def log_loss(p_chosen) -> float:
    """Mean negative log-probability of the observed winners (nats), via scikit-learn."""
    y, prob = _symmetrise(_check_p(p_chosen))
    return float(_sk_log_loss(y, prob, labels=[0, 1]))


def reliability_curve(p_chosen, n_bins: int = 10) -> pd.DataFrame:
    """Reliability diagram data on ``n_bins`` uniform bins of predicted probability (symmetrised).

    Returns a DataFrame with one row per non-empty bin: ``mean_predicted``, ``fraction_positive``
    (the empirical win rate) and ``count`` (events in the bin; each pair gives two events).
    """
    y, prob = _symmetrise(_check_p(p_chosen))
    frac_pos, mean_pred = calibration_curve(y, prob, n_bins=n_bins, strategy="uniform")
    # the same bins as calibration_curve: edges linspace(0, 1, n_bins + 1), right-closed last
    bin_ids = np.searchsorted(np.linspace(0.0, 1.0, n_bins + 1)[1:-1], prob)
    counts = np.bincount(bin_ids, minlength=n_bins)
    return pd.DataFrame(
        {"mean_predicted": mean_pred, "fraction_positive": frac_pos, "count": counts[counts > 0]}
    )


def expected_calibration_error(p_chosen, n_bins: int = 10) -> float:
    """ECE: count-weighted mean of ``|fraction_positive - mean_predicted|`` over the reliability bins."""
    curve = reliability_curve(p_chosen, n_bins)
    gap = np.abs(curve["fraction_positive"] - curve["mean_predicted"])
    return float(np.average(gap, weights=curve["count"]))


def oracle_accuracy(p_true) -> float:
    """Expected accuracy of the Bayes-optimal ranker given the true win probabilities: ``mean(max(p, 1-p))``."""
    p = _check_p(p_true)
    return float(np.mean(np.maximum(p, 1.0 - p)))
