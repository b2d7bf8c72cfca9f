"""A multi-head reward (the MORE / multi-objective idea): one head per source, per-user weights.

``fit`` reads the ids in ``users`` as **sources** (an objective's annotators, a data set): each
source gets its own linear Bradley-Terry head ``r_j(x) = w_j . x`` fitted on its pairs alone, so
each head is calibrated on its own source. A user ``u`` weighs the heads with weights on the
simplex, ``r_u(x) = sum_j pi_uj r_j(x)``; ``adapt`` fits a new user's ``pi_u`` from a few of
their pairs (heads frozen) by maximum likelihood with an L2 pull towards the uniform weights
(``weight_alpha``), a convex problem solved by SLSQP. A source's own weights are one-hot (its
head); the population (no or unknown user) weighs every head equally.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from plural_kit import metrics
from plural_kit.reward.base import POPULATION, PreferenceModel, check_features
from plural_kit.reward.bt import BradleyTerry


class MultiHeadBT(PreferenceModel):
    """One Bradley-Terry head per source (the ids of ``fit``), simplex weights per user.

    Parameters
    ----------
    alpha : L2 penalty of each head (as in :class:`~plural_kit.reward.bt.BradleyTerry`).
    weight_alpha : L2 penalty pulling an adapted user's weights towards uniform (0: none).
    max_iter : maximum SLSQP iterations of each user's weights.
    device : where the heads are fitted ("auto", "cpu", "cuda", ...).
    random_state : seed of the heads' Hessian subsample.

    Fitted attributes
    -----------------
    coef_ : (n_heads, d) the heads' weights, in the order of ``heads_``.
    heads_ : (n_heads,) the source ids of ``fit``.
    user_weights_ : DataFrame (users x heads) of simplex weights, indexed by user id (the sources
        first, one-hot; adapted users appended); also ``user_representation()``.
    """

    _pluralistic = True
    _group_weights = True
    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "weight_alpha": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "random_state": [Interval(Integral, 0, None, closed="left")],
    }

    def __init__(self, alpha: float = 1.0, weight_alpha: float = 1.0, max_iter: int = 200, device: str = "auto",
                 random_state: int = 0):
        self.alpha = alpha
        self.weight_alpha = weight_alpha
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    def _fit(self, chosen, rejected, user_idx):
        if (user_idx == POPULATION).all():
            raise ValueError("MultiHeadBT.fit needs 'users': the source (objective, data set) of each pair, "
                             "one head per source")
        head = BradleyTerry(alpha=self.alpha, device=self.device, random_state=self.random_state)
        self.coef_ = np.stack([head.fit(chosen[user_idx == j], rejected[user_idx == j]).coef_
                               for j in range(len(self.users_))])
        self.heads_ = self.users_.copy()
        self._set_weights(np.eye(len(self.heads_)))

    def _set_weights(self, weights: np.ndarray) -> None:
        self._weights = weights
        self.user_weights_ = pd.DataFrame(weights, index=pd.Index(self.users_, name="user"),
                                          columns=pd.Index(self.heads_, name="head"))

    def _grow_users(self, n_new):
        J = len(self.heads_)
        self._set_weights(np.vstack([self._weights, np.full((n_new, J), 1.0 / J)]))

    def _adapt(self, chosen, rejected, user_idx):
        H = (chosen - rejected) @ self.coef_.T  # (n, J) each head's margin
        J = H.shape[1]
        weights = self._weights.copy()
        uniform = np.full(J, 1.0 / J)
        for u in np.unique(user_idx):
            Hu = H[user_idx == u]

            def objective(w, Hu=Hu):
                z = Hu @ w
                s = np.exp(-np.logaddexp(0.0, z))  # sigmoid(-z)
                value = np.logaddexp(0.0, -z).sum() + 0.5 * self.weight_alpha * np.sum((w - uniform) ** 2)
                return value, -(s @ Hu) + self.weight_alpha * (w - uniform)

            res = minimize(objective, uniform, jac=True, method="SLSQP", bounds=[(0.0, 1.0)] * J,
                           constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1.0, "jac": lambda w: np.ones(J)}],
                           options={"maxiter": self.max_iter, "ftol": 1e-10})
            w = np.clip(res.x, 0.0, None)
            weights[u] = w / w.sum()
        self._set_weights(weights)

    def _user_weights(self, user_idx: np.ndarray) -> np.ndarray:
        W = np.full((user_idx.size, len(self.heads_)), 1.0 / len(self.heads_))
        known = user_idx != POPULATION
        W[known] = self._weights[user_idx[known]]
        return W

    def _reward(self, x, user_idx):
        return np.einsum("ij,ij->i", self._user_weights(user_idx), x @ self.coef_.T)

    def _user_representation(self) -> pd.DataFrame:
        return self.user_weights_

    def head_rewards(self, x: np.ndarray) -> np.ndarray:
        """Each head's reward of the rows of ``x`` (n, d): array (n, n_heads), heads as in ``heads_``."""
        check_is_fitted(self, "coef_")
        return check_features(x, "x", self.n_features_in_) @ self.coef_.T


def calibration_by_source(p_chosen, sources, n_bins: int = 10) -> pd.DataFrame:
    """Per source: pairs, accuracy and ECE (:func:`plural_kit.metrics.expected_calibration_error`)
    of the probabilities ``p_chosen`` (n,) of the observed winners; ``sources`` (n,)."""
    p = np.asarray(p_chosen, dtype=float)
    s = np.asarray(sources, dtype=object)
    if s.shape != p.shape:
        raise ValueError(f"'sources' must have one entry per pair: shape {p.shape}, got {s.shape}")
    rows = {src: {"pairs": int((s == src).sum()), "accuracy": metrics.accuracy(p[s == src]),
                  "ECE": metrics.expected_calibration_error(p[s == src], n_bins)} for src in pd.unique(s)}
    return pd.DataFrame(rows).T.rename_axis("source")
