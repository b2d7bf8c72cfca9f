"""Representational similarity (RSA): is a model's item structure like people's?

For n items, a representational dissimilarity matrix (RDM, (n, n)) says how far apart each
two items are:

- people: ``1 - r`` with r the correlation of the two items' answers across respondents
  (:func:`answer_dissimilarity`); items that measure the same trait are close;
- a model: the same from its answers across persona prompts, or the cosine distance between
  its hidden states of the item texts (:func:`cosine_dissimilarity`).

The RSA statistic is Spearman's rho between the two RDMs' upper triangles (each pair of items
once). Its evidence: a Mantel permutation p-value (:func:`plural_kit.stats.matrix_permutation_test`:
the items of one RDM relabelled) and a bootstrap interval over items (a resampled item keeps its
row; pairs of a drawn item with itself are left out).

**Per person** (:func:`person_rsa`, the individual level of Turing RSA): one person's answers give
their own dissimilarities ``|a_i - a_j|`` (items they answered alike are close); each person's
rho with a model's RDM is set beside their rho with everyone else's (``1 - r`` without them), the
agreement a typical member of the group reaches.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _st
from scipy.spatial.distance import pdist, squareform

from plural_kit import stats, viz
from plural_kit.claims import Claim, Claims
from plural_kit.results import Result, Summary, frame_summary

__all__ = ["RSAResult", "answer_dissimilarity", "cosine_dissimilarity", "person_rsa", "rsa", "upper_triangle"]


def answer_dissimilarity(answers) -> np.ndarray:
    """``1 - corr`` of items across observations: ``answers`` (n_observations, n_items), NaN where
    missing (pairwise complete). Returns (n_items, n_items) in [0, 2], zero diagonal. An item
    that never varies has no correlation: ``ValueError``."""
    frame = pd.DataFrame(np.asarray(answers, dtype=float))
    if frame.shape[0] < 3 or frame.shape[1] < 3:
        raise ValueError(f"need at least 3 observations of at least 3 items; got shape {frame.shape}")
    constant = frame.std(ddof=0).fillna(0).to_numpy() == 0
    if constant.any():
        raise ValueError(f"items {np.flatnonzero(constant)[:5].tolist()} never vary across observations: "
                         "their correlations are undefined")
    rdm = 1.0 - frame.corr().to_numpy()
    if not np.isfinite(rdm).all():
        raise ValueError("some pairs of items have too few joint observations for a correlation")
    np.fill_diagonal(rdm, 0.0)
    return rdm


def cosine_dissimilarity(vectors) -> np.ndarray:
    """Cosine distance between the rows of ``vectors`` (n_items, d): (n_items, n_items)."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] < 3 or not np.isfinite(v).all():
        raise ValueError(f"vectors must be a finite (n_items >= 3, d) array; got shape {v.shape}")
    return squareform(pdist(v, "cosine"), checks=False)


def upper_triangle(rdm: np.ndarray) -> np.ndarray:
    """The entries above the diagonal of a square matrix, row by row: (n (n - 1) / 2,)."""
    rdm = np.asarray(rdm)
    return rdm[np.triu_indices(rdm.shape[0], k=1)]


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    return float(_st.spearmanr(upper_triangle(a), upper_triangle(b)).statistic)


@dataclass(repr=False)
class RSAResult(Result):
    """Result of :func:`rsa`: ``rho`` (Spearman of the RDMs' upper triangles) with its bootstrap
    interval over items (:class:`~plural_kit.stats.Interval`), ``p_value`` (Mantel permutation,
    one-sided), the two RDMs and their item labels."""

    rdm_a: pd.DataFrame
    rdm_b: pd.DataFrame
    interval: stats.Interval
    p_value: float
    n_permutations: int
    names: tuple[str, str] = ("people", "model")

    title = "Representational similarity"

    @property
    def rho(self) -> float:
        return self.interval.estimate

    def to_frame(self) -> pd.DataFrame:
        """One row per pair of items: ``item_a``, ``item_b`` and the two dissimilarities (a new frame)."""
        i, j = np.triu_indices(len(self.rdm_a), k=1)
        labels = self.rdm_a.index.to_numpy()
        return pd.DataFrame({"item_a": labels[i], "item_b": labels[j],
                             self.names[0]: upper_triangle(self.rdm_a.to_numpy()),
                             self.names[1]: upper_triangle(self.rdm_b.to_numpy())})

    def claim(self, name: str = "rsa_above_zero", statement: str | None = None) -> Claim:
        """The two item structures agree: Spearman rho above 0, bootstrap interval over items."""
        a, b = self.names
        return Claim.from_interval(
            name, statement or f"the {b}'s item dissimilarities follow the {a}'s (Spearman RSA above 0)",
            self.interval, quantity="Spearman rho", threshold=0.0, side="greater",
            method=f"bootstrap over {len(self.rdm_a)} items", details={"Mantel p": self.p_value})

    def claims(self) -> Claims:
        return Claims([self.claim()])

    def summary(self) -> Summary:
        iv = self.interval
        return frame_summary(
            f"RSA {self.names[0]} vs {self.names[1]} over {len(self.rdm_a)} items", self.to_frame().head(10),
            [(f"Spearman rho {iv.estimate:.3f} [{iv.confidence:.0%} CI {iv.ci_low:.3f}, {iv.ci_high:.3f}], "
              f"Mantel p = {self.p_value:.4f} ({self.n_permutations} permutations)")])

    def to_dict(self) -> dict:
        return {"rho": self.interval.to_dict(), "p_value": self.p_value, "n_items": len(self.rdm_a),
                "n_permutations": self.n_permutations, "claims": self.claims().to_dict()}

    def _repr_fields(self) -> dict:
        return {"items": len(self.rdm_a), "rho": self.rho, "p_value": self.p_value}

    def plot(self, ax=None, title: str | None = None):
        """Scatter of the two dissimilarities over the pairs of items."""
        a, b = self.names
        ax = viz.scatter(self.to_frame(), x=a, y=b, ax=ax, title=title or f"RSA over item pairs: rho = {self.rho:.2f}")
        ax.set(xlabel=f"{a}: dissimilarity", ylabel=f"{b}: dissimilarity")
        return ax


