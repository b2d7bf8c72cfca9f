"""Claims about reward models from their held-out predictions, with the *user* as the unit.

Pairs of one user are not independent of each other (the same person, the same inferred group,
the same personal parameters), so every interval here resamples users (a cluster bootstrap):
a resample draws users with replacement and takes all the pairs of each drawn user.

=================================  ===============================================================
function                           claim
=================================  ===============================================================
:func:`metric_claim`               a model's metric (accuracy, worst-group accuracy, log-loss,
                                   ECE) vs a threshold, or its difference from a baseline model
                                   on the same pairs (paired: both are computed on each resample)
:func:`gap_change_claim`           a per-user gap (e.g. to the oracle) changes between two settings
                                   of the same users (paired over users)
:func:`ari_claim`                  a model's clustering of users agrees with the true groups
                                   beyond chance (adjusted Rand index > 0, a random assignment's
                                   expected value)
:func:`group_difference_claim`     a model's two groups of users differ in a covariate (age, the
                                   Big Five): the largest standardised difference, Bonferroni
                                   intervals over the covariates
:func:`every_proportion_claim`     every one of several proportions (e.g. a probe's accuracy per
                                   trait) is above a threshold (Wilson interval of the weakest)
:func:`few_shot_curve`             predictions for new users after ``adapt`` on their first ``k``
                                   pairs, for each ``k``; :meth:`FewShotCurve.gain_claim` says
                                   whether ``k`` pairs beat fewer
:func:`few_shot_curves`            the same for several models on the same new users, with
                                   reference predictions (the oracle); compares models at a ``k``
=================================  ===============================================================

:func:`user_bootstrap` is the resampling under all of them (any statistic of a set of rows);
:func:`per_user_difference` gives the per-user gaps that :func:`gap_change_claim` compares.

All take ``p_chosen`` arrays (shape (n,), the probability a model gives to the observed winner,
see :mod:`plural_kit.metrics`); the oracle is a model like any other (its true probabilities).
"""
from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from plural_kit import metrics, stats, viz
from plural_kit.claims import Claim, Side, claim_paired, claim_proportion
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary, frame_summary
from plural_kit.reward.base import PreferenceModel, UnknownUserWarning

__all__ = ["METRICS", "FewShotCurve", "FewShotCurves", "ari_claim", "as_pairs", "every_proportion_claim",
           "few_shot_curve", "few_shot_curves", "gap_change_claim", "group_difference_claim", "metric_claim",
           "per_user_difference", "user_bootstrap"]

METRICS = ("accuracy", "worst-group accuracy", "log-loss", "ECE")
_ECE_BINS = 10  # as metrics.expected_calibration_error


