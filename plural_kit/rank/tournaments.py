"""Tournament designs simulated from known skills and a judge of given noise.

Which matches to ask a judge for? Three designs, each producing batches of matches:

* **round robin** — every pair once per cycle (``m (m - 1) / 2`` judgments), in a random order;
* **Swiss** — rounds in which players with similar scores (wins, ties half) meet, never twice in
  one Swiss tournament (``ceil(log2 m) + 1`` rounds, then a new tournament with scores reset);
* **single elimination** — a bracket, as VARCO Arena runs one per prompt: random seeding, byes
  when ``m`` is not a power of two, ``m - 1`` matches and one winner.

:class:`NoisyJudge` answers a match from the true Bradley–Terry probability ``sigmoid(s_a - s_b)``
and, with probability ``noise``, by a coin flip instead. :func:`design_curves` runs each design
to a budget of judgments, ranks the items by Bradley–Terry on the matches so far and measures the
Spearman correlation with the true skills, over seeded simulations.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import spearmanr

from plural_kit import stats
from plural_kit.claims import Claim, claim_mean, claim_paired
from plural_kit.rank.rankings import fit_strengths
from plural_kit.results import Result, frame_summary

__all__ = ["DESIGNS", "DesignCurves", "NoisyJudge", "design_curves", "round_robin", "run_design",
           "simulate_comparisons", "single_elimination", "swiss"]

DESIGNS = ("round_robin", "swiss", "single_elimination")


def _check_skills(skills) -> pd.Series:
    s = skills if isinstance(skills, pd.Series) else pd.Series(np.asarray(skills, dtype=float))
    if s.size < 2:
        raise ValueError(f"skills must name at least 2 items; got {s.size}")
    if not np.isfinite(s.to_numpy(dtype=float)).all():
        raise ValueError("skills must be finite numbers (log-odds)")
    if s.index.has_duplicates:
        raise ValueError(f"skills has duplicate items: {s.index[s.index.duplicated()][:5].tolist()}")
    return s.astype(float)


@dataclass(frozen=True)
class NoisyJudge:
    """A simulated judge: ``P(a wins) = (1 - noise) * sigmoid(s_a - s_b) + noise / 2``.

    ``skills``: Series of true strengths (log-odds) by item; ``noise`` in [0, 1]: the share of
    matches decided by a coin flip.
    """

    skills: pd.Series
    noise: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "skills", _check_skills(self.skills))
        object.__setattr__(self, "_lookup", self.skills.to_dict())
        if not 0.0 <= float(self.noise) <= 1.0:
            raise ValueError(f"noise must be in [0, 1] (share of coin-flip judgments); got {self.noise!r}")

    def p_win(self, a: Sequence, b: Sequence) -> np.ndarray:
        """P(``a`` beats ``b``) for each match, (n,)."""
        s = self._lookup
        gap = np.array([s[i] - s[j] for i, j in zip(a, b)], dtype=float)
        return (1 - self.noise) * expit(gap) + self.noise / 2

    def __call__(self, a: Sequence, b: Sequence, rng: np.random.Generator) -> np.ndarray:
        """Outcomes for ``a`` (1 win, 0 loss), (n,)."""
        return (rng.random(len(a)) < self.p_win(a, b)).astype(float)


def simulate_comparisons(judge: NoisyJudge, pairs: Sequence[tuple], *, seed: int = 0) -> pd.DataFrame:
    """The judge's verdicts on ``pairs`` [(a, b), ...]: comparisons table ``a, b, outcome``."""
    if not len(pairs):
        raise ValueError("pairs is empty: nothing to judge")
    return _judged(list(pairs), judge, np.random.default_rng(seed))


def _judged(pairs: list[tuple], judge: Callable, rng: np.random.Generator) -> pd.DataFrame:
    a, b = zip(*pairs)
    return pd.DataFrame({"a": a, "b": b, "outcome": judge(a, b, rng)})


# -- designs: each yields batches of matches, given the outcomes so far --------------------------------

def round_robin(items: Sequence, rng: np.random.Generator) -> list[tuple]:
    """Every pair of ``items`` once, in a random order, each with a random side for ``a``."""
    items = list(items)
    pairs = [(items[i], items[j]) if rng.random() < 0.5 else (items[j], items[i])
             for i in range(len(items)) for j in range(i + 1, len(items))]
    return [pairs[k] for k in rng.permutation(len(pairs))]


def _pair_without_rematch(ordered: list, played: set) -> list[tuple] | None:
    if not ordered:
        return []
    first, rest = ordered[0], ordered[1:]
    for k, other in enumerate(rest):
        if frozenset((first, other)) not in played:
            tail = _pair_without_rematch(rest[:k] + rest[k + 1:], played)
            if tail is not None:
                return [(first, other), *tail]
    return None


