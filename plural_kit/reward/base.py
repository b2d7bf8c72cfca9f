"""The one API every reward-model fitter shares (scikit-learn conventions).

A fitter works on feature arrays: ``chosen`` and ``rejected`` of shape (n, d) (float),
optionally ``users`` of shape (n,) naming who judged each pair and, for a model that reads
the context (``_uses_prompts``: MiCRo's router), ``prompts`` of shape (n, d_p). Subclasses
implement ``_fit``, ``_reward`` (per-user reward on known-user indices, -1 = population),
``_adapt`` and ``_user_representation``; they may override ``_predict_proba`` when the pair
probability is not ``sigmoid(r(a) - r(b))`` (e.g. mixtures average over components). A model
with ``_uses_prompts`` gets ``prompts=`` ((n, d_p) array, or None) in every hook.

Parameters are checked by scikit-learn's ``_parameter_constraints`` when ``fit`` starts (a bad
value raises ``InvalidParameterError``, a ``ValueError`` naming the parameter).

Every ``fit`` and ``adapt`` ends with one shared check of what it produced
(:meth:`PreferenceModel._check_result`): a fitted parameter that is NaN or infinite, or a
prediction on the training pairs that is not a finite probability, raises
:class:`FitFailedError` and leaves the model unfitted (``fit``) or as it was (``adapt``); a
degenerate but usable solution that a fitter detects (``_degeneracies``: separable data with
no penalty, a PAL temperature that collapsed) gives a ``ConvergenceWarning`` naming the cause
and the fix. A fit never returns non-finite or degenerate parameters silently.

Units: a fitter with ``_standardise`` (the pluralistic ones: MixtureBT, PAL, VPL, MiCRo) works
on standardised features, ``(x - feature_mean_) / feature_scale_`` with one scalar scale (the
root-mean-square deviation of the training features; prompts get their own ``prompt_mean_`` and
``prompt_scale_``), so its predictions do not depend on the features' units or offset (columns
whose spreads differ by over 1,000x give a ``FeatureScaleWarning``: different units per column
call for per-column standardisation first): their
penalties, initialisations and learning rates assume unit scale, and without this a user who feeds
unit-norm sentence embeddings (entries near 0.05) got one population BT back. One scalar keeps
the features' geometry (PCA components keep their relative variances). Fitted parameters are in
standardised units. BradleyTerry is linear in raw units (its weights read as statsmodels'); only its
ridge penalty ``alpha`` depends on the units, as in scikit-learn's LogisticRegression.

User ids are compared as given; ids of different types that would be confused (``1``,
``1.0``, ``True``, ``"1"``) raise a ``ValueError`` naming them
(:func:`plural_kit.data.schema.check_user_ids`).

Model selection: ``fit``, ``score`` and ``predict_proba`` request ``users`` and ``prompts``
through scikit-learn's metadata routing, so with ``sklearn.set_config(enable_metadata_routing=True)``::

    GridSearchCV(MixtureBT(), {"n_components": [1, 2]}, cv=KFold(5, shuffle=True)).fit(
        X_chosen, X_rejected, users=users)

fits and scores every split with its users (``X_rejected`` travels as scikit-learn's ``y``;
a shuffled ``KFold`` keeps every user in both sides; unshuffled folds of data sorted by user
hold out whole users, which then get the population prediction with an
``UnknownUserWarning``). Without routing scikit-learn passes ``users`` to ``fit`` only;
``score`` without ``users`` on a pluralistic model fitted with users raises a ``ValueError``
naming that fix instead of silently scoring the population prediction.
"""
from __future__ import annotations

import copy
import warnings
from abc import abstractmethod
from numbers import Integral
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import torch
from numpy.typing import ArrayLike
from scipy.special import expit
from sklearn.base import BaseEstimator, _fit_context
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import metadata_routing
from sklearn.utils.validation import check_is_fitted

from plural_kit.data.schema import check_user_ids
from plural_kit.metrics import accuracy

POPULATION = -1  # user index meaning "no known user: predict for the population"


_CHECK_ROWS = 2048  # training pairs predicted by the post-fit check
_KNOWN = " with the ids the model knows (users_)"


class UnknownUserWarning(UserWarning):
    """A user never seen in ``fit`` nor ``adapt`` got the population-level prediction."""


class FitFailedError(RuntimeError):
    """``fit`` or ``adapt`` produced non-finite parameters or predictions; the message names them.

    After a failed ``fit`` the model is unfitted; after a failed ``adapt`` it is as it was.
    """


