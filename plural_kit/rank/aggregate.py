"""Whose leaderboard? Rankings of groups who disagree, pooled by different rules.

From comparisons with a ``group`` column (who judged), :func:`aggregate` fits one Bradley–Terry
leaderboard per group and ranks the items by several rules on all judgments together:

* ``bt`` — Bradley–Terry on the pooled judgments (every judgment counts once: big groups weigh more);
* ``borda`` — each item's mean share of points against every other item (Borda count on the
  pairwise majorities);
* ``copeland`` — the number of items it beats by a majority of judgments (half for an exact tie);
* ``groups_equal`` — the mean of the groups' own BT strengths (every group counts once).

A **Condorcet winner** beats every other item by a majority; with groups who disagree there may
be none, because the majorities can form a **cycle** (x beats y, y beats z, z beats x) although each
group on its own is consistent. For each rule, :class:`Aggregation` reports how far its ranking
is from each group's own (the share of item pairs it orders the other way) and which group it
serves worst.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import adjusted_rand_score

from plural_kit import stats
from plural_kit.claims import Claim, claim_proportion
from plural_kit.rank.rankings import _fit, _items, _points, check_comparisons
from plural_kit.rank.tournaments import NoisyJudge
from plural_kit.results import Result, frame_summary

__all__ = ["RULES", "Aggregation", "GroupDiscovery", "aggregate", "condorcet_cycle", "condorcet_winner",
           "discover_groups", "majority_matrix", "rank_distance", "simulate_groups"]

RULES = ("bt", "borda", "copeland", "groups_equal")


def majority_matrix(comparisons, items=None) -> pd.DataFrame:
    """Share of the points between row item and column item won by the row item (NaN: never met)."""
    table = check_comparisons(comparisons)
    items = _items(table, items)
    W = _points(items.get_indexer(table["a"]), items.get_indexer(table["b"]), table["outcome"].to_numpy(), len(items))
    return pd.DataFrame(_shares(W), index=items, columns=items)


def _shares(W: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return W / (W + W.T)


def condorcet_winner(majority: pd.DataFrame):
    """The item that beats every other by a majority (share > 1/2), or None."""
    beats = (majority.to_numpy() > 0.5).sum(axis=1)
    hit = np.flatnonzero(beats == len(majority) - 1)
    return majority.index[hit[0]] if hit.size else None


def condorcet_cycle(majority: pd.DataFrame) -> list | None:
    """Three items ``[x, y, z]`` with x beating y, y beating z and z beating x by majorities, or None.

    (A majority relation with no Condorcet ranking among some items always holds such a triple.)
    The triple with the largest smallest margin is returned.
    """
    M = majority.to_numpy()
    best, found = -1.0, None
    for i, j, k in permutations(range(len(M)), 3):
        if i < j and i < k:  # each cycle once, starting from its first item
            margin = min(M[i, j], M[j, k], M[k, i]) - 0.5
            if margin > 0 and margin > best:
                best, found = margin, [majority.index[i], majority.index[j], majority.index[k]]
    return found


def rank_distance(scores_a, scores_b) -> float:
    """Share of item pairs that two score vectors (m,) order in opposite ways, a pair tied in one of them
    counting half (the expected share when ties are broken at random): 0 same ranking, 1 reversed."""
    a, b = np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise ValueError(f"rank_distance needs two score vectors of the same length >= 2; got {a.shape}, {b.shape}")
    i, j = np.triu_indices(a.size, 1)
    agree = np.sign(a[i] - a[j]) * np.sign(b[i] - b[j])
    return float(np.mean(np.where(agree < 0, 1.0, np.where(agree == 0, 0.5, 0.0))))


def _rule_scores(W_groups: dict, alpha: float) -> tuple[pd.DataFrame, dict]:
    """(scores (m, rules), group strengths {g: (m,)}) from each group's points matrix."""
    W = sum(W_groups.values())
    S = _shares(W)
    off = ~np.eye(len(W), dtype=bool)
    own = {g: _fit(Wg, alpha) for g, Wg in W_groups.items()}
    scores = {
        "bt": _fit(W, alpha),
        "borda": np.nanmean(np.where(off, S, np.nan), axis=1),
        "copeland": np.where(off, (S > 0.5) + 0.5 * (S == 0.5), 0.0).sum(axis=1),
        "groups_equal": np.mean(list(own.values()), axis=0),
    }
    return scores, own