def _users(users, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distinct users (first-seen order) and each row's index into them."""
    users = np.asarray(users, dtype=object)
    if users.ndim != 1 or users.size == 0 or (n is not None and users.shape != (n,)):
        raise ValueError(f"'users' must name the user of every pair: shape ({n},), got {users.shape}")
    codes, ids = pd.factorize(users)
    return np.asarray(ids, dtype=object), codes


def _row_sums(metric: str, p: np.ndarray, group_codes: np.ndarray | None, n_groups: int) -> np.ndarray:
    """Per-row additive statistics (n, m) from which ``metric`` is a function of their column sums."""
    if metric == "accuracy":
        return np.c_[p > 0.5, np.ones_like(p)]
    if metric == "log-loss":  # the symmetrised log-loss of metrics.log_loss is mean(-log p)
        eps = np.finfo(np.float64).eps
        return np.c_[-np.log(np.clip(p, eps, 1 - eps)), np.ones_like(p)]
    if metric == "worst-group accuracy":
        S = np.zeros((p.size, 2 * n_groups))
        S[np.arange(p.size), group_codes] = p > 0.5
        S[np.arange(p.size), n_groups + group_codes] = 1.0
        return S
    # ECE: both symmetrised events of a pair, in the uniform bins of metrics.reliability_curve
    S = np.zeros((p.size, 3 * _ECE_BINS))
    edges = np.linspace(0.0, 1.0, _ECE_BINS + 1)[1:-1]
    rows = np.arange(p.size)
    for prob, label in ((p, 1.0), (1.0 - p, 0.0)):
        b = np.searchsorted(edges, prob)
        np.add.at(S, (rows, b), 1.0)
        np.add.at(S, (rows, _ECE_BINS + b), label)
        np.add.at(S, (rows, 2 * _ECE_BINS + b), prob)
    return S


def _from_sums(metric: str, s: np.ndarray) -> float:
    """``metric`` from the column sums ``s`` of :func:`_row_sums`."""
    if metric in ("accuracy", "log-loss"):
        return float(s[0] / s[1])
    if metric == "worst-group accuracy":
        k = s.size // 2
        hits, counts = s[:k], s[k:]
        present = counts > 0
        return float(np.min(hits[present] / counts[present]))
    counts, wins, probs = s[:_ECE_BINS], s[_ECE_BINS:2 * _ECE_BINS], s[2 * _ECE_BINS:]
    return float(np.abs(wins - probs).sum() / counts.sum())


def user_bootstrap(statistic: Callable[[np.ndarray], float], users, *, confidence: float = 0.95,
                   n_boot: int = 1000, seed: int = 0) -> stats.Interval:
    """``statistic(rows)`` on all rows, with a bootstrap interval that resamples users.

    ``statistic`` gets the row positions (ints) of a resample: all the pairs of each drawn user,
    a user drawn twice counted twice. ``users``: shape (n,), the user of each row.
    """
    ids, codes = _users(users)
    order = np.argsort(codes, kind="stable")
    rows = np.split(order, np.cumsum(np.bincount(codes, minlength=ids.size))[:-1])
    return stats.bootstrap_ci(np.arange(len(rows)), lambda idx: statistic(np.concatenate([rows[i] for i in idx])),
                              confidence=confidence, n_boot=n_boot, seed=seed)


def metric_claim(name: str, statement: str, p_chosen, users, *, baseline=None, metric: str = "accuracy",
                 groups=None, threshold: float = 0.0, side: Side = "greater", confidence: float = 0.95,
                 n_boot: int = 1000, seed: int = 0, details: dict | None = None) -> Claim:
    """``metric(p_chosen)`` — or ``metric(p_chosen) - metric(baseline)`` — vs ``threshold``.

    ``p_chosen``, ``baseline`` (optional), ``users`` and ``groups`` (needed by the worst-group
    accuracy): shape (n,), one entry per held-out pair; ``baseline`` is a second model's (or the
    oracle's) probabilities on the *same* pairs. ``metric``: one of :data:`METRICS`, computed as
    :mod:`plural_kit.metrics` does (pairs pooled; ECE on 10 uniform bins). The interval resamples
    users; with a baseline both metrics are computed on each resample (paired).
    """
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}; got {metric!r}")
    p = metrics._check_p(p_chosen)
    b = None if baseline is None else metrics._check_p(baseline)
    if b is not None and b.shape != p.shape:
        raise ValueError(f"'baseline' must be on the same pairs as 'p_chosen': shapes {b.shape} vs {p.shape}")
    ids, codes = _users(users, p.size)
    g_codes, n_groups = None, 0
    if metric == "worst-group accuracy":
        if groups is None:
            raise ValueError("the worst-group accuracy needs 'groups': one group per pair")
        g_codes, levels = pd.factorize(metrics._check_labels(groups, p.size, "groups"))
        n_groups = levels.size
    S = _row_sums(metric, p, g_codes, n_groups)
    if b is not None:
        S = np.c_[S, _row_sums(metric, b, g_codes, n_groups)]
    per_user = np.zeros((ids.size, S.shape[1]))
    np.add.at(per_user, codes, S)  # metrics are functions of sums over pairs: sum per user once
    m = S.shape[1] // (1 if b is None else 2)

    def statistic(idx: np.ndarray) -> float:
        s = per_user[idx].sum(axis=0)
        value = _from_sums(metric, s[:m])
        return value if b is None else value - _from_sums(metric, s[m:])

    iv = stats.bootstrap_ci(np.arange(ids.size), statistic, confidence=confidence, n_boot=n_boot, seed=seed)
    return Claim.from_interval(name, statement, iv, quantity=metric if b is None else f"{metric} difference",
                               threshold=threshold, side=side, method=f"bootstrap over {ids.size} users",
                               details=details)


