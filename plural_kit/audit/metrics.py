"""Distances between a model's answer distribution and people's, and their confidence intervals.

===========================  ======================================================  =======
metric                       definition (source)                                     range
===========================  ======================================================  =======
:func:`similarity`           1 − Jensen–Shannon distance, base 2 (GlobalOpinionQA,   [0, 1]
                             Durmus et al. 2023)
:func:`representativeness`   1 − W1(p, q) / W1max over ordinal option positions      [0, 1]
                             (OpinionQA, Santurkar et al. 2023)
:func:`normalized_entropy`   H(counts) / log K (perspective-distribution entropy,    [0, 1]
                             WorldView-Bench, Mushtaq et al. 2025)
===========================  ======================================================  =======

Every function validates its input and names the problem (empty, negative, NaN, not summing
to one, option count mismatch). Intervals come from :mod:`plural_kit.stats`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats
from scipy.special import rel_entr


__all__ = [
    "AuditInputError",
    "check_distribution",
    "check_scores",
    "expected_value",
    "normalized_entropy",
    "representativeness",
    "similarity",
]

SUM_TOL = 1e-4


class AuditInputError(ValueError):
    """Input to an audit function is malformed (the message names the problem)."""


def check_distribution(p, name: str = "p", *, tol: float = SUM_TOL) -> np.ndarray:
    """Return ``p`` as a float64 vector after checking that it is a probability distribution.

    ``p``: shape (K,), K ≥ 1, finite, non-negative, summing to 1 within ``tol``.
    """
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 1:
        raise AuditInputError(f"{name} must be a 1-D probability vector, got shape {arr.shape}")
    if arr.size == 0:
        raise AuditInputError(f"{name} is an empty distribution (no options)")
    if not np.all(np.isfinite(arr)):
        raise AuditInputError(f"{name} contains NaN or infinite values: {arr}")
    if np.any(arr < 0):
        raise AuditInputError(f"{name} has negative probabilities: {arr}")
    total = arr.sum()
    if abs(total - 1.0) > tol:
        raise AuditInputError(
            f"{name} sums to {total:.6g}, not 1 (renormalise over the options first, "
            "e.g. p / p.sum(), if the mass outside the options is meant to be dropped)"
        )
    return arr


#: The MFQ-2 rating scale: 1 (does not describe me at all) to 5 (describes me extremely well).
MFQ_SCALE = (1.0, 5.0)


def _show(labels, values, bad) -> str:
    shown = [f"{lab}: {val!r}" for lab, val, b in zip(labels, values, bad) if b]
    more = len(shown) - 5
    return ", ".join(shown[:5]) + (f" (and {more} more)" if more > 0 else "")


def check_scores(values, name: str = "scores", *, scale: tuple[float, float] | None = MFQ_SCALE,
                 labels=None) -> np.ndarray:
    """Return ``values`` as a float64 array after checking that every entry is a finite number in
    ``scale`` (``(low, high)``, inclusive, up to the rounding that probabilities summing to 1 within ``SUM_TOL`` allow; ``None``: any finite number). ``labels``: a name per entry
    (e.g. the foundations), used to name the offending entries. Raises :class:`AuditInputError`."""
    raw = np.asarray(values, dtype=object).ravel()
    labels = list(range(raw.size)) if labels is None else list(labels)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        bad = []
        for v in raw:
            try:
                float(v)
                bad.append(isinstance(v, (bool, np.bool_)))
            except (TypeError, ValueError):
                bad.append(True)
        raise AuditInputError(f"{name} must be numbers; not numbers: {_show(labels, raw, bad)}") from None
    flat = arr.ravel()
    nonnum = [isinstance(v, (bool, np.bool_, str, bytes)) for v in raw]
    if any(nonnum):
        raise AuditInputError(f"{name} must be numbers; not numbers: {_show(labels, raw, nonnum)}")
    finite = np.isfinite(flat)
    if not finite.all():
        raise AuditInputError(f"{name} contain NaN or infinite values: {_show(labels, flat.tolist(), ~finite)}")
    if scale is not None:
        try:
            lo, hi = (float(v) for v in scale)
        except (TypeError, ValueError):
            raise AuditInputError(f"scale must be (low, high); got {scale!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise AuditInputError(f"scale must be finite (low, high) with low < high; got {scale!r}")
        # rounding: an expected rating from probabilities that sum to 1 within SUM_TOL
        slack = SUM_TOL * max(abs(lo), abs(hi), hi - lo)
        out = (flat < lo - slack) | (flat > hi + slack)
        if out.any():
            raise AuditInputError(f"{name} must lie on the {lo:g}-{hi:g} scale; outside it: "
                                  f"{_show(labels, flat.tolist(), out)}")
    return arr


def _pair(p, q) -> tuple[np.ndarray, np.ndarray]:
    p = check_distribution(p, "p")
    q = check_distribution(q, "q")
    if p.shape != q.shape:
        raise AuditInputError(
            f"p and q have different numbers of options ({p.size} vs {q.size}): an option is missing"
        )
    return p, q


def similarity(p, q) -> float:
    """1 − Jensen–Shannon distance (base 2) between two answer distributions, in [0, 1].

    ``p, q``: shape (K,), each summing to one. 1 = identical, 0 = disjoint supports.
    Source: Durmus et al. (2023), "Towards Measuring the Representation of Subjective Global
    Opinions in Language Models" (GlobalOpinionQA).
    """
    p, q = _pair(p, q)
    p, q = p / p.sum(), q / q.sum()
    m = 0.5 * (p + q)
    # JS divergence in bits, by hand: scipy's jensenshannon returns NaN when rounding makes it
    # slightly negative for near-identical distributions
    divergence = 0.5 * (rel_entr(p, m).sum() + rel_entr(q, m).sum()) / np.log(2)
    return float(np.clip(1.0 - np.sqrt(max(divergence, 0.0)), 0.0, 1.0))


def representativeness(p, q, ordinal: Sequence[float] | None = None) -> float:
    """1 − W1(p, q) / (max(ordinal) − min(ordinal)) over ordered options, in [0, 1].

    ``p, q``: shape (K,), K ≥ 2; ``ordinal``: the options' positions (default 0..K−1), e.g.
    1..5 for a rating scale. 1 = identical, 0 = all mass at opposite ends. Source: Santurkar et
    al. (2023), "Whose Opinions Do Language Models Reflect?" (OpinionQA).
    """
    p, q = _pair(p, q)
    if p.size < 2:
        raise AuditInputError("representativeness needs at least two ordered options")
    pos = np.arange(p.size, dtype=np.float64) if ordinal is None else np.asarray(ordinal, dtype=np.float64)
    if pos.shape != p.shape:
        raise AuditInputError(f"ordinal has {pos.size} positions for {p.size} options")
    if not np.all(np.isfinite(pos)):
        raise AuditInputError(f"ordinal positions must be finite, got {pos}")
    span = pos.max() - pos.min()
    if span <= 0:
        raise AuditInputError(f"ordinal positions must not all be equal, got {pos}")
    w1 = stats.wasserstein_distance(pos, pos, u_weights=p, v_weights=q)
    return float(np.clip(1.0 - w1 / span, 0.0, 1.0))


def normalized_entropy(counts) -> float:
    """Shannon entropy of a perspective distribution divided by log K, in [0, 1].

    ``counts``: shape (K,), K ≥ 2, non-negative counts or probabilities (normalised here).
    0 = a single perspective, 1 = all K perspectives equally present. Source: the
    Perspectives Distribution Score entropy of WorldView-Bench (Mushtaq et al. 2025).
    """
    arr = np.asarray(counts, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2:
        raise AuditInputError(f"counts must be a 1-D vector over K >= 2 categories, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise AuditInputError(f"counts must be finite and non-negative, got {arr}")
    total = arr.sum()
    if total <= 0:
        raise AuditInputError("counts are all zero: an empty distribution has no entropy")
    return float(stats.entropy(arr / total) / np.log(arr.size))


def expected_value(p, values: Sequence[float]) -> float:
    """Expected rating ``sum_k p_k values_k`` of an answer distribution ``p`` (K,) over ``values`` (K,)."""
    p = check_distribution(p, "p")
    v = np.asarray(values, dtype=np.float64)
    if v.shape != p.shape:
        raise AuditInputError(f"values has {v.size} entries for {p.size} options")
    return float(p @ v)
