"""Rankings from pairwise outcomes: Bradley–Terry by maximum likelihood, and online Elo.

A table of **comparisons** has one row per judgment: items ``a`` and ``b`` and the ``outcome``
for ``a`` (1: ``a`` won, 0: ``b`` won, 0.5: a tie); other columns (``group``, ``round``) are kept.

* :func:`bradley_terry` — ``P(i beats j) = sigmoid(s_i - s_j)``, strengths on the log-odds scale
  centred at 0, with a tie counted as half a win for each side (as Chatbot Arena does). The fit
  uses only the counts of wins, so the order of the matches cannot matter. Percentile bootstrap
  intervals over comparisons (:mod:`plural_kit.stats`) for the strengths and for the ranks.
* :func:`elo` — the online Elo update with a K-factor, which reads the matches in order: the
  same matches in another order give other ratings (:func:`elo_order_dependence`).

``alpha`` is an L2 penalty ``alpha / 2 * ||s||^2`` (the MAP under a prior ``N(0, 1 / alpha)``;
choix's ``opt_pairwise`` writes the same penalty with ``alpha / 2``); ``alpha = 0`` is the plain MLE, which exists only when every item has won
and lost against the others in a strongly connected way (otherwise a ``ValueError`` says so).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit
from scipy.stats import kendalltau, rankdata, spearmanr

from plural_kit import stats
from plural_kit.claims import Claim, Claims, claim_proportion
from plural_kit.io import jsonable
from plural_kit.results import Result, frame_summary

__all__ = ["ELO_SCALE", "EloOrderDependence", "EloRatings", "Ranking", "bradley_terry", "check_comparisons",
           "elo", "elo_order_dependence", "win_matrix"]

#: Elo points per unit of log-odds: a gap of 400 Elo points is odds of 10 to 1.
ELO_SCALE = 400.0 / math.log(10.0)
_OUTCOMES = (0.0, 0.5, 1.0)


def check_comparisons(comparisons, *, columns: tuple[str, ...] = ()) -> pd.DataFrame:
    """A copy of ``comparisons`` (DataFrame with ``a``, ``b``, ``outcome`` and ``columns``), checked.

    Raises ValueError naming a missing column, an empty table, missing items, an item compared
    with itself or an outcome outside {0, 0.5, 1} (TypeError for anything but a DataFrame).
    """
    if not isinstance(comparisons, pd.DataFrame):
        raise TypeError(f"comparisons must be a DataFrame with columns a, b, outcome; got {type(comparisons).__name__}")
    missing = [c for c in ("a", "b", "outcome", *columns) if c not in comparisons.columns]
    if missing:
        raise ValueError(f"comparisons: column(s) {missing} missing; got {list(comparisons.columns)}")
    if len(comparisons) == 0:
        raise ValueError("comparisons is empty: a ranking needs at least one judgment")
    table = comparisons.reset_index(drop=True).copy()
    if table[["a", "b", *columns]].isna().any().any():
        raise ValueError("comparisons has missing items (or missing values in " + ", ".join(columns or ("a, b",)) + ")")
    same = np.flatnonzero(table["a"].to_numpy() == table["b"].to_numpy())
    if same.size:
        raise ValueError(f"comparisons: an item compared with itself in {same.size} row(s), first at row {same[0]}")
    outcome = pd.to_numeric(table["outcome"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isin(outcome, _OUTCOMES)
    if bad.any():
        raise ValueError(f"outcome must be 1 (a won), 0 (b won) or 0.5 (tie); found "
                         f"{pd.unique(table['outcome'][bad])[:5].tolist()} at rows {np.flatnonzero(bad)[:5].tolist()}")
    table["outcome"] = outcome
    return table


def _items(table: pd.DataFrame, items=None) -> pd.Index:
    seen = pd.Index(pd.unique(np.concatenate([table["a"].to_numpy(), table["b"].to_numpy()])))
    if items is None:
        return seen.sort_values()
    items = pd.Index(list(items))
    unknown = seen.difference(items)
    if len(unknown):
        raise ValueError(f"comparisons name items {unknown[:5].tolist()} that are not in items")
    return items


def win_matrix(comparisons, items=None) -> pd.DataFrame:
    """Points of each row item against each column item (a win 1, a tie 0.5): DataFrame (m, m)."""
    table = check_comparisons(comparisons)
    items = _items(table, items)
    return pd.DataFrame(_points(items.get_indexer(table["a"]), items.get_indexer(table["b"]),
                                table["outcome"].to_numpy(), len(items)), index=items, columns=items)


def _points(ia: np.ndarray, ib: np.ndarray, y: np.ndarray, m: int) -> np.ndarray:
    W = np.zeros((m, m))
    np.add.at(W, (ia, ib), y)
    np.add.at(W, (ib, ia), 1.0 - y)
    return W


def _identifiable(W: np.ndarray) -> bool:
    return connected_components(W > 0, directed=True, connection="strong")[0] == 1


def fit_strengths(ia: np.ndarray, ib: np.ndarray, y: np.ndarray, m: int, alpha: float) -> np.ndarray:
    """BT strengths (m,) from item indices ``ia``, ``ib`` (n,) and outcomes ``y`` for ``a``, no checks (the
    fast path of simulations; use :func:`bradley_terry` on a comparisons table)."""
    return _fit(_points(ia, ib, y, m), alpha)


def _fit(W: np.ndarray, alpha: float, tol: float = 1e-10, max_iter: int = 100) -> np.ndarray:
    """Strengths (m,) minimising ``-sum W_ij log sigmoid(s_i - s_j) + alpha/2 ||s||^2``, centred (Newton)."""
    m = W.shape[0]
    N = W + W.T
    s = np.zeros(m)

    def loss(s):
        return -(W * log_expit(s[:, None] - s[None, :])).sum() + 0.5 * alpha * s @ s

    f = loss(s)
    for _ in range(max_iter):
        P = expit(s[:, None] - s[None, :])
        g = -(W - N * P).sum(axis=1) + alpha * s
        Q = N * P * P.T
        H = np.diag(Q.sum(axis=1) + alpha) - Q + 1.0 / m  # + 11'/m: the mean is not identified at alpha = 0
        step = np.linalg.solve(H, -g)
        t = 1.0
        while (f_new := loss(s + t * step)) > f + 1e-4 * t * (g @ step) and t > 1e-8:
            t /= 2
        s, f = s + t * step, f_new
        if np.max(np.abs(t * step)) < tol * (1 + np.max(np.abs(s))):
            break
    return s - s.mean()


@dataclass(frozen=True, repr=False)
class Ranking(Result):
    """Bradley–Terry strengths with bootstrap intervals and ranks (a Result).

    Attributes: ``strengths`` (Series by item, log-odds, mean 0), ``replicates`` (n_boot, m)
    bootstrap strengths (NaN where a resample has no finite MLE), ``counts`` (DataFrame by item:
    ``wins``, ``losses``, ``ties``), ``n_comparisons``, ``alpha``, ``confidence``.
    """

    strengths: pd.Series
    replicates: np.ndarray
    counts: pd.DataFrame
    n_comparisons: int
    alpha: float
    confidence: float

    title = "Bradley-Terry ranking"

    @property
    def items(self) -> pd.Index:
        return self.strengths.index

    def order(self) -> list:
        """Items from strongest to weakest."""
        return self.strengths.sort_values(ascending=False, kind="stable").index.tolist()

    def ranks(self) -> pd.Series:
        """Rank of each item (1 = strongest), by item."""
        return pd.Series(rankdata(-self.strengths.to_numpy(), method="ordinal"), index=self.items, name="rank")

    def win_probability(self, i, j) -> float:
        """Estimated P(``i`` beats ``j``)."""
        return float(expit(self.strengths[i] - self.strengths[j]))

    def spearman(self, truth) -> float:
        """Spearman correlation of the strengths with ``truth`` (Series by item, or values in item order)."""
        truth = truth.reindex(self.items) if isinstance(truth, pd.Series) else np.asarray(truth, dtype=float)
        return float(spearmanr(self.strengths.to_numpy(), np.asarray(truth, dtype=float)).statistic)

    def to_frame(self) -> pd.DataFrame:
        """One row per item, strongest first: strength with ``ci_low``/``ci_high``, ``rank`` with
        ``rank_ci_low``/``rank_ci_high`` (percentiles of the bootstrap ranks, rounded outwards to whole
        ranks), the strength on the Elo scale (1000 + :data:`ELO_SCALE` * strength), counts."""
        ranks_b = np.where(np.isfinite(self.replicates).all(axis=1, keepdims=True),
                           rankdata(-np.nan_to_num(self.replicates), axis=1, method="min"), np.nan)
        rows = []
        for j, item in enumerate(self.items):
            s = stats.percentile_interval(self.strengths.iloc[j], self.replicates[:, j], confidence=self.confidence)
            r = stats.percentile_interval(self.ranks().iloc[j], ranks_b[:, j], confidence=self.confidence)
            rows.append({"item": item, "strength": s.estimate, "ci_low": s.ci_low, "ci_high": s.ci_high,
                         "rank": int(r.estimate), "rank_ci_low": math.floor(r.ci_low) if np.isfinite(r.ci_low) else r.ci_low,
                         "rank_ci_high": math.ceil(r.ci_high) if np.isfinite(r.ci_high) else r.ci_high,
                         "elo": 1000.0 + ELO_SCALE * s.estimate})
        frame = pd.DataFrame(rows).set_index("item").join(self.counts)
        return frame.sort_values("rank")

    def summary(self):
        return frame_summary(f"{self.title} ({self.n_comparisons} comparisons, {self.confidence:.0%} bootstrap "
                             f"intervals over {self.replicates.shape[0]} resamples, alpha={self.alpha:g})",
                             self.to_frame())

    def to_dict(self) -> dict[str, Any]:
        return {"table": jsonable(self.to_frame().reset_index().to_dict(orient="records")), "order": jsonable(self.order()),
                "n_comparisons": self.n_comparisons, "alpha": self.alpha, "confidence": self.confidence}

    def plot(self, ax=None, title: str | None = None):
        """Strengths with their intervals, strongest on top (:func:`plural_kit.viz.intervals`)."""
        from plural_kit import viz

        return viz.intervals(self.to_frame(), estimate="strength", kind="point", title=title or self.title,
                             xlabel=f"Bradley-Terry strength (log-odds, {self.confidence:.0%} bootstrap CI)", ax=ax)

    def claim_better(self, name: str, statement: str, i, j) -> Claim:
        """``s_i - s_j > 0`` with its bootstrap interval (the same resamples as the table)."""
        a, b = self.items.get_loc(i), self.items.get_loc(j)
        iv = stats.percentile_interval(self.strengths.iloc[a] - self.strengths.iloc[b],
                                       self.replicates[:, a] - self.replicates[:, b], confidence=self.confidence)
        return Claim.from_interval(name, statement, iv, quantity=f"strength gap {i} - {j}",
                                   method=f"bootstrap over {self.n_comparisons} comparisons")

    def _repr_fields(self) -> dict[str, Any]:
        return {"items": len(self.items), "n_comparisons": self.n_comparisons, "top": self.order()[0]}


def bradley_terry(comparisons, *, items=None, alpha: float = 0.0, confidence: float = 0.95, n_boot: int = 200,
                  seed: int = 0) -> Ranking:
    """Fit Bradley–Terry strengths (ties = half a win each) with bootstrap intervals over comparisons.

    ``items``: the items to rank (default: those in the comparisons, sorted). ``n_boot=0`` skips
    the bootstrap (the intervals are then NaN). Raises ValueError for bad comparisons or, with
    ``alpha=0``, when the MLE does not exist (an item never won or never lost, or a part of the
    items never beat the rest): add comparisons or use ``alpha > 0``.
    """
    if not (isinstance(alpha, (int, float)) and alpha >= 0 and math.isfinite(alpha)):
        raise ValueError(f"alpha must be a finite number >= 0; got {alpha!r}")
    if int(n_boot) < 0:
        raise ValueError(f"n_boot must be >= 0; got {n_boot!r}")
    table = check_comparisons(comparisons)
    items = _items(table, items)
    ia, ib, y, m = items.get_indexer(table["a"]), items.get_indexer(table["b"]), table["outcome"].to_numpy(), len(items)
    W = _points(ia, ib, y, m)
    if alpha == 0 and not _identifiable(W):
        raise ValueError(
            "the Bradley-Terry MLE does not exist for these comparisons: some item never won or never lost, or a "
            "group of items never beat the others (the comparison graph is not strongly connected). Add "
            "comparisons or fit with a penalty, alpha > 0 (e.g. 0.1)")
    strengths = _fit(W, alpha)

    def refit(idx):
        Wb = _points(ia[idx], ib[idx], y[idx], m)
        return _fit(Wb, alpha) if alpha > 0 or _identifiable(Wb) else np.full(m, np.nan)

    reps = (stats.bootstrap_replicates(len(table), refit, n_boot=int(n_boot), seed=seed)[1] if n_boot
            else np.full((0, m), np.nan))
    ties = np.bincount(np.r_[ia, ib], weights=np.r_[y == 0.5, y == 0.5], minlength=m)
    wins = np.bincount(np.r_[ia, ib], weights=np.r_[y == 1, y == 0], minlength=m)
    counts = pd.DataFrame({"wins": wins, "losses": np.bincount(np.r_[ia, ib], minlength=m) - wins - ties,
                           "ties": ties}, index=items).astype(int)
    return Ranking(pd.Series(strengths, index=items, name="strength"), reps, counts, len(table), float(alpha),
                   float(confidence))


# -- Elo ------------------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class EloRatings(Result):
    """Online Elo ratings after reading the comparisons in order (a Result): ``ratings`` by item."""

    ratings: pd.Series
    k: float
    n_comparisons: int

    title = "Elo ratings"

    def order(self) -> list:
        return self.ratings.sort_values(ascending=False, kind="stable").index.tolist()

    def to_frame(self) -> pd.DataFrame:
        frame = self.ratings.rename("rating").to_frame()
        frame["rank"] = rankdata(-frame["rating"].to_numpy(), method="ordinal")
        frame.index.name = "item"
        return frame.sort_values("rank")

    def _repr_fields(self) -> dict[str, Any]:
        return {"items": len(self.ratings), "k": self.k, "top": self.order()[0]}


def _elo(ia, ib, y, m, k, initial):
    r = np.full(m, float(initial))
    for a, b, s in zip(ia, ib, y):
        e = 1.0 / (1.0 + 10.0 ** ((r[b] - r[a]) / 400.0))
        r[a] += k * (s - e)
        r[b] -= k * (s - e)
    return r


def elo(comparisons, *, items=None, k: float = 32.0, initial: float = 1000.0) -> EloRatings:
    """Elo ratings: each match, in the table's order, moves both ratings by ``k * (score - expected)``."""
    if not (isinstance(k, (int, float)) and k > 0 and math.isfinite(k)):
        raise ValueError(f"the K-factor k must be a positive number; got {k!r}")
    table = check_comparisons(comparisons)
    items = _items(table, items)
    r = _elo(items.get_indexer(table["a"]), items.get_indexer(table["b"]), table["outcome"].to_numpy(), len(items),
             float(k), initial)
    return EloRatings(pd.Series(r, index=items, name="rating"), float(k), len(table))