@dataclass(frozen=True, repr=False)
class Aggregation(Result):
    """Per-group leaderboards and the pooled rules (a Result).

    ``scores``: DataFrame (items x rules); ``group_strengths``: DataFrame (items x groups), each
    group's own BT strengths; ``majority``: the pooled majority matrix; ``cycle``: a Condorcet
    cycle of the pooled majorities or None; ``group_sizes``: judgments per group; ``alpha``.
    ``replicates``: {"distance": (n_boot, rules, groups), "cycle_margin": (n_boot,)} from a
    bootstrap of the judgments within groups.
    """

    scores: pd.DataFrame
    group_strengths: pd.DataFrame
    majority: pd.DataFrame
    cycle: list | None
    group_sizes: pd.Series
    replicates: dict
    alpha: float
    confidence: float = 0.95

    title = "Whose leaderboard? Rules and groups"

    @property
    def condorcet_winner(self):
        return condorcet_winner(self.majority)

    def distances(self) -> pd.DataFrame:
        """Rank distance of each rule's ranking (rows) to each group's own (columns), in [0, 1]."""
        return pd.DataFrame([[rank_distance(self.scores[r], self.group_strengths[g]) for g in self.group_strengths]
                             for r in self.scores], index=pd.Index(self.scores.columns, name="rule"),
                            columns=self.group_strengths.columns)

    def leaderboards(self) -> pd.DataFrame:
        """Rank of each item (1 = top) by each group's own BT and by each rule."""
        both = pd.concat([self.group_strengths.add_prefix("group "), self.scores], axis=1)
        return both.rank(ascending=False, method="min").astype(int).sort_values("bt")

    def to_frame(self) -> pd.DataFrame:
        """Per rule: its order, the distance to each group, the worst-off group and its distance."""
        d = self.distances()
        frame = d.add_prefix("distance to ").copy()
        frame.insert(0, "order", [" > ".join(map(str, self.scores[r].sort_values(ascending=False).index))
                                  for r in d.index])
        frame["worst_off"] = d.idxmax(axis=1)
        frame["worst_distance"] = d.max(axis=1)
        return frame

    def summary(self):
        cyc = " > ".join(map(str, [*self.cycle, self.cycle[0]])) if self.cycle else "none"
        return frame_summary(self.title, self.to_frame(), [
            f"judgments per group: {self.group_sizes.to_dict()}", f"Condorcet winner: {self.condorcet_winner}",
            f"Condorcet cycle of the pooled majorities: {cyc}"])

    def cycle_claim(self, name: str, statement: str) -> Claim:
        """The smallest of the cycle's three majority margins (share - 1/2) vs 0, bootstrap within groups."""
        if self.cycle is None:
            raise ValueError("the pooled majorities have no Condorcet cycle: no cycle to make a claim about")
        x, y, z = self.cycle
        M = self.majority
        est = min(M.loc[x, y], M.loc[y, z], M.loc[z, x]) - 0.5
        iv = stats.percentile_interval(est, self.replicates["cycle_margin"], confidence=self.confidence)
        return Claim.from_interval(name, statement, iv, quantity="smallest majority margin in the cycle",
                                   method=f"bootstrap of judgments within groups, {len(self.replicates['cycle_margin'])}",
                                   details={"cycle": " > ".join(map(str, [x, y, z, x]))})

    def distance_claim(self, name: str, statement: str, rule: str, group, other, *, threshold: float = 0.0) -> Claim:
        """Distance of ``rule`` to group ``other`` minus to ``group`` vs ``threshold`` (``> 0``: the
        rule is closer to ``group``); ``group="worst"`` compares the worst-off group's distance under
        ``rule`` (first) and ``other`` (a second rule): ``> 0`` means ``other`` serves it better."""
        rules, groups = list(self.scores.columns), list(self.group_strengths.columns)
        d, reps = self.distances(), self.replicates["distance"]
        if group == "worst":
            est = d.loc[rule].max() - d.loc[other].max()
            rep = reps[:, rules.index(rule)].max(axis=1) - reps[:, rules.index(other)].max(axis=1)
            quantity = f"worst-off distance {rule} - {other}"
        else:
            est = d.loc[rule, other] - d.loc[rule, group]
            rep = reps[:, rules.index(rule), groups.index(other)] - reps[:, rules.index(rule), groups.index(group)]
            quantity = f"{rule}: distance to {other} - to {group}"
        iv = stats.percentile_interval(est, rep, confidence=self.confidence)
        return Claim.from_interval(name, statement, iv, quantity=quantity, threshold=threshold,
                                   method=f"bootstrap of judgments within groups, {len(rep)}")

    def plot(self, ax=None):
        """Heatmap of each rule's rank distance to each group."""
        from plural_kit import viz

        return viz.heatmap(self.distances(), vmin=0, vmax=1, cmap="RdYlGn_r",
                           title="rank distance of each rule (rows) to each group's own ranking", ax=ax)

    def _repr_fields(self) -> dict[str, Any]:
        return {"items": len(self.scores), "groups": self.group_strengths.shape[1], "cycle": self.cycle is not None}