def rsa(rdm_a, rdm_b, *, labels=None, names: tuple[str, str] = ("people", "model"), n_permutations: int = 999,
        confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> RSAResult:
    """Spearman RSA between two RDMs (n, n) over the same items, with a Mantel permutation
    p-value and a bootstrap interval over items (see the module docstring)."""
    a, b = np.asarray(rdm_a, dtype=float), np.asarray(rdm_b, dtype=float)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape != b.shape or a.shape[0] < 4:
        raise ValueError(f"rdm_a and rdm_b must be square (n, n) matrices of one shape with n >= 4; "
                         f"got {a.shape} and {b.shape}")
    if not (np.allclose(a, a.T) and np.allclose(b, b.T)):
        raise ValueError("RDMs must be symmetric")
    labels = list(range(a.shape[0])) if labels is None else list(labels)
    if len(labels) != a.shape[0]:
        raise ValueError(f"{len(labels)} labels for {a.shape[0]} items")
    p = stats.matrix_permutation_test(a, b, _spearman, n_resamples=n_permutations, seed=seed)
    i, j = np.triu_indices(a.shape[0], k=1)

    def rho(idx: np.ndarray) -> float:
        keep = idx[i] != idx[j]                                 # a drawn item paired with itself: no pair
        x, y = a[idx[i[keep]], idx[j[keep]]], b[idx[i[keep]], idx[j[keep]]]
        return float(_st.spearmanr(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan

    est, reps = stats.bootstrap_replicates(a.shape[0], rho, n_boot=n_boot, seed=seed)
    iv = stats.percentile_interval(est, reps, confidence=confidence)
    frame = lambda m: pd.DataFrame(m, index=labels, columns=labels)
    return RSAResult(frame(a), frame(b), iv, p, int(n_permutations), tuple(names))


def person_rsa(answers, references: Mapping[str, np.ndarray] | None = None, *, index=None) -> pd.DataFrame:
    """Each person's Spearman rho between their own dissimilarities and other RDMs.

    ``answers``: (n_people, n_items), NaN where missing; person p's RDM is ``|a_pi - a_pj|``
    (pairs with a missing answer left out). Columns of the result (n_people rows, ``index``):
    ``other people`` (the RDM :func:`answer_dissimilarity` of everyone but p) and one per
    ``references`` entry ({name: (n_items, n_items) RDM}). A person whose answers do not vary
    over these items has no rho (NaN).
    """
    a = np.asarray(answers, dtype=float)
    if a.ndim != 2 or a.shape[0] < 4:
        raise ValueError(f"answers must be (n_people >= 4, n_items); got shape {a.shape}")
    refs = {name: upper_triangle(np.asarray(r, dtype=float)) for name, r in (references or {}).items()}
    for name, r in (references or {}).items():
        if np.shape(r) != (a.shape[1], a.shape[1]):
            raise ValueError(f"reference {name!r} must be ({a.shape[1]}, {a.shape[1]}); got {np.shape(r)}")
    i, j = np.triu_indices(a.shape[1], k=1)
    rows = []
    for p in range(a.shape[0]):
        own = np.abs(a[p, i] - a[p, j])
        ok = np.isfinite(own)
        others = upper_triangle(answer_dissimilarity(np.delete(a, p, axis=0)))
        row = {}
        for name, ref in {"other people": others, **refs}.items():
            x, y = own[ok], ref[ok]
            row[name] = float(_st.spearmanr(x, y).statistic) if np.ptp(x) > 0 and np.ptp(y) > 0 else np.nan
        rows.append(row)
    return pd.DataFrame(rows, index=None if index is None else pd.Index(index, name="person"))