@dataclass(frozen=True, repr=False)
class EloOrderDependence(Result):
    """Elo ratings over reshuffled orders of the same matches, beside Bradley–Terry (a Result).

    ``ratings``: DataFrame (orders x items), row 0 the order as given; ``bt``: the BT
    :class:`Ranking` of the same matches (refitted on every order: ``bt_max_change`` is the
    largest change of a BT strength, 0 up to rounding).
    """

    ratings: pd.DataFrame
    bt: Ranking
    bt_max_change: float
    k: float

    title = "Elo over reshuffled match orders"

    def _rank_orders(self) -> list[tuple]:
        return [tuple(row.sort_values(ascending=False, kind="stable").index) for _, row in self.ratings.iterrows()]

    def n_changed(self) -> int:
        """Reshuffled orders whose Elo ranking differs from the ranking of the order as given."""
        orders = self._rank_orders()
        return sum(o != orders[0] for o in orders[1:])

    def to_frame(self) -> pd.DataFrame:
        """Per item: Elo rating in the given order, lowest and highest over orders, rank range, BT rank."""
        ranks = self.ratings.rank(axis=1, ascending=False, method="min")
        bt_rank = self.bt.ranks()
        frame = pd.DataFrame({"elo_as_given": self.ratings.iloc[0], "elo_min": self.ratings.min(),
                              "elo_max": self.ratings.max(), "rank_best": ranks.min().astype(int),
                              "rank_worst": ranks.max().astype(int), "bt_rank": bt_rank,
                              "bt_elo": 1000.0 + ELO_SCALE * self.bt.strengths})
        frame.index.name = "item"
        return frame.sort_values("bt_rank")

    def kendall_to_bt(self) -> np.ndarray:
        """Kendall's tau between each order's Elo ratings and the BT strengths, (orders,)."""
        s = self.bt.strengths.reindex(self.ratings.columns).to_numpy()
        return np.array([kendalltau(row, s).statistic for row in self.ratings.to_numpy()])

    def claims(self) -> Claims:
        n = len(self.ratings) - 1
        return Claims([claim_proportion(
            "elo_depends_on_order", "the same matches read in another order give another Elo ranking",
            self.n_changed(), n, quantity="share of reshuffled orders with another ranking", threshold=0.0,
            details={"K": self.k, "BT max change": self.bt_max_change})])

    def plot(self, ax=None):
        """Each item's Elo rating over the orders (dots) and its BT rating on the Elo scale (crosses)."""
        from plural_kit import viz

        order = self.to_frame().index
        long = self.ratings[order].melt(var_name="item", value_name="Elo rating")
        ax = viz.strip(long.assign(kind="Elo, one order"), x="item", y="Elo rating", hue="kind", order=list(order),
                       title=f"{self.title} (K={self.k:g})", ax=ax)
        ax.plot(np.arange(len(order)), self.to_frame()["bt_elo"].to_numpy(), "kx", ms=10, mew=2, label="BT (any order)")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
        return ax

    def _repr_fields(self) -> dict[str, Any]:
        return {"orders": len(self.ratings), "changed": self.n_changed(), "k": self.k}


def elo_order_dependence(comparisons, *, n_orders: int = 100, k: float = 32.0, alpha: float = 0.0,
                         n_boot: int = 200, seed: int = 0) -> EloOrderDependence:
    """Elo on the comparisons as given and on ``n_orders - 1`` seeded reshuffles of them; BT refitted on each."""
    if int(n_orders) < 2:
        raise ValueError(f"n_orders must be >= 2 (the given order and at least one reshuffle); got {n_orders!r}")
    table = check_comparisons(comparisons)
    items = _items(table)
    bt = bradley_terry(table, items=items, alpha=alpha, n_boot=n_boot, seed=seed)
    rng = np.random.default_rng(seed)
    perms = [np.arange(len(table))] + [rng.permutation(len(table)) for _ in range(int(n_orders) - 1)]
    ratings = pd.DataFrame([elo(table.iloc[p], items=items, k=k).ratings for p in perms], columns=items)
    change = max(float(np.abs(bradley_terry(table.iloc[p], items=items, alpha=alpha, n_boot=0).strengths
                              - bt.strengths).max()) for p in perms[1:11])
    return EloOrderDependence(ratings.reset_index(drop=True), bt, change, float(k))