def per_user_difference(p_chosen, baseline, users) -> pd.Series:
    """Each user's accuracy under ``p_chosen`` minus under ``baseline`` (same pairs): Series by user.

    For comparisons across two evaluation sets of the same users (e.g. a gap at two data
    sizes): align two such Series on the users and pass them to
    :func:`plural_kit.claims.claim_paired`.
    """
    a = metrics.per_user_accuracy(p_chosen, users)["accuracy"]
    return (a - metrics.per_user_accuracy(baseline, users)["accuracy"]).rename("accuracy difference")


def gap_change_claim(name: str, statement: str, gap: pd.Series, reference_gap: pd.Series, *,
                     threshold: float = 0.0, side: Side = "greater", **kwargs) -> Claim:
    """A per-user gap (:func:`per_user_difference`) minus the same users' gap in a reference
    setting, vs ``threshold``, paired over the users both have (mean of the per-user changes).

    ``kwargs``: ``confidence``, ``n_boot``, ``seed``, ``details``.
    """
    a, b = gap.align(reference_gap, join="inner")
    if a.size == 0:
        raise ValueError("the two gaps share no user")
    return claim_paired(name, statement, a.to_numpy(), b.to_numpy(), quantity="mean change of the gap",
                        threshold=threshold, side=side, method=f"paired bootstrap over {a.size} users", **kwargs)


def ari_claim(name: str, statement: str, true_groups: pd.Series, found_groups: pd.Series, *,
              confidence: float = 0.95, n_boot: int = 1000, seed: int = 0, details: dict | None = None) -> Claim:
    """Adjusted Rand index between a model's clusters of users and their true groups, vs 0.

    ``true_groups``, ``found_groups``: Series indexed by user id (aligned on the users of
    ``found_groups``). 0 is the expected ARI of a random assignment, 1 a perfect recovery; the
    interval resamples users.
    """
    truth = pd.Series(true_groups).reindex(found_groups.index)
    if truth.isna().any():
        raise ValueError(f"{int(truth.isna().sum())} user(s) of 'found_groups' have no true group")
    t, f = truth.to_numpy(), pd.Series(found_groups).to_numpy()
    iv = user_bootstrap(lambda rows: adjusted_rand_score(t[rows], f[rows]), np.asarray(found_groups.index),
                        confidence=confidence, n_boot=n_boot, seed=seed)
    return Claim.from_interval(name, statement, iv, quantity="ARI", threshold=0.0, side="greater",
                               method=f"bootstrap over {t.size} users", details=details)