def aggregate(comparisons, *, group: str = "group", alpha: float = 0.1, confidence: float = 0.95,
              n_boot: int = 200, seed: int = 0) -> Aggregation:
    """Per-group BT leaderboards and the pooled :data:`RULES` for comparisons with a ``group`` column.

    ``alpha``: the BT penalty (> 0 lets a group that always prefers one item have finite
    strengths). The bootstrap resamples judgments within each group.
    """
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0 (a consistent group often has an item that never loses); got {alpha!r}")
    table = check_comparisons(comparisons, columns=(group,))
    items = _items(table)
    groups = pd.Index(pd.unique(table[group])).sort_values()
    if len(groups) < 2:
        raise ValueError(f"aggregate needs judgments of at least 2 groups in column {group!r}; got {groups.tolist()}")
    ia, ib, y = items.get_indexer(table["a"]), items.get_indexer(table["b"]), table["outcome"].to_numpy()
    gi = groups.get_indexer(table[group])
    m = len(items)

    def points(idx):
        return {g: _points(ia[idx][gi[idx] == k], ib[idx][gi[idx] == k], y[idx][gi[idx] == k], m)
                for k, g in enumerate(groups)}

    scores, own = _rule_scores(points(np.arange(len(table))), alpha)
    scores = pd.DataFrame(scores, index=items)
    own = pd.DataFrame(own, index=items)
    majority = pd.DataFrame(_shares(sum(points(np.arange(len(table))).values())), index=items, columns=items)
    cycle = condorcet_cycle(majority)
    cyc = [items.get_loc(c) for c in cycle] if cycle else None

    def replicate(idx):
        Wg = points(idx)
        sc, gs = _rule_scores(Wg, alpha)
        dist = [[rank_distance(sc[r], gs[g]) for g in groups] for r in RULES]
        margin = np.nan
        if cyc:
            S = _shares(sum(Wg.values()))
            margin = min(S[cyc[0], cyc[1]], S[cyc[1], cyc[2]], S[cyc[2], cyc[0]]) - 0.5
        return np.r_[np.ravel(dist), margin]

    _, reps = stats.bootstrap_replicates(gi, replicate, n_boot=int(n_boot), seed=seed)
    replicates = {"distance": reps[:, :-1].reshape(len(reps), len(RULES), len(groups)), "cycle_margin": reps[:, -1]}
    sizes = table[group].value_counts().reindex(groups).rename("judgments")
    return Aggregation(scores[list(RULES)], own, majority, cycle, sizes, replicates, float(alpha), float(confidence))


