"""Intervals and tests with one vocabulary: ``confidence``, ``n_boot``, ``seed``; ``ci_low``/``ci_high``.

=============================  =================================================================
function                       what it estimates
=============================  =================================================================
:func:`bootstrap_ci`           any statistic of one sample (or of rows resampled together)
:func:`paired_difference`      ``statistic(a - b)`` over paired observations (same items, two
                               conditions), bootstrap over the pairs
:func:`difference_ci`          ``statistic(a) - statistic(b)`` for two independent samples
:func:`wilson_interval`        a proportion ``k / n`` (Wilson score interval, statsmodels)
:func:`permutation_test`       p-value of ``statistic(a) - statistic(b)`` under exchangeability
:func:`matrix_permutation_test` p-value of a statistic of two matrices over the same objects
                               (Mantel: rows and columns of one permuted together)
:func:`stratified_bootstrap`   any statistic of several samples, each resampled within its strata
                               (items within foundations, raters within countries) in the same
                               rounds; :func:`bootstrap_replicates` gives the replicates and
                               :func:`percentile_interval` turns replicates into an interval
=============================  =================================================================

Every interval is an :class:`Interval` ``(estimate, ci_low, ci_high, confidence)``. Bootstrap
intervals are scipy's percentile bootstrap with a seeded generator, so the same seed gives the
same interval. A percentile interval can miss the estimate of a biased statistic (a minimum,
a worst group); it is then widened to reach the estimate, the conservative choice for a claim.
A sample of one value has no interval (``nan``); a constant sample has a degenerate one
(``(x, x, x)``).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from scipy import stats as _st
from statsmodels.stats.proportion import proportion_confint

__all__ = ["Interval", "bootstrap_ci", "bootstrap_indices", "bootstrap_replicates", "difference_ci",
           "matrix_permutation_test", "paired_difference", "percentile_interval", "permutation_test", "stratified_bootstrap",
           "wilson_interval"]


class Interval(NamedTuple):
    """An estimate with its confidence interval at level ``confidence``."""

    estimate: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95

    def to_dict(self) -> dict:
        return self._asdict()


def _check_confidence(confidence: float) -> float:
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95; got {confidence!r}")
    return float(confidence)


def _sample(values, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0 or arr.shape[0] == 0:
        raise ValueError(f"{name} is empty: an interval needs at least one value")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} has NaN or infinite values ({int((~np.isfinite(arr)).sum())} of {arr.size})")
    return arr


def bootstrap_ci(values, statistic: Callable[..., float] = np.mean, *, confidence: float = 0.95,
                 n_boot: int = 1000, seed: int = 0) -> Interval:
    """Percentile bootstrap interval of ``statistic(values)``.

    ``values``: one array (n, ...) or a tuple of arrays resampled together by row (paired), in
    which case ``statistic(*arrays)`` is called on each resample, e.g.
    ``bootstrap_ci((p_chosen, groups), worst_group_accuracy)``. Numeric arrays must be finite.
    """
    confidence = _check_confidence(confidence)
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive number of resamples; got {n_boot!r}")
    data = values if isinstance(values, tuple) else (values,)
    data = tuple(np.asarray(v) for v in data)
    n = data[0].shape[0] if data[0].ndim else 0
    if n == 0:
        raise ValueError("bootstrap_ci got no values")
    if any(v.ndim == 0 or v.shape[0] != n for v in data):
        raise ValueError(f"all arrays passed to bootstrap_ci must have the same length; got "
                         f"{[v.shape[0] if v.ndim else 0 for v in data]}")
    for v in data:
        if v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
            raise ValueError("bootstrap_ci got NaN or infinite values")
    estimate = float(statistic(*data))
    if n < 2:
        return Interval(estimate, float("nan"), float("nan"), confidence)
    if len(data) == 1 and np.all(data[0] == data[0][0]):
        return Interval(estimate, estimate, estimate, confidence)
    res = _st.bootstrap(data, lambda *arrs: statistic(*arrs), n_resamples=int(n_boot),
                        confidence_level=confidence, method="percentile", paired=True,
                        vectorized=False, rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(low) and np.isfinite(high)):  # every resample gave the same value
        low = high = estimate
    return Interval(estimate, min(low, estimate), max(high, estimate), confidence)


def paired_difference(a, b, statistic: Callable[[np.ndarray], float] = np.mean, *,
                      confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Interval:
    """``statistic(a - b)`` with a bootstrap interval over the pairs (``a``, ``b``: shape (n,))."""
    a, b = _sample(a, "a"), _sample(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"paired_difference needs one value of each condition per pair; got shapes "
                         f"{a.shape} and {b.shape}")
    return bootstrap_ci(a - b, statistic, confidence=confidence, n_boot=n_boot, seed=seed)


def difference_ci(a, b, statistic: Callable[[np.ndarray], float] = np.mean, *,
                  confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Interval:
    """``statistic(a) - statistic(b)`` for independent samples, each resampled on its own."""
    confidence = _check_confidence(confidence)
    a, b = _sample(a, "a"), _sample(b, "b")
    estimate = float(statistic(a) - statistic(b))
    if a.shape[0] < 2 or b.shape[0] < 2:
        return Interval(estimate, float("nan"), float("nan"), confidence)
    if np.all(a == a[0]) and np.all(b == b[0]):
        return Interval(estimate, estimate, estimate, confidence)
    res = _st.bootstrap((a, b), lambda x, y: statistic(x) - statistic(y), n_resamples=int(n_boot),
                        confidence_level=confidence, method="percentile", paired=False,
                        vectorized=False, rng=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    return Interval(estimate, min(low, estimate), max(high, estimate), confidence)


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> Interval:
    """Wilson score interval of the proportion ``k / n`` (``0 <= k <= n``, ``n >= 1``)."""
    confidence = _check_confidence(confidence)
    k, n = int(k), int(n)
    if n <= 0:
        raise ValueError("a confidence interval needs n >= 1")
    if not 0 <= k <= n:
        raise ValueError(f"k must be between 0 and n={n}; got {k}")
    lo, hi = proportion_confint(k, n, alpha=1 - confidence, method="wilson")
    p = k / n
    return Interval(p, float(min(lo, p)), float(max(hi, p)), confidence)  # guard rounding at k = 0 or n


def permutation_test(a, b, statistic: Callable[[np.ndarray], float] = np.mean, *,
                     paired: bool = False, n_resamples: int = 9999, seed: int = 0) -> float:
    """Two-sided p-value of ``statistic(a) - statistic(b)`` by permutation (scipy).

    ``paired=True`` permutes within pairs (signs of the differences); otherwise group labels.
    """
    a, b = _sample(a, "a"), _sample(b, "b")
    if paired and a.shape != b.shape:
        raise ValueError(f"a paired test needs equal shapes; got {a.shape} and {b.shape}")
    res = _st.permutation_test((a, b), lambda x, y: statistic(x) - statistic(y),
                               permutation_type="samples" if paired else "independent",
                               n_resamples=int(n_resamples), vectorized=False,
                               rng=np.random.default_rng(seed))
    return float(res.pvalue)


def matrix_permutation_test(a, b, statistic: Callable[[np.ndarray, np.ndarray], float], *,
                            n_resamples: int = 999, seed: int = 0) -> float:
    """One-sided p-value (large ``statistic`` = evidence) of ``statistic(a, b)`` for two square
    matrices (n, n) over the same n objects (a Mantel test, e.g. for representational similarity):
    the rows and columns of ``b`` are permuted together (scipy's ``pairings`` permutation of the
    object order), so each permutation keeps ``b``'s structure and breaks only its link to ``a``."""
    a, b = _sample(a, "a"), _sample(b, "b")
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape:
        raise ValueError(f"a and b must be square matrices of the same shape; got {a.shape} and {b.shape}")
    res = _st.permutation_test((np.arange(a.shape[0]),), lambda order: statistic(a, b[np.ix_(order, order)]),
                               permutation_type="pairings", alternative="greater", n_resamples=int(n_resamples),
                               vectorized=False, rng=np.random.default_rng(seed))
    return float(res.pvalue)