def swiss(items: Sequence, judge: Callable, rng: np.random.Generator) -> Iterator[pd.DataFrame]:
    """Swiss rounds: sort by score (random among equals), pair neighbours with no rematch, the lowest
    without a bye sits out when the count is odd. One tournament has ``ceil(log2 m) + 1`` rounds."""
    items = list(items)
    n_rounds = max(1, min(math.ceil(math.log2(len(items))) + 1, len(items) - 1))
    tournament = 0
    while True:
        score, played, byes = dict.fromkeys(items, 0.0), set(), set()
        for rnd in range(n_rounds):
            tiebreak = rng.random(len(items))
            ordered = [items[k] for k in sorted(range(len(items)), key=lambda k: (-score[items[k]], tiebreak[k]))]
            if len(ordered) % 2:
                sit = next(i for i in reversed(ordered) if i not in byes)
                byes.add(sit)
                ordered.remove(sit)
            pairs = _pair_without_rematch(ordered, played)
            if pairs is None:  # no pairing without a rematch is left: this tournament is over
                break
            a, b = zip(*pairs)
            y = judge(a, b, rng)
            for i, j, o in zip(a, b, y):
                score[i] += o
                score[j] += 1 - o
                played.add(frozenset((i, j)))
            yield pd.DataFrame({"a": a, "b": b, "outcome": y, "tournament": tournament, "round": rnd})
        tournament += 1


def single_elimination(items: Sequence, judge: Callable, rng: np.random.Generator) -> pd.DataFrame:
    """One bracket: random seeding; in the first round ``2^k - m`` items get a bye (``2^k`` the next
    power of two), then winners meet winners until one is left. ``m - 1`` matches; a tie is decided
    by a coin flip for who goes on (its outcome 0.5 is kept)."""
    alive = [items[k] for k in rng.permutation(len(items))]
    byes = 2 ** math.ceil(math.log2(len(alive))) - len(alive)
    rows, rnd = [], 0
    while len(alive) > 1:
        through, playing = (alive[:byes], alive[byes:]) if rnd == 0 else ([], alive)
        a, b = playing[0::2], playing[1::2]
        y = judge(a, b, rng)
        winners = [i if o > 0.5 or (o == 0.5 and rng.random() < 0.5) else j for i, j, o in zip(a, b, y)]
        rows += [(i, j, o, rnd) for i, j, o in zip(a, b, y)]
        alive = through + winners
        rnd += 1
    return pd.DataFrame(rows, columns=["a", "b", "outcome", "round"])


def run_design(design: str, items: Sequence, judge: Callable, n_judgments: int, *, seed: int = 0) -> pd.DataFrame:
    """``n_judgments`` matches of one design (the last batch cut short), in the order played.

    ``judge(a, b, rng) -> outcomes``, e.g. a :class:`NoisyJudge`. Returns a comparisons table with
    ``batch`` (the cycle, Swiss round or bracket the match belongs to).
    """
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}; got {design!r}")
    if int(n_judgments) < 1:
        raise ValueError(f"n_judgments must be a positive number of matches; got {n_judgments!r}")
    items = list(items)
    if len(items) < 2 or len(set(items)) != len(items):
        raise ValueError(f"a tournament needs at least 2 distinct items; got {items[:10]}")
    rng = np.random.default_rng(seed)
    if design == "swiss":
        batches: Iterator[pd.DataFrame] = swiss(items, judge, rng)
    elif design == "round_robin":
        batches = (_judged(round_robin(items, rng), judge, rng) for _ in iter(int, 1))
    else:
        batches = (single_elimination(items, judge, rng) for _ in iter(int, 1))
    frames, total = [], 0
    for batch_no, frame in enumerate(batches):
        frames.append(frame.assign(batch=batch_no))
        total += len(frame)
        if total >= n_judgments:
            break
    return pd.concat(frames, ignore_index=True).iloc[:int(n_judgments)]


