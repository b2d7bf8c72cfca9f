"""Subspace overlap between two sets of activation vectors ("Safety Subspaces are Not Distinct", 2025).

Each set spans an (uncentred) subspace: the top right-singular vectors of its rows that keep a
given fraction of the squared singular values (energy). The overlap of two subspaces is the mean
squared cosine of their principal angles; for random subspaces of dimensions ``k_X`` and ``k_Y`` in
``R^d`` its expectation is ``max(k_X, k_Y) / d``, the baseline it is reported beside.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from plural_kit import stats, viz
from plural_kit.claims import Claim, Claims
from plural_kit.device import cpu_threads
from plural_kit.results import Result, Summary, frame_summary
from plural_kit.stats import Interval


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


@dataclass(repr=False)
class SubspaceOverlap(Result):
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

    def summary(self) -> Summary:
        return frame_summary("subspace overlap", self.to_frame(),
                             f"subspace overlap {self.overlap:.3f} (random baseline {self.baseline:.3f}, "
                             f"ratio {self.ratio:.2f}); k_x={self.k_x}, k_y={self.k_y}, d={self.d}, "
                             f"energy={self.energy}")

    def _repr_fields(self) -> dict:
        return {"overlap": self.overlap, "baseline": self.baseline, "k_x": self.k_x, "k_y": self.k_y}


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


@dataclass(repr=False)
class OverlapComparison(Result):
    """Result of :func:`compare_overlap`: set A (e.g. harmful) against set B (e.g. harmless) and two
    halves of B against each other, all sets of the same size ``m`` (subspace dimensions depend
    on the number of vectors, so only equal sizes compare).

    ``overlap_ab``, ``overlap_bb``, ``baseline_ab``: means over ``n_splits`` random splits of the
    prompts; ``diff_vs_chance`` and ``diff_vs_halves``: ``(n_splits,)`` the values of
    ``overlap_ab - baseline_ab`` and ``overlap_ab - overlap_bb`` on each split.
    """

    overlap_ab: float
    overlap_bb: float
    baseline_ab: float
    m: int
    centred: bool
    energy: float
    diff_vs_chance: np.ndarray = field(repr=False)
    diff_vs_halves: np.ndarray = field(repr=False)
    confidence: float = 0.95

    title = "subspace overlap against chance and against two halves of one set"

    def _interval(self, reps: np.ndarray) -> Interval:
        return stats.percentile_interval(float(np.mean(reps)), reps, confidence=self.confidence)

    def claims(self, a: str = "harmful", b: str = "harmless", *, details: dict | None = None) -> Claims:
        """``subspaces_share_more_than_chance`` (overlap of A and B above the random-subspace baseline)
        and ``{a}_subspace_distinct`` (A and B overlap *less* than two halves of B: a subspace of
        their own); intervals: the central ``confidence`` range of the statistic over random splits."""
        how = "centred" if self.centred else "uncentred"
        extra = dict(details or {})
        method = (f"not a sampling CI: the interval is the central range over {len(self.diff_vs_chance)} random "
                  f"splits of the prompts into sets of {self.m} (split variability only)")
        return Claims([
            Claim.from_interval(
                "subspaces_share_more_than_chance",
                f"{how}, the {a} and {b} activation subspaces overlap more than random subspaces of the same dimensions",
                self._interval(self.diff_vs_chance), quantity="overlap - random baseline", method=method,
                details=extra),
            Claim.from_interval(
                f"{a}_subspace_distinct",
                f"{how}, the {a} and {b} subspaces overlap less than two halves of the {b} prompts do "
                f"(the {a} prompts occupy directions of their own)",
                self._interval(self.diff_vs_halves), quantity=f"overlap({a}, {b}) - overlap({b}, {b})",
                side="less", method=method, details=extra),
        ])

    def to_frame(self) -> pd.DataFrame:
        """The two differences, each with the mean over splits and its central range
        (``ci_low``/``ci_high``, not a sampling interval: split variability only)."""
        rows = [{"comparison": name, "estimate": iv.estimate, "ci_low": iv.ci_low, "ci_high": iv.ci_high,
                 "confidence": iv.confidence, "n_splits": len(reps)}
                for name, reps in (("overlap - random baseline", self.diff_vs_chance),
                                   ("overlap(A, B) - overlap(B, B)", self.diff_vs_halves))
                for iv in [self._interval(reps)]]
        return pd.DataFrame(rows).set_index("comparison")

    def summary(self) -> Summary:
        return frame_summary(self.title, self.to_frame(),
                             f"{'centred' if self.centred else 'uncentred'}, sets of {self.m}, energy {self.energy}: "
                             f"overlap(A, B) {self.overlap_ab:.3f}, overlap(B, B) {self.overlap_bb:.3f}, "
                             f"random baseline {self.baseline_ab:.3f}")

    def to_dict(self) -> dict:
        return {"overlap_ab": self.overlap_ab, "overlap_bb": self.overlap_bb, "baseline_ab": self.baseline_ab,
                "m": self.m, "centred": self.centred, "energy": self.energy, "claims": self.claims().to_dict()}

    def _repr_fields(self) -> dict:
        return {"overlap_ab": self.overlap_ab, "overlap_bb": self.overlap_bb, "baseline_ab": self.baseline_ab,
                "m": self.m}

    def plot(self, ax=None):
        """Both differences with their central ranges against 0 (:func:`plural_kit.viz.intervals`)."""
        return viz.intervals(self.to_frame(), kind="point", references={"no difference": 0.0},
                             xlabel="difference of overlaps (central range over splits)", ax=ax)


def compare_overlap(A, B, *, energy: float = 0.9, centred: bool = True, n_splits: int = 200,
                    confidence: float = 0.95, seed: int = 0) -> OverlapComparison:
    """Is the overlap of A's and B's subspaces (rows of ``A`` (n_a, d), ``B`` (n_b, d)) below that
    of two samples of B? Sets of equal size ``m = min(n_a, n_b // 2)``.

    One split: B's rows go at random into disjoint halves B1, B2 of ``m`` rows, ``m`` random rows
    A1 of A are taken, all three are centred on their pooled mean (``centred``), and
    ``overlap(A1, B1)``, its random baseline and ``overlap(B2, B1)`` come from
    :func:`subspace_overlap` at ``energy``. The interval is the central ``confidence`` range over
    ``n_splits`` seeded splits (the unit is the prompt, drawn without replacement: a bootstrap
    that repeats rows would lower every subspace's rank and bias the overlaps).
    """
    A, B = _check_matrix("A", A), _check_matrix("B", B)
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A and B must have the same width d; got {A.shape[1]} and {B.shape[1]}")
    m = min(len(A), len(B) // 2)
    if m < 2:
        raise ValueError(f"compare_overlap needs at least 2 rows of A and 4 of B; got {len(A)} and {len(B)}")
    if int(n_splits) < 2:
        raise ValueError(f"n_splits must be at least 2; got {n_splits}")
    rng = np.random.default_rng(seed)
    vals = []
    with cpu_threads(1):  # hundreds of small SVDs: BLAS threads only contend
        for _ in range(int(n_splits)):
            pb = rng.permutation(len(B))
            a1, b1, b2 = A[rng.permutation(len(A))[:m]], B[pb[:m]], B[pb[m:2 * m]]
            if centred:
                mu = np.concatenate([a1, b1, b2]).mean(0)
                a1, b1, b2 = a1 - mu, b1 - mu, b2 - mu
            ab = subspace_overlap(a1, b1, energy)
            vals.append((ab.overlap, ab.baseline, subspace_overlap(b2, b1, energy).overlap))
    vals = np.asarray(vals)
    ov_ab, base, ov_bb = vals.mean(0)
    return OverlapComparison(overlap_ab=float(ov_ab), overlap_bb=float(ov_bb), baseline_ab=float(base), m=m,
                             centred=centred, energy=energy, diff_vs_chance=vals[:, 0] - vals[:, 1],
                             diff_vs_halves=vals[:, 0] - vals[:, 2], confidence=confidence)


def compare_overlap_at(activations: Mapping[int, np.ndarray], labels, layer: int, **kwargs) -> OverlapComparison:
    """:func:`compare_overlap` of the rows labelled 1 (A) and 0 (B) of ``activations[layer]``.

    activations: ``{layer: (n, d)}``; labels: (n,) of 0/1; ``kwargs``: those of :func:`compare_overlap`.
    """
    X, y = np.asarray(activations[layer]), np.asarray(labels).astype(int)
    if X.shape[0] != len(y):
        raise ValueError(f"layer {layer} has {X.shape[0]} rows for {len(y)} labels")
    return compare_overlap(X[y == 1], X[y == 0], **kwargs)


@dataclass(repr=False)
class OverlapByLayer(Result):
    """Subspace overlaps of two sets of prompts at each layer (:func:`overlap_by_layer`), one row
    per layer and centring (see :meth:`to_frame`); ``names``: what sets A and B are, for the figure."""

    frame: pd.DataFrame
    energy: float = 0.9
    names: tuple[str, str] = ("A", "B")

    title = "subspace overlap by layer"

    def to_frame(self) -> pd.DataFrame:
        """Per ``layer`` and ``centred``: ``overlap`` (all A vs all B), ``random_baseline``, ``k_a``,
        ``k_b`` (subspace dimensions) and ``b_vs_b`` (two halves of B: the calibration)."""
        return self.frame.copy()

    def at(self, layer: int) -> pd.DataFrame:
        """The rows of one layer (centred and uncentred)."""
        return self.frame[self.frame["layer"] == int(layer)].reset_index(drop=True)

    def _repr_fields(self) -> dict:
        return {"layers": self.frame["layer"].nunique(), "energy": self.energy}

    def plot(self, ax=None, *, centred: bool = True):
        """A vs B, two halves of B and the random baseline over layers, for the ``centred`` rows
        (:func:`plural_kit.viz.curve`)."""
        f = self.frame[self.frame["centred"] == centred]
        a, b = self.names
        names = {"overlap": f"{a} vs {b}", "b_vs_b": f"{b} vs {b} (two halves)",
                 "random_baseline": "random subspaces, same k"}
        long = f[["layer", *names]].melt(id_vars="layer", var_name="series", value_name="value")
        long["series"] = long["series"].map(names)
        return viz.curve(long, x="layer", y="value", hue="series", ylim=(0, 1.02),
                         ylabel="mean cos² of principal angles", ax=ax,
                         title=f"{'centred' if centred else 'uncentred'} subspaces, energy {self.energy}")


def overlap_by_layer(activations: Mapping[int, np.ndarray], labels, *, layers: Sequence[int] | None = None,
                     energy: float = 0.9, names: tuple[str, str] = ("A", "B"), seed: int = 0) -> OverlapByLayer:
    """:func:`subspace_overlap` of the rows labelled 1 (A) and 0 (B) at each layer, uncentred and
    centred on the mean of all rows, beside two random halves of B (one seeded split for all layers).

    activations: ``{layer: (n, d)}``; labels: (n,) of 0/1; layers: default all of ``activations``;
    names: of sets A (label 1) and B (label 0) in the figure.
    """
    y = np.asarray(labels).astype(int)
    b_rows = np.random.default_rng(seed).permutation(np.flatnonzero(y == 0))
    halves = (b_rows[: len(b_rows) // 2], b_rows[len(b_rows) // 2:])
    rows = []
    for layer in sorted(activations) if layers is None else layers:
        X = np.asarray(activations[layer], dtype=np.float64)
        if X.shape[0] != len(y):
            raise ValueError(f"layer {layer} has {X.shape[0]} rows for {len(y)} labels")
        for centred in (False, True):
            Z = X - X.mean(0) if centred else X
            ov = subspace_overlap(Z[y == 1], Z[y == 0], energy=energy)
            cal = subspace_overlap(Z[halves[0]], Z[halves[1]], energy=energy)
            rows.append({"layer": int(layer), "centred": centred, "overlap": ov.overlap,
                         "random_baseline": ov.baseline, "k_a": ov.k_x, "k_b": ov.k_y, "b_vs_b": cal.overlap})
    return OverlapByLayer(frame=pd.DataFrame(rows), energy=energy, names=(str(names[0]), str(names[1])))
