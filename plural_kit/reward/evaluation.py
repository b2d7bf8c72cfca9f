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
:func:`every_proportion_claim`     every one of several proportions (e.g. a probe's accuracy per
                                   trait) is above a threshold (Wilson interval of the weakest)
:func:`few_shot_curve`             predictions for new users after ``adapt`` on their first ``k``
                                   pairs, for each ``k``; :meth:`FewShotCurve.gain_claim` says
                                   whether ``k`` pairs beat fewer
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

from plural_kit import metrics, stats
from plural_kit.claims import Claim, Side, claim_paired, claim_proportion
from plural_kit.reward.base import PreferenceModel, UnknownUserWarning

__all__ = ["METRICS", "FewShotCurve", "ari_claim", "every_proportion_claim", "few_shot_curve", "gap_change_claim",
           "metric_claim", "per_user_difference", "user_bootstrap"]

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


# -- few-shot personalisation ------------------------------------------------------------------

@dataclass(frozen=True)
class FewShotCurve:
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

    def table(self) -> pd.DataFrame:
        """Accuracy (and worst-group accuracy when groups are known) per ``k``: index ``shots``."""
        rows = {k: {"accuracy": metrics.accuracy(p),
                    **({} if self.groups is None else
                       {"worst group": metrics.worst_group_accuracy(p, self.groups)})}
                for k, p in self.p_chosen.items()}
        return pd.DataFrame(rows).T.rename_axis("shots")

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

    ``pool``: ``(chosen, rejected, users)`` — the new users' adaptation pairs, each user's in
    the order they were given (the first ``k`` of each user are that user's ``k`` shots);
    ``evaluation``: ``(chosen, rejected, users)`` — their evaluation pairs; ``groups``: (n_eval,)
    true groups or None. Every ``k`` starts from a copy of the same trained model; with ``k = 0``
    the model gives its population prediction (the ``UnknownUserWarning`` is expected there and
    silenced).
    """
    shots = tuple(int(k) for k in shots)
    if not shots or min(shots) < 0:
        raise ValueError(f"shots must be a non-empty list of ints >= 0; got {list(shots)}")
    pool_c, pool_r, pool_u = (np.asarray(a) for a in pool)
    rank = pd.Series(pool_u).groupby(pool_u, sort=False).cumcount().to_numpy()
    eval_c, eval_r, eval_u = evaluation
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