def group_difference_claim(name: str, statement: str, found_groups: pd.Series, covariates, *,
                           confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claim:
    """A model's two groups of users differ in at least one of ``covariates``.

    ``found_groups``: Series user -> group (exactly two groups); ``covariates``: Series or
    DataFrame indexed by user (one column per covariate, e.g. age or the five domain scores),
    aligned on the users of ``found_groups``. Each covariate's difference of group means is in
    units of its standard deviation over those users, with a bootstrap interval (each group
    resampled on its own) at the Bonferroni level ``1 - (1 - confidence) / n_covariates``. The
    evidence is the covariate whose interval lies farthest from 0, oriented so that its estimate
    is positive (group labels are arbitrary): the claim holds when that interval excludes 0 —
    a two-sided test at family-wise level ``1 - confidence`` — and is otherwise not distinguishable.
    """
    frame = pd.DataFrame(covariates).reindex(found_groups.index)
    if frame.isna().any().any():
        raise ValueError(f"{int(frame.isna().any(axis=1).sum())} user(s) of 'found_groups' have no "
                         "(or a missing) covariate")
    labels = pd.unique(found_groups.to_numpy())
    if labels.size != 2:
        raise ValueError(f"group_difference_claim compares two groups; 'found_groups' has {labels.size}")
    sd = frame.std(ddof=1)
    if not (sd > 0).all():
        raise ValueError(f"covariates {list(sd.index[~(sd > 0)])} do not vary over these users")
    z, first = (frame - frame.mean()) / sd, (found_groups == labels[0]).to_numpy()
    level = 1 - (1 - stats._check_confidence(confidence)) / frame.shape[1]
    best = None
    for col in z.columns:
        iv = stats.difference_ci(z[col].to_numpy()[first], z[col].to_numpy()[~first], confidence=level,
                                 n_boot=n_boot, seed=seed)
        if iv.estimate < 0:
            iv = stats.Interval(-iv.estimate, -iv.ci_high, -iv.ci_low, iv.confidence)
        if best is None or iv.ci_low > best[1].ci_low:
            best = (col, iv)
    col, iv = best
    return Claim.from_interval(name, statement, iv, quantity="group difference (SD)", threshold=0.0,
                               method=f"bootstrap within {int(first.sum())} + {int((~first).sum())} users, "
                                      f"{iv.confidence:.1%} (Bonferroni over {frame.shape[1]})",
                               details={"largest": str(col)})


def every_proportion_claim(name: str, statement: str, hits: Mapping[str, tuple[int, int]], *,
                           threshold: float = 0.5, confidence: float = 0.95, label: str = "weakest") -> Claim:
    """Every proportion ``k / n`` in ``hits`` (``{key: (k, n)}``) is above ``threshold``.

    The evidence is the Wilson interval of the proportion with the lowest lower bound: the
    claim holds when even that one clears ``threshold``, and does not hold when that one lies
    wholly below it. ``details`` names it (``{label: key}``).
    """
    if not hits:
        raise ValueError("'hits' is empty: nothing to claim about")
    lows = {key: stats.wilson_interval(k, n, confidence=confidence).ci_low for key, (k, n) in hits.items()}
    weakest = min(lows, key=lows.get)
    k, n = hits[weakest]
    return claim_proportion(name, statement, k, n, quantity="proportion", threshold=threshold,
                            confidence=confidence, details={label: weakest, "of": len(hits)})


def as_pairs(pairs, name: str = "pairs") -> tuple:
    """``(chosen, rejected, users)`` arrays ((n, d), (n, d), (n,)) from such a tuple or from a data set
    with attributes ``X_chosen``, ``X_rejected``, ``users`` (e.g.
    :class:`~plural_kit.data.synthetic.SyntheticPreferences`)."""
    if all(hasattr(pairs, a) for a in ("X_chosen", "X_rejected", "users")):
        return pairs.X_chosen, pairs.X_rejected, pairs.users
    if isinstance(pairs, tuple) and len(pairs) == 3:
        return pairs
    raise TypeError(f"'{name}' must be (chosen, rejected, users) or a data set with X_chosen, X_rejected, users; "
                    f"got {type(pairs).__name__}")


# -- few-shot personalisation ------------------------------------------------------------------

def _shots_axis(ax, shots: Sequence[int]):
    """No empty symlog margin left of k = 0."""
    if min(shots) == 0:
        ax.set_xlim(-0.3, max(shots) * 1.25)
    return ax


@dataclass(frozen=True, repr=False)
class FewShotCurve(Result):
    """One model's predictions for new users after ``adapt`` on their first ``k`` pairs.

    ``shots``: the ``k`` values (0 = no own pairs: the population prediction); ``p_chosen``:
    ``{k: (n,) probabilities on the evaluation pairs}``; ``users``, ``groups``: (n,) the user
    (and true group, or None) of each evaluation pair; ``adapted``: the model adapted with the
    largest ``k`` (a copy; the model passed in is left as it was).
    """

    shots: tuple[int, ...]
    p_chosen: dict[int, np.ndarray]
    users: np.ndarray
    groups: np.ndarray | None
    adapted: PreferenceModel
    title = "Accuracy on new users' later pairs after adapting on their first k"

    def to_frame(self) -> pd.DataFrame:
        """Accuracy (and worst-group accuracy when groups are known) per ``k``: index ``shots``."""
        rows = {k: {"accuracy": metrics.accuracy(p),
                    **({} if self.groups is None else
                       {"worst group": metrics.worst_group_accuracy(p, self.groups)})}
                for k, p in self.p_chosen.items()}
        return pd.DataFrame(rows).T.rename_axis("shots")

    def table(self) -> pd.DataFrame:
        """The same as :meth:`to_frame`."""
        return self.to_frame()

    def plot(self, ax=None, y: str = "accuracy"):
        """``y`` (``"accuracy"`` or ``"worst group"``) over the number of own pairs."""
        return _shots_axis(viz.curve(self.to_frame().reset_index(), x="shots", y=y, logx=True, xticks=self.shots,
                                     xlabel="the new user's own pairs (k)", ylabel=f"{y} on their later pairs",
                                     ax=ax), self.shots)

    def _repr_fields(self) -> dict:
        return {"shots": list(self.shots), "users": int(pd.unique(self.users).size)}

    def gain_claim(self, name: str, statement: str, k: int, baseline_k: int = 0, **kwargs) -> Claim:
        """Accuracy with ``k`` own pairs minus with ``baseline_k``, paired over the new users, vs 0."""
        for shot in (k, baseline_k):
            if shot not in self.p_chosen:
                raise ValueError(f"k={shot} is not among the curve's shots {list(self.shots)}")
        details = {"k": k, "baseline k": baseline_k, **kwargs.pop("details", {})}
        return metric_claim(name, statement, self.p_chosen[k], self.users, baseline=self.p_chosen[baseline_k],
                            groups=self.groups, details=details, **kwargs)


def few_shot_curve(model: PreferenceModel, shots: Sequence[int], pool: tuple, evaluation: tuple,
                   groups=None) -> FewShotCurve:
    """Adapt a fitted ``model`` to new users on their first ``k`` pairs, for each ``k`` in ``shots``.

    ``pool``: ``(chosen, rejected, users)`` or a data set (:func:`as_pairs`) — the new users'
    adaptation pairs, each user's in the order they were given (the first ``k`` of each user are that user's ``k`` shots);
    ``evaluation``: ``(chosen, rejected, users)`` — their evaluation pairs; ``groups``: (n_eval,)
    true groups or None. Every ``k`` starts from a copy of the same trained model; with ``k = 0``
    the model gives its population prediction (the ``UnknownUserWarning`` is expected there and
    silenced).
    """
    shots = tuple(int(k) for k in shots)
    if not shots or min(shots) < 0:
        raise ValueError(f"shots must be a non-empty list of ints >= 0; got {list(shots)}")
    pool_c, pool_r, pool_u = (np.asarray(a) for a in as_pairs(pool, "pool"))
    rank = pd.Series(pool_u).groupby(pool_u, sort=False).cumcount().to_numpy()
    eval_c, eval_r, eval_u = as_pairs(evaluation, "evaluation")
    p_chosen, adapted, top = {}, model, max(shots)
    for k in shots:
        personal = copy.deepcopy(model)
        if k > 0:
            few = rank < k
            personal.adapt(pool_c[few], pool_r[few], pool_u[few])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownUserWarning)
            p_chosen[k] = personal.predict_proba(eval_c, eval_r, eval_u)
        if k == top:
            adapted = personal
    return FewShotCurve(shots, p_chosen, np.asarray(eval_u, dtype=object),
                        None if groups is None else np.asarray(groups), adapted)