def check_features(x, name: str, n_features: int | None = None) -> np.ndarray:
    """Return ``x`` as a float64 array of shape (n, d); raise ValueError naming ``name`` otherwise."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"'{name}' must be a 2-D array of shape (n_pairs, n_features); got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError(f"'{name}' is empty (0 rows)")
    # column sums first (one vectorised pass; NaN and inf propagate), the exact check only if one is not finite
    if not np.isfinite(arr.sum(axis=0)).all() and not np.isfinite(arr).all():
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
    # the first rows first: the full comparison only when they are equal
    if np.array_equal(chosen[:1], rejected[:1]) and np.array_equal(chosen, rejected):
        raise ValueError(
            "every pair has 'chosen' equal to 'rejected': the pairs carry no preference (features of the same "
            "item on both sides? check how the features were looked up)"
        )
    if users is not None:
        users = np.asarray(users, dtype=object)
        if users.shape != (chosen.shape[0],):
            raise ValueError(f"'users' must have one id per pair: shape ({chosen.shape[0]},), got {users.shape}")
        if any(u is None or (isinstance(u, float) and np.isnan(u)) for u in users):
            raise ValueError("'users' contains missing ids (None/NaN)")
        check_user_ids(users.tolist())
    return chosen, rejected, users


_CHUNK_ROWS = 8192  # rows per block of the standardisation pass (bounded temporaries)


def _location_scale(*arrays: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """Per-feature mean (d,), one scale (the root-mean-square deviation from the mean; 1.0 if all
    equal) and each column's standard deviation (d,), in two passes over row blocks (no copy of
    the data; features near 1e300 are divided by their largest deviation before squaring)."""
    n = sum(len(a) for a in arrays)
    mean = sum(a.sum(axis=0) for a in arrays) / n
    top = max(float(np.maximum(np.abs(a.max(axis=0) - mean), np.abs(a.min(axis=0) - mean)).max()) for a in arrays)
    if not (top > 0 and np.isfinite(top)):
        return mean, 1.0, np.zeros_like(mean)
    sq = np.zeros_like(mean)
    for a in arrays:
        for start in range(0, len(a), _CHUNK_ROWS):
            d = (a[start:start + _CHUNK_ROWS] - mean) / top
            sq += np.einsum("ij,ij->j", d, d)
    scale = top * float(np.sqrt(sq.sum() / (n * sq.size)))
    return mean, (scale if scale > 0 else 1.0), top * np.sqrt(sq / n)


#: columns whose spreads differ by more than this factor are taken to be in different units
_MIXED_UNITS = 1e3


class FeatureScaleWarning(UserWarning):
    """The feature columns of a standardising fitter are on very different scales (different units?)."""


def _warn_mixed_units(spread: np.ndarray, name: str) -> None:
    """One scale keeps the features' geometry, so a column 1,000x wider than another drowns it: say
    so. ``spread``: each column's standard deviation (d,)."""
    live = spread[spread > 0]
    if live.size > 1 and live.max() > _MIXED_UNITS * live.min():
        wide, narrow = int(np.argmax(np.where(spread > 0, spread, -np.inf))), int(
            np.argmin(np.where(spread > 0, spread, np.inf)))
        warnings.warn(
            f"{name}.fit: feature columns differ in spread by {live.max() / live.min():.3g}x (column {wide}: "
            f"{spread[wide]:.3g}, column {narrow}: {spread[narrow]:.3g}). {name} standardises with one scale for "
            "all columns, so the narrow ones hardly count. If they are in different units, standardise each "
            "column first (sklearn.preprocessing.StandardScaler fitted on the training items).",
            FeatureScaleWarning, stacklevel=4,
        )


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
    """Numerically stable logistic function (:func:`scipy.special.expit`)."""
    return expit(z)


_UNUSED = metadata_routing.UNUSED
_ROUTED = {"users": True, "prompts": True}