# -- resampling within strata ---------------------------------------------------------------------

def bootstrap_indices(strata, *, n_boot: int = 1000, seed: int | np.random.Generator = 0) -> np.ndarray:
    """Row indices of ``n_boot`` resamples, shape (n_boot, n), drawn with replacement within strata.

    ``strata``: the stratum label of each row, shape (n,), or an int ``n`` (one stratum). Slot ``j``
    of every resample holds a row of the same stratum as row ``j``, so ``x[idx]`` keeps the layout
    of ``x`` (a mask of a stratum selects the same slots before and after resampling).
    """
    if int(n_boot) < 1:
        raise ValueError(f"n_boot must be a positive number of resamples; got {n_boot!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    labels = np.zeros(int(strata), dtype=int) if np.ndim(strata) == 0 else np.asarray(strata)
    if labels.ndim != 1 or labels.shape[0] == 0:
        raise ValueError(f"strata must be one label per row (n,) with n >= 1, or n; got shape {labels.shape}")
    idx = np.empty((int(n_boot), labels.shape[0]), dtype=np.int64)
    for g in dict.fromkeys(labels.tolist()):
        members = np.flatnonzero(labels == g)
        idx[:, members] = members[rng.integers(0, len(members), size=(int(n_boot), len(members)))]
    return idx


def bootstrap_replicates(strata, statistic: Callable[..., float | np.ndarray], *, n_boot: int = 1000,
                         seed: int = 0) -> tuple[float | np.ndarray, np.ndarray]:
    """``(estimate, replicates)`` of ``statistic`` over samples resampled within their strata.

    ``strata``: one sample's row labels (n,) (or its size n), or a tuple of them, one per sample
    (e.g. ``(item_groups, rater_countries)``); the samples are resampled independently, in the
    same rounds. ``statistic(*idx)`` gets one index array per sample (n_i,) and returns a float or
    an array; the estimate is its value at the identity indices. ``replicates``: (n_boot, ...).
    """
    strata = strata if isinstance(strata, tuple) else (strata,)
    rng = np.random.default_rng(seed)
    draws = [bootstrap_indices(s, n_boot=n_boot, seed=rng) for s in strata]
    estimate = statistic(*(np.arange(d.shape[1]) for d in draws))
    replicates = np.array([statistic(*(d[b] for d in draws)) for b in range(int(n_boot))], dtype=np.float64)
    return (float(estimate) if np.ndim(estimate) == 0 else np.asarray(estimate, dtype=np.float64)), replicates


def percentile_interval(estimate: float, replicates, *, confidence: float = 0.95) -> Interval:
    """Percentile interval of bootstrap ``replicates`` (n_boot,) around ``estimate``.

    Non-finite replicates (a resample where the statistic is undefined) are dropped; the interval
    is widened to reach the estimate (see the module docstring); no finite replicate gives ``nan``.
    """
    confidence = _check_confidence(confidence)
    reps = np.asarray(replicates, dtype=np.float64).ravel()
    reps = reps[np.isfinite(reps)]
    estimate = float(estimate)
    if reps.size == 0:
        return Interval(estimate, float("nan"), float("nan"), confidence)
    tail = 50.0 * (1.0 - confidence)
    low, high = np.percentile(reps, [tail, 100.0 - tail])
    return Interval(estimate, float(min(low, estimate)), float(max(high, estimate)), confidence)


def stratified_bootstrap(strata, statistic: Callable[..., float], *, confidence: float = 0.95,
                         n_boot: int = 1000, seed: int = 0) -> Interval:
    """Percentile interval of a scalar ``statistic(*idx)`` over samples resampled within strata.

    Same arguments as :func:`bootstrap_replicates`, e.g. the gap between the nearest country and
    the runner-up with items resampled within foundations and raters within countries::

        stratified_bootstrap((item_group, rater_country), lambda i, r: gap(x[i], scores[r]))
    """
    confidence = _check_confidence(confidence)
    estimate, reps = bootstrap_replicates(strata, statistic, n_boot=n_boot, seed=seed)
    if np.ndim(estimate) != 0:
        raise ValueError("stratified_bootstrap needs a scalar statistic; use bootstrap_replicates for arrays")
    return percentile_interval(estimate, reps, confidence=confidence)