@dataclass(frozen=True, repr=False)
class FewShotCurves(Result):
    """Few-shot curves of several models on the same new users, and reference predictions.

    ``curves``: ``{model: FewShotCurve}`` (same shots, same evaluation pairs); ``references``:
    ``{name: (n,) p_chosen}`` of models that need no own pairs (the oracle), drawn as lines.
    """

    curves: dict[str, FewShotCurve]
    references: dict[str, np.ndarray]
    title = "New users: accuracy after adapting on their first k pairs"

    def __getitem__(self, model: str) -> FewShotCurve:
        try:
            return self.curves[model]
        except KeyError:
            raise KeyError(f"no curve {model!r}; curves: {list(self.curves)}") from None

    @property
    def shots(self) -> tuple[int, ...]:
        return self._first().shots

    def _first(self) -> FewShotCurve:
        return next(iter(self.curves.values()))

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per model and ``k`` (columns ``model``, ``shots``, ``accuracy``, ...)."""
        return pd.concat({m: c.to_frame() for m, c in self.curves.items()}, names=["model"]).reset_index()

    def wide(self, y: str = "accuracy") -> pd.DataFrame:
        """``y`` by ``shots`` (rows) and model (columns), references as constant columns."""
        out = self.to_frame().pivot(index="shots", columns="model", values=y)[list(self.curves)]
        for name, value in self.reference_values(y).items():
            out[name] = value
        return out

    def reference_values(self, y: str = "accuracy") -> dict[str, float]:
        """Each reference's ``y`` on the evaluation pairs."""
        groups = self._first().groups
        if y == "accuracy":
            return {n: metrics.accuracy(p) for n, p in self.references.items()}
        if y == "worst group" and groups is not None:
            return {n: metrics.worst_group_accuracy(p, groups) for n, p in self.references.items()}
        raise ValueError(f"y must be 'accuracy' or (with groups) 'worst group'; got {y!r}")

    def summary(self) -> Summary:
        return frame_summary(self.title, self.wide())

    def to_dict(self) -> dict:
        """The long table as lists (``{"model": [...], "shots": [...], ...}``) and the references."""
        return jsonable({**self.to_frame().to_dict(orient="list"),
                         "references": {y: self.reference_values(y) for y in self.to_frame().columns[2:]}})

    def plot(self, ax=None, y: str = "accuracy", ylim: tuple[float, float] | None = None, title: str | None = None):
        """``y`` over the number of own pairs, one line per model, references as horizontal lines."""
        return _shots_axis(viz.curve(self.to_frame(), x="shots", y=y, hue="model",
                                     references=self.reference_values(y), logx=True, xticks=self.shots,
                                     xlabel="the new user's own pairs (k)", ylabel=f"{y} on their later pairs",
                                     ylim=ylim, title=title, ax=ax), self.shots)

    def plot_all(self, ys: Sequence[str] = ("accuracy", "worst group"), ylim: tuple[float, float] | None = (0.0, 1.02),
                 figsize: tuple[float, float] | None = None) -> np.ndarray:
        """:meth:`plot` of each of ``ys`` side by side (the legend on the first); returns the axes."""
        import matplotlib.pyplot as plt

        axes = np.atleast_1d(plt.subplots(1, len(ys), figsize=figsize or (5.5 * len(ys), 3.6))[1])
        for i, (ax, y) in enumerate(zip(axes, ys)):
            self.plot(ax=ax, y=y, ylim=ylim, title=y)
            if i and ax.get_legend() is not None:
                ax.get_legend().remove()
        return axes

    def _repr_fields(self) -> dict:
        return {"models": list(self.curves), "shots": list(self.shots)}

    def _p(self, name: str, k: int) -> np.ndarray:
        if name in self.references:
            return self.references[name]
        curve = self[name]
        if k not in curve.p_chosen:
            raise ValueError(f"k={k} is not among the curves' shots {list(curve.shots)}")
        return curve.p_chosen[k]

    def gain_claim(self, name: str, statement: str, model: str, k: int, baseline_k: int = 0, **kwargs) -> Claim:
        """:meth:`FewShotCurve.gain_claim` of ``model``'s curve."""
        return self[model].gain_claim(name, statement, k, baseline_k, **kwargs)

    def claim(self, name: str, statement: str, model: str, baseline: str, k: int, **kwargs) -> Claim:
        """``model`` minus ``baseline`` (curve or reference names) with ``k`` own pairs, over the new users.

        ``kwargs`` go to :func:`metric_claim` (``metric``, ``threshold``, ``side``, ...).
        """
        first = self._first()
        details = {"k": k, **kwargs.pop("details", {})}
        return metric_claim(name, statement, self._p(model, k), first.users, baseline=self._p(baseline, k),
                            groups=first.groups, details=details, **kwargs)


def few_shot_curves(models: Mapping[str, PreferenceModel], shots: Sequence[int], pool: tuple, evaluation: tuple,
                    groups=None, references: Mapping[str, np.ndarray] | None = None) -> FewShotCurves:
    """:func:`few_shot_curve` for each of ``models`` (``{name: fitted model}``) on the same pairs.

    ``pool``, ``evaluation``: ``(chosen, rejected, users)`` or a data set with ``X_chosen``,
    ``X_rejected``, ``users`` (:func:`as_pairs`).
    ``references``: ``{name: (n_eval,) p_chosen}`` on the evaluation pairs (e.g. the oracle's true
    probabilities).
    """
    if not models:
        raise ValueError("'models' is empty: nothing to adapt")
    curves = {name: few_shot_curve(m, shots, pool, evaluation, groups) for name, m in models.items()}
    n = len(curves[next(iter(curves))].users)
    refs = {name: metrics._check_p(p) for name, p in (references or {}).items()}
    bad = [name for name, p in refs.items() if p.shape != (n,)]
    if bad:
        raise ValueError(f"references {bad} must be on the {n} evaluation pairs")
    return FewShotCurves(curves, refs)