# -- how many judgments each design needs ---------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class DesignCurves(Result):
    """Spearman correlation with the true skills per design and budget, over simulations (a Result).

    ``correlations``: long DataFrame ``design, judgments, simulation, spearman``; ``target`` the
    correlation to reach; ``noise`` the judge's; ``n_items``.
    """

    correlations: pd.DataFrame
    target: float
    noise: float
    n_items: int
    confidence: float = 0.95

    title = "Rank correlation with the truth by design"

    def to_frame(self) -> pd.DataFrame:
        """Per design and budget: mean Spearman with a bootstrap interval over simulations."""
        rows = []
        for (design, n), part in self.correlations.groupby(["design", "judgments"], sort=False):
            iv = stats.bootstrap_ci(part["spearman"].to_numpy(), confidence=self.confidence, seed=0)
            rows.append({"design": design, "judgments": int(n), "spearman": iv.estimate, "ci_low": iv.ci_low,
                         "ci_high": iv.ci_high, "simulations": len(part)})
        return pd.DataFrame(rows)

    def judgments_needed(self) -> pd.Series:
        """Per design: the smallest budget whose mean Spearman reaches ``target`` (NaN: none did)."""
        f = self.to_frame()
        hit = f[f["spearman"] >= self.target].groupby("design", sort=False)["judgments"].min()
        return hit.reindex(pd.unique(f["design"])).rename(f"judgments for Spearman {self.target:g}")

    def summary(self):
        needed = self.judgments_needed()
        notes = [f"{d}: {'never within the budgets' if np.isnan(v) else int(v)}" for d, v in needed.items()]
        return frame_summary(f"{self.title} ({self.n_items} items, judge noise {self.noise:g})", self.to_frame(),
                             [f"judgments needed for Spearman {self.target:g}:", *notes])

    def claim_better(self, name: str, statement: str, design: str, baseline: str, judgments: int) -> Claim:
        """Mean Spearman of ``design`` minus ``baseline`` at a budget, paired over simulations."""
        c = self.correlations[self.correlations["judgments"] == judgments].pivot(
            index="simulation", columns="design", values="spearman")
        if c.empty or design not in c or baseline not in c:
            raise ValueError(f"no simulations of {design!r} and {baseline!r} at {judgments} judgments")
        return claim_paired(name, statement, c[design].to_numpy(), c[baseline].to_numpy(),
                            quantity="Spearman difference", confidence=self.confidence,
                            method=f"paired bootstrap over {len(c)} simulations",
                            details={"judgments": int(judgments)})

    def claim_reaches(self, name: str, statement: str, design: str, judgments: int) -> Claim:
        """Mean Spearman of ``design`` at a budget vs ``target`` (bootstrap over simulations)."""
        part = self.correlations[(self.correlations["design"] == design) & (self.correlations["judgments"] == judgments)]
        if part.empty:
            raise ValueError(f"no simulations of {design!r} at {judgments} judgments")
        return claim_mean(name, statement, part["spearman"].to_numpy(), quantity="mean Spearman",
                          threshold=self.target, confidence=self.confidence,
                          method=f"bootstrap over {len(part)} simulations", details={"judgments": int(judgments)})

    def plot(self, ax=None):
        """Mean Spearman against judgments, one line per design, with its band and the target."""
        from plural_kit import viz

        return viz.curve(self.to_frame(), x="judgments", y="spearman", hue="design", band=("ci_low", "ci_high"),
                         references={f"target {self.target:g}": self.target}, ylabel="Spearman with the true skills",
                         title=f"{self.title} (judge noise {self.noise:g})", ax=ax)

    def _repr_fields(self) -> dict[str, Any]:
        return {"designs": self.correlations["design"].nunique(), "n_items": self.n_items, "noise": self.noise}


def design_curves(skills, budgets: Sequence[int], *, noise: float = 0.2, designs: Sequence[str] = DESIGNS,
                  n_sims: int = 20, target: float = 0.9, alpha: float = 0.1, seed: int = 0) -> DesignCurves:
    """Run every design ``n_sims`` times to ``max(budgets)`` judgments (simulation ``k`` seeded
    ``seed + k``, the same for every design) and score the BT ranking (``alpha``: its penalty, needed
    when an item has lost every match) of the first ``n`` matches for each ``n`` in ``budgets``."""
    judge = NoisyJudge(skills, noise)
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 1:
        raise ValueError(f"budgets must be positive numbers of judgments; got {budgets}")
    if int(n_sims) < 2:
        raise ValueError(f"n_sims must be >= 2 (an interval needs several simulations); got {n_sims!r}")
    if alpha <= 0:
        raise ValueError("alpha must be > 0: with few matches some item has lost them all and the MLE is infinite")
    items, truth = pd.Index(judge.skills.index), judge.skills.to_numpy()
    rows = []
    for design in designs:
        for k in range(int(n_sims)):
            played = run_design(design, items, judge, budgets[-1], seed=seed + k)
            ia, ib, y = items.get_indexer(played["a"]), items.get_indexer(played["b"]), played["outcome"].to_numpy()
            for n in budgets:
                s = fit_strengths(ia[:n], ib[:n], y[:n], len(items), alpha)
                rows.append({"design": design, "judgments": n, "simulation": k,
                             "spearman": spearmanr(s, truth).statistic if np.ptp(s) > 0 else 0.0})
    frame = pd.DataFrame(rows)  # a correlation of 0 where every strength is equal (no information)
    return DesignCurves(frame, float(target), float(noise), len(items))
