"""The one API every reward-model fitter shares (scikit-learn conventions).

A fitter works on feature arrays: ``chosen`` and ``rejected`` of shape (n, d) (float),
and optionally ``users`` of shape (n,) naming who judged each pair. Subclasses implement
``_fit``, ``_reward`` (per-user reward on known-user indices, -1 = population) and
``_adapt``; they may override ``_predict_proba`` when the pair probability is not
``sigmoid(r(a) - r(b))`` (e.g. mixtures average over components).
"""
from __future__ import annotations

import warnings
from abc import abstractmethod

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from plural_kit.metrics import accuracy

POPULATION = -1  # user index meaning "no known user: predict for the population"


class UnknownUserWarning(UserWarning):
    """A user never seen in ``fit`` nor ``adapt`` got the population-level prediction."""


def check_features(x, name: str, n_features: int | None = None) -> np.ndarray:
    """Return ``x`` as a float64 array of shape (n, d); raise ValueError naming ``name`` otherwise."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"'{name}' must be a 2-D array of shape (n_pairs, n_features); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"'{name}' is empty (0 rows)")
    if not np.isfinite(arr.sum()) and not np.isfinite(arr).all():  # cheap sum first; exact check only if needed
        bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise ValueError(f"'{name}' has NaN or infinite values in {bad.size} row(s), first at rows {bad[:5].tolist()}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"'{name}' has {arr.shape[1]} features but the model was fitted with {n_features}")
    return arr


def check_pairs(chosen, rejected, users=None, n_features: int | None = None):
    """Validate a batch of pairs; return (chosen, rejected, users) with users an object array or None."""
    chosen = check_features(chosen, "chosen", n_features)
    rejected = check_features(rejected, "rejected", chosen.shape[1])
    if chosen.shape != rejected.shape:
        raise ValueError(f"'chosen' {chosen.shape} and 'rejected' {rejected.shape} must have the same shape")
    if users is not None:
        users = np.asarray(users, dtype=object)
        if users.shape != (chosen.shape[0],):
            raise ValueError(f"'users' must have one id per pair: shape ({chosen.shape[0]},), got {users.shape}")
        if any(u is None or (isinstance(u, float) and np.isnan(u)) for u in users):
            raise ValueError("'users' contains missing ids (None/NaN)")
    return chosen, rejected, users


def pairs_from_labels(a, b, y):
    """Turn (a, b, y) with y=1 meaning "a preferred" into (chosen, rejected).

    Raises ValueError if ``y`` has values outside {0, 1} (or NaN).
    """
    a = check_features(a, "a")
    b = check_features(b, "b", a.shape[1])
    y = np.asarray(y, dtype=np.float64)
    if y.shape != (a.shape[0],):
        raise ValueError(f"'y' must have shape ({a.shape[0]},), got {y.shape}")
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        raise ValueError(
            f"labels must be 0 or 1 (1 = first item preferred); found {np.unique(y[bad])[:5].tolist()} "
            f"at rows {np.flatnonzero(bad)[:5].tolist()}"
        )
    first = y == 1
    return np.where(first[:, None], a, b), np.where(first[:, None], b, a)


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function."""
    return np.exp(-np.logaddexp(0.0, -z))


