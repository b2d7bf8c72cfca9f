"""Subspace overlap between two sets of activation vectors ("Safety Subspaces are Not Distinct", 2025).

Each set spans an (uncentred) subspace: the top right-singular vectors of its rows that keep a
given fraction of the squared singular values (energy). The overlap of two subspaces is the mean
squared cosine of their principal angles; for random subspaces of dimensions ``k_X`` and ``k_Y`` in
``R^d`` its expectation is ``max(k_X, k_Y) / d``, the baseline it is reported beside.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd


def _check_matrix(name: str, X) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (n_vectors, d); got shape {X.shape}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not np.any(X):
        raise ValueError(f"{name} is all zeros: it spans no subspace")
    return X


def energy_rank(singular_values: np.ndarray, energy: float) -> int:
    """Smallest k whose top-k squared singular values keep at least ``energy`` of their sum."""
    if not 0.0 < energy <= 1.0:
        raise ValueError(f"energy must be in (0, 1]; got {energy}")
    s2 = np.asarray(singular_values, dtype=np.float64) ** 2
    frac = np.cumsum(s2) / s2.sum()
    return int(min(np.searchsorted(frac, energy - 1e-12) + 1, len(s2)))


def subspace_basis(X, energy: float = 0.9, k: int | None = None) -> np.ndarray:
    """Orthonormal basis (k, d) of the top uncentred principal directions of the rows of ``X``.

    ``k`` defaults to :func:`energy_rank` of the singular values at ``energy``.
    """
    X = _check_matrix("X", X)
    _, s, vt = np.linalg.svd(X, full_matrices=False)
    s = s[s > s[0] * 1e-10]  # drop numerically null directions
    if k is None:
        k = energy_rank(s, energy)
    if not 1 <= k <= len(s):
        raise ValueError(f"k={k} is outside [1, rank={len(s)}]")
    return vt[:k]


@dataclass
class SubspaceOverlap:
    """Result of :func:`subspace_overlap`.

    ``overlap``: mean squared cosine of the principal angles, in [0, 1];
    ``baseline``: its expectation for random subspaces of the same dimensions, ``max(k_x, k_y) / d``;
    ``cosines``: the ``min(k_x, k_y)`` cosines of the principal angles, descending.
    """

    overlap: float
    baseline: float
    k_x: int
    k_y: int
    d: int
    energy: float
    cosines: np.ndarray = field(repr=False)

    @property
    def ratio(self) -> float:
        """Overlap divided by its random baseline (1 = no more shared than chance)."""
        return self.overlap / self.baseline

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "overlap": self.overlap, "random_baseline": self.baseline, "ratio": self.ratio,
            "k_x": self.k_x, "k_y": self.k_y, "d": self.d, "energy": self.energy,
        }])

    def summary(self) -> str:
        return (f"subspace overlap {self.overlap:.3f} (random baseline {self.baseline:.3f}, "
                f"ratio {self.ratio:.2f}); k_x={self.k_x}, k_y={self.k_y}, d={self.d}, energy={self.energy}")


def subspace_overlap(X, Y, energy: float = 0.9, k: int | None = None) -> SubspaceOverlap:
    """Overlap of the subspaces spanned by the rows of ``X`` (n_x, d) and ``Y`` (n_y, d).

    The bases are the top-k uncentred right-singular vectors of each set, k chosen per set to keep
    ``energy`` of its squared singular values (or fixed by ``k`` for both). The overlap is the mean
    of ``cos^2`` of the ``min(k_x, k_y)`` principal angles: 1 for identical subspaces (or one inside
    the other), 0 for orthogonal ones, about ``max(k_x, k_y)/d`` for random ones.
    """
    X = _check_matrix("X", X)
    Y = _check_matrix("Y", Y)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"X and Y must have the same width d; got {X.shape[1]} and {Y.shape[1]}")
    bx = subspace_basis(X, energy, k)
    by = subspace_basis(Y, energy, k)
    cosines = np.clip(np.linalg.svd(bx @ by.T, compute_uv=False), 0.0, 1.0)
    d = X.shape[1]
    return SubspaceOverlap(
        overlap=float(np.mean(cosines**2)),
        baseline=max(len(bx), len(by)) / d,
        k_x=len(bx), k_y=len(by), d=d, energy=energy, cosines=cosines,
    )