class PreferenceModel(BaseEstimator):
    """Base class: ``fit`` / ``reward`` / ``predict_proba`` / ``score`` / ``adapt``, per-user
    ``user_representation`` and ``predict_groups``.

    Fitted attributes set here: ``n_features_in_``, ``users_`` (array of the user ids known to
    the model, fitted or adapted, in index order) and, for a model that reads prompts,
    ``n_prompt_features_`` (0 when fitted without prompts).
    """

    _parameter_constraints: ClassVar[dict[str, list]] = {}
    #: whether predictions depend on the user (score without users is refused after fitting with users)
    _pluralistic: ClassVar[bool] = False
    #: whether the model reads prompt (context) features
    _uses_prompts: ClassVar[bool] = False
    #: whether a row of ``user_representation()`` is a set of group weights (argmax = the group)
    _group_weights: ClassVar[bool] = False
    #: whether the hooks see standardised features (``feature_mean_``, ``feature_scale_``; see Units)
    _standardise: ClassVar[bool] = False

    # metadata routing: users and prompts reach fit, score and predict_proba inside model selection
    __metadata_request__fit = {"chosen": _UNUSED, "rejected": _UNUSED, **_ROUTED}
    __metadata_request__score = {"chosen": _UNUSED, "rejected": _UNUSED, **_ROUTED}
    __metadata_request__predict_proba = {"a": _UNUSED, "b": _UNUSED, **_ROUTED}

    # ---- public API ---------------------------------------------------------------
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(
        self, chosen: ArrayLike, rejected: ArrayLike, users: ArrayLike | None = None, prompts: ArrayLike | None = None
    ) -> Self:
        """Fit on pairs: ``chosen``/``rejected`` (n, d) floats, ``users`` (n,) ids, ``prompts`` (n, d_p)."""
        chosen, rejected, users = check_pairs(chosen, rejected, users)
        if self._uses_prompts:
            self.n_prompt_features_ = 0
        prompts = self._check_prompts(prompts, chosen.shape[0], fitting=True)
        user_idx = self._set_users(users, chosen.shape[0])
        self.n_features_in_ = chosen.shape[1]
        if self._standardise:
            self.feature_mean_, self.feature_scale_, spread = _location_scale(chosen, rejected)
            _warn_mixed_units(spread, type(self).__name__)
            chosen, rejected = self._in_units(chosen), self._in_units(rejected)
            if prompts is not None:
                self.prompt_mean_, self.prompt_scale_, _ = _location_scale(prompts)
        prompts = self._prompts_in_units(prompts)
        kw = self._prompt_kw(prompts)
        try:
            self._fit(chosen, rejected, user_idx, **kw)
            self._check_result(chosen, rejected, user_idx, "fit", **kw)
        except BaseException:
            self._unfit()  # a failed fit never leaves the model looking fitted
            raise
        return self

    def reward(self, x: ArrayLike, users: ArrayLike | None = None, prompts: ArrayLike | None = None) -> np.ndarray:
        """Reward of each row of ``x`` (n, d) for ``users`` (n,) (population if None); shape (n,)."""
        check_is_fitted(self, "n_features_in_")
        x = check_features(x, "x", self.n_features_in_)
        n = x.shape[0]
        kw = self._prompt_kw(self._prompts_in_units(self._check_prompts(prompts, n)))
        return self._reward(self._in_units(x), self._user_index(users, n=n), **kw)

    def predict_proba(
        self, a: ArrayLike, b: ArrayLike, users: ArrayLike | None = None, prompts: ArrayLike | None = None
    ) -> np.ndarray:
        """P(a preferred to b) for each row; shape (n,)."""
        check_is_fitted(self, "n_features_in_")
        a, b, users = check_pairs(a, b, users, self.n_features_in_)
        n = a.shape[0]
        kw = self._prompt_kw(self._prompts_in_units(self._check_prompts(prompts, n)))
        return self._predict_proba(self._in_units(a), self._in_units(b), self._user_index(users, n=n), **kw)

    def score(
        self, chosen: ArrayLike, rejected: ArrayLike, users: ArrayLike | None = None, prompts: ArrayLike | None = None
    ) -> float:
        """Fraction of pairs ranked correctly (P(chosen > rejected) > 0.5).

        Raises ValueError when ``users`` is None on a pluralistic model that knows users: that
        score would rate the population prediction (the silent trap of model selection without
        metadata routing).
        """
        check_is_fitted(self, "n_features_in_")
        if users is None and self._pluralistic and len(self.users_):
            name = type(self).__name__
            raise ValueError(
                f"{name} was fitted with users, but score() got no 'users': it would rate the population "
                "prediction, not the users' own. Pass users=... (one id per pair). In GridSearchCV or "
                "cross_validate, turn on metadata routing so that 'users' reaches score: "
                "sklearn.set_config(enable_metadata_routing=True). For the population accuracy on purpose, "
                "use plural_kit.metrics.accuracy(model.predict_proba(chosen, rejected))"
            )
        return accuracy(self.predict_proba(chosen, rejected, users, prompts))

    def adapt(
        self, chosen: ArrayLike, rejected: ArrayLike, users: ArrayLike, prompts: ArrayLike | None = None
    ) -> Self:
        """Fit only the given users' own parameters from their pairs (shared parameters frozen).

        New users are added to ``users_``; known users are re-estimated from these pairs.
        """
        check_is_fitted(self, "n_features_in_")
        self._validate_params()
        if users is None:
            raise ValueError("'adapt' needs 'users': the id of the user who judged each pair")
        chosen, rejected, users = check_pairs(chosen, rejected, users, self.n_features_in_)
        chosen, rejected = self._in_units(chosen), self._in_units(rejected)
        kw = self._prompt_kw(self._prompts_in_units(self._check_prompts(prompts, chosen.shape[0])))
        before = copy.deepcopy(vars(self))
        try:
            user_idx = self._add_users(users)
            self._adapt(chosen, rejected, user_idx, **kw)
            self._check_result(chosen, rejected, user_idx, "adapt", **kw)
        except BaseException:
            vars(self).clear()  # a failed adapt leaves the model as it was
            vars(self).update(before)
            raise
        return self

    def user_representation(self) -> pd.DataFrame:
        """Each known user's own parameters: DataFrame (n_users x dim) indexed by user id (a copy)."""
        check_is_fitted(self, "n_features_in_")
        return self._user_representation().copy()

    def predict_groups(self, n_groups: int | None = None) -> pd.Series:
        """A group for every known user: Series of ints indexed by user id, named ``group``.

        ``n_groups=None``: the largest weight of the user's representation (mixtures, PAL,
        MiCRo). ``n_groups=K``: k-means with K clusters on the representation, seeded by
        ``random_state`` (required where the representation is not a set of group weights: VPL).
        """
        rep = self.user_representation()
        name = type(self).__name__
        if len(rep) == 0:
            raise ValueError(f"{name} knows no users: fit it with users=... (or adapt it) first")
        if n_groups is None:
            if not self._group_weights:
                raise ValueError(
                    f"{name}'s user representation is not a set of group weights: pass n_groups=K "
                    "to cluster it with k-means"
                )
            labels = rep.to_numpy().argmax(axis=1)
        else:
            if not isinstance(n_groups, Integral) or not 1 <= n_groups <= len(rep):
                raise ValueError(f"n_groups must be an integer in [1, {len(rep)}] (the known users); got {n_groups!r}")
            labels = KMeans(n_clusters=int(n_groups), n_init=10, random_state=self.random_state).fit_predict(
                rep.to_numpy()
            )
        return pd.Series(labels, index=rep.index.rename("user"), name="group")

    # ---- the shared post-fit check ---------------------------------------------------
    def _check_result(self, chosen, rejected, user_idx, stage: str, **kw) -> None:
        """After ``fit``/``adapt``: raise :class:`FitFailedError` on non-finite parameters or
        predictions; warn (``ConvergenceWarning``) for each degeneracy the fitter reports."""
        name = type(self).__name__
        problems = [f"{attr} has {bad} non-finite value(s)" for attr, bad in self._non_finite_attributes()]
        if not problems:
            rows = slice(0, _CHECK_ROWS)
            part = {k: (v if v is None else v[rows]) for k, v in kw.items()}
            with np.errstate(all="ignore"):
                p = np.asarray(self._predict_proba(chosen[rows], rejected[rows], user_idx[rows], **part), float)
            bad = ~(np.isfinite(p) & (p >= 0) & (p <= 1))
            if bad.any():
                problems.append(
                    f"{int(bad.sum())} of {p.size} predictions on the training pairs are not probabilities "
                    f"(e.g. {p[bad][:3].tolist()})"
                )
        if problems:
            hint = self._failure_hint()
            raise FitFailedError(
                f"{name}.{stage} failed: {'; '.join(problems)}. "
                f"{hint or 'Try a larger penalty (alpha), fewer iterations or standardised features.'}"
                + (" The model is left unfitted." if stage == "fit" else " The model is left as it was.")
            )
        for message in self._degeneracies(chosen, rejected, user_idx, stage, **kw):
            # user code -> (fit's sklearn wrapper) -> fit/adapt -> here
            warnings.warn(f"{name}.{stage}: {message}", ConvergenceWarning, stacklevel=4 if stage == "fit" else 3)

    def _non_finite_attributes(self):
        """(name, count) of each fitted float attribute (``*_`` arrays, frames, floats, modules) with NaN/inf."""
        for attr, value in vars(self).items():
            if not attr.endswith("_") or attr.startswith("__"):
                continue
            if isinstance(value, torch.nn.Module):
                bad = sum(int((~torch.isfinite(t)).sum()) for t in value.state_dict().values() if t.is_floating_point())
            elif isinstance(value, pd.DataFrame):
                num = value.select_dtypes("number").to_numpy(dtype=float)
                bad = int((~np.isfinite(num)).sum())
            elif isinstance(value, (float, np.floating, np.ndarray)):
                arr = np.asarray(value)
                if not np.issubdtype(arr.dtype, np.floating):
                    continue
                bad = int((~np.isfinite(arr)).sum())
            else:
                continue
            if bad:
                yield attr, bad

    def _degeneracies(self, chosen, rejected, user_idx, stage: str, **kw) -> list[str]:
        """Messages (cause and fix) for a finite but degenerate solution; subclasses override."""
        return []

    def _failure_hint(self) -> str:
        """The likely cause and fix of non-finite parameters, for the error message; subclasses override."""
        return ""

    def _unfit(self) -> None:
        """Remove every fitted attribute, so that ``check_is_fitted`` fails again."""
        for attr in [a for a in vars(self) if a.endswith("_") and not a.startswith("__")]:
            delattr(self, attr)

    # ---- helpers for subclasses -----------------------------------------------------
    def _in_units(self, x: np.ndarray) -> np.ndarray:
        """Features as the hooks see them: standardised where ``_standardise``, else unchanged."""
        if not self._standardise:
            return x
        out = np.subtract(x, self.feature_mean_)  # the one copy; divided in place
        out /= self.feature_scale_
        return out

    def _prompts_in_units(self, prompts: np.ndarray | None) -> np.ndarray | None:
        if prompts is None or not self._standardise:
            return prompts
        return (prompts - self.prompt_mean_) / self.prompt_scale_

    def _check_prompts(self, prompts, n: int, fitting: bool = False) -> np.ndarray | None:
        """Prompt features as (n, d_p) floats, or None; raise ValueError naming the mismatch."""
        name = type(self).__name__
        fitted_with = getattr(self, "n_prompt_features_", 0)
        if prompts is None:
            if not fitting and fitted_with > 0:
                raise ValueError(
                    f"this {name} was fitted with prompt features ({fitted_with} columns): pass prompts=(n, d_p)"
                )
            return None
        if not self._uses_prompts:
            raise ValueError(
                f"{name} does not read prompt features: call it with prompts=None (MiCRo routes on prompts)"
            )
        prompts = check_features(prompts, "prompts", None if fitting else (fitted_with or None))
        if not fitting and fitted_with == 0:
            raise ValueError(f"this {name} was fitted without prompts: call it with prompts=None")
        if prompts.shape[0] != n:
            raise ValueError(f"'prompts' must have one row per pair: {n} rows expected, got {prompts.shape[0]}")
        if fitting:
            self.n_prompt_features_ = prompts.shape[1]
        return prompts

    def _prompt_kw(self, prompts: np.ndarray | None) -> dict[str, Any]:
        """Keyword arguments of the hooks: ``prompts`` for a model that reads them, nothing otherwise."""
        return {"prompts": prompts} if self._uses_prompts else {}

    def _set_users(self, users, n: int) -> np.ndarray:
        """Record the users of ``fit`` in ``users_`` (first-seen order); return each pair's index."""
        if users is None:
            self.users_ = np.array([], dtype=object)
            return np.full(n, POPULATION)
        self.users_ = np.array(list(dict.fromkeys(users.tolist())), dtype=object)
        return self._user_index(users, warn=False)

    def _add_users(self, users) -> np.ndarray:
        """Append the users of ``adapt`` not yet known (allocating their parameters); return each pair's index."""
        check_user_ids(users.tolist(), known=self.users_.tolist(), context=_KNOWN)
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
        if warn:  # (fit and adapt checked their ids already)
            check_user_ids(users.tolist(), known=self.users_.tolist(), context=_KNOWN)
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

    @abstractmethod
    def _user_representation(self) -> pd.DataFrame:
        """(n_users x dim) DataFrame indexed by user id, in the order of ``users_``."""

    def _adapt(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no per-user parameters to adapt")