def simulate_groups(group_skills: pd.DataFrame, judgments: dict | pd.Series, *, raters_per_group: int = 20,
                    seed: int = 0) -> pd.DataFrame:
    """Judgments of groups with their own true skills: comparisons table with ``group`` and ``rater``.

    ``group_skills``: DataFrame (groups x items) of BT strengths; ``judgments``: number of
    judgments per group, each by one of its ``raters_per_group`` raters (``"<group>-<k>"``, drawn
    uniformly). Each judgment is a pair of distinct items drawn uniformly, decided by the group's
    Bradley–Terry probabilities (:class:`~plural_kit.rank.tournaments.NoisyJudge`).
    """
    judgments = pd.Series(judgments)
    missing = judgments.index.difference(group_skills.index)
    if len(missing):
        raise ValueError(f"judgments names groups {missing.tolist()} that have no row in group_skills")
    if (judgments < 1).any():
        raise ValueError("every group needs at least one judgment")
    if int(raters_per_group) < 1:
        raise ValueError(f"raters_per_group must be a positive number; got {raters_per_group!r}")
    rng, who = np.random.default_rng(seed), np.random.default_rng([seed, 1])  # judgments, raters
    items = group_skills.columns.tolist()
    frames = []
    for g, n in judgments.items():
        i = rng.integers(0, len(items), int(n))
        j = (i + rng.integers(1, len(items), int(n))) % len(items)
        a, b = [items[k] for k in i], [items[k] for k in j]
        outcome = NoisyJudge(group_skills.loc[g])(a, b, rng)
        raters = [f"{g}-{k}" for k in who.integers(0, int(raters_per_group), int(n))]
        frames.append(pd.DataFrame({"a": a, "b": b, "outcome": outcome, "group": g, "rater": raters}))
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True, repr=False)
class GroupDiscovery(Result):
    """Groups of raters found from their judgments alone, against the true groups (a Result).

    ``found``: Series rater -> discovered group; ``truth``: Series rater -> true group.
    """

    found: pd.Series
    truth: pd.Series

    title = "Groups of raters discovered from anonymous judgments"

    def to_frame(self) -> pd.DataFrame:
        """Raters per true group (rows) and discovered group (columns)."""
        return pd.crosstab(self.truth.rename("true group"), self.found.rename("discovered group"))

    def n_matched(self) -> int:
        """Raters whose true group is the most common true group of their discovered group."""
        return int(self.to_frame().max(axis=0).sum())

    def claim(self, name: str, statement: str) -> Claim:
        """Share of raters matched (:meth:`n_matched`) vs chance, one over the number of true groups (Wilson)."""
        n_groups = self.truth.nunique()
        return claim_proportion(name, statement, self.n_matched(), len(self.truth), quantity="share of raters matched",
                                threshold=1.0 / n_groups,
                                details={"ARI": adjusted_rand_score(self.truth, self.found.reindex(self.truth.index))})

    def _repr_fields(self) -> dict[str, Any]:
        return {"raters": len(self.found), "groups": self.found.nunique(), "matched": self.n_matched()}


def discover_groups(comparisons, n_groups: int, *, rater: str = "rater", group: str | None = "group",
                    seed: int = 0) -> GroupDiscovery:
    """Find ``n_groups`` groups of raters from who preferred what, with :class:`plural_kit.reward.MixtureBT`
    on one-hot item features (one BT leaderboard per component; ties are left out). ``group``: the
    column of true groups to compare with (each rater's first)."""
    from plural_kit.reward import MixtureBT

    table = check_comparisons(comparisons, columns=(rater, *([group] if group else [])))
    table = table[table["outcome"] != 0.5]
    items = _items(table)
    eye = np.eye(len(items))
    won = table["outcome"].to_numpy() == 1
    winner, loser = np.where(won, table["a"], table["b"]), np.where(won, table["b"], table["a"])
    model = MixtureBT(n_components=n_groups, device="cpu", random_state=seed).fit(
        eye[items.get_indexer(winner)], eye[items.get_indexer(loser)], table[rater].to_numpy())
    found = model.predict_groups()
    truth = table.groupby(rater)[group].first().reindex(found.index) if group else found
    return GroupDiscovery(found, truth)