class PreferenceModel(BaseEstimator):
    """Base class: ``fit`` / ``reward`` / ``predict_proba`` / ``score`` / ``adapt``.

    Fitted attributes set here: ``n_features_in_`` and ``users_`` (array of the user ids
    known to the model, fitted or adapted, in index order).
    """

    # ---- public API ---------------------------------------------------------------
    def fit(self, chosen, rejected, users=None):
        """Fit on pairs: ``chosen``/``rejected`` (n, d) floats, ``users`` (n,) ids or None."""
        chosen, rejected, users = check_pairs(chosen, rejected, users)
        self.n_features_in_ = chosen.shape[1]
        self._fit(chosen, rejected, self._set_users(users, chosen.shape[0]))
        return self

    def reward(self, x, users=None) -> np.ndarray:
        """Reward of each row of ``x`` (n, d) for ``users`` (n,) (population if None); shape (n,)."""
        check_is_fitted(self, "n_features_in_")
        x = check_features(x, "x", self.n_features_in_)
        return self._reward(x, self._user_index(users, n=x.shape[0]))

    def predict_proba(self, a, b, users=None) -> np.ndarray:
        """P(a preferred to b) for each row; shape (n,)."""
        check_is_fitted(self, "n_features_in_")
        a, b, users = check_pairs(a, b, users, self.n_features_in_)
        return self._predict_proba(a, b, self._user_index(users, n=a.shape[0]))

    def score(self, chosen, rejected, users=None) -> float:
        """Fraction of pairs ranked correctly (P(chosen > rejected) > 0.5)."""
        return accuracy(self.predict_proba(chosen, rejected, users))

    def adapt(self, chosen, rejected, users):
        """Fit only the given users' own parameters from their pairs (shared parameters frozen).

        New users are added to ``users_``; known users are re-estimated from these pairs.
        """
        check_is_fitted(self, "n_features_in_")
        if users is None:
            raise ValueError("'adapt' needs 'users': the id of the user who judged each pair")
        chosen, rejected, users = check_pairs(chosen, rejected, users, self.n_features_in_)
        self._adapt(chosen, rejected, self._add_users(users))
        return self

    # ---- helpers for subclasses -----------------------------------------------------
    def _set_users(self, users, n: int) -> np.ndarray:
        """Record the users of ``fit`` in ``users_`` (first-seen order); return each pair's index."""
        if users is None:
            self.users_ = np.array([], dtype=object)
            return np.full(n, POPULATION)
        self.users_ = np.array(list(dict.fromkeys(users.tolist())), dtype=object)
        return self._user_index(users, warn=False)

    def _add_users(self, users) -> np.ndarray:
        """Append the users of ``adapt`` not yet known (allocating their parameters); return each pair's index."""
        known = set(self.users_.tolist())
        new = [u for u in dict.fromkeys(users.tolist()) if u not in known]
        self.users_ = np.concatenate([self.users_, np.array(new, dtype=object)])
        self._grow_users(len(new))
        return self._user_index(users, warn=False)

    def _user_index(self, users, n: int | None = None, warn: bool = True) -> np.ndarray:
        """Map user ids to indices into ``users_``; unknown ids map to POPULATION (with a warning)."""
        if users is None:
            return np.full(n if n is not None else 0, POPULATION)
        users = np.asarray(users, dtype=object)
        if n is not None and users.shape != (n,):
            raise ValueError(f"'users' must have one id per row: shape ({n},), got {users.shape}")
        lookup = {u: i for i, u in enumerate(self.users_.tolist())}
        idx = np.array([lookup.get(u, POPULATION) for u in users.tolist()], dtype=np.int64)
        if warn and (idx == POPULATION).any():
            unknown = list(dict.fromkeys(users[idx == POPULATION].tolist()))
            warnings.warn(
                f"{len(unknown)} user(s) never seen in fit or adapt (e.g. {unknown[:3]}): "
                "using the population-level prediction; call adapt() with their pairs to personalise",
                UnknownUserWarning,
                stacklevel=3,
            )
        return idx

    def _predict_proba(self, a: np.ndarray, b: np.ndarray, user_idx: np.ndarray) -> np.ndarray:
        return sigmoid(self._reward(a, user_idx) - self._reward(b, user_idx))

    def _grow_users(self, n_new: int) -> None:
        """Allocate per-user parameters for ``n_new`` new users (initialised at the population)."""

    @abstractmethod
    def _fit(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray) -> None: ...

    @abstractmethod
    def _reward(self, x: np.ndarray, user_idx: np.ndarray) -> np.ndarray: ...

    def _adapt(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no per-user parameters to adapt")
