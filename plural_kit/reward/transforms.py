"""Transforming and combining rewards ("Transforming and Combining Rewards for Aligning LLMs").

A raw reward has an arbitrary offset and scale, so a plain sum of several rewards is ruled by
the one with the widest spread. The log-sigmoid transform centred on a reference response,
``u = log sigmoid(r(x, y) - r_ref(x))``, is the log-probability that ``y`` beats the reference:
it saturates at 0 above the reference (being better still adds almost nothing) and falls
linearly below it. The sum of transformed rewards ``sum_i u_i`` is then the log-probability of
beating the reference on *every* objective (the conjunction): one bad objective cannot be
bought back with a huge win on another.

:func:`compare_best_of_n` reranks ``n`` candidates per prompt with the raw sum and with the
conjunction and compares the winners.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from plural_kit import viz
from plural_kit.claims import Claims, claim_paired
from plural_kit.results import Result, Summary, frame_summary

COMBINE = ("sum", "conjunction")


def _finite(x, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise ValueError(f"'{name}' has NaN or infinite values")
    return arr


def log_sigmoid_centre(rewards, reference) -> np.ndarray:
    """``log sigmoid(rewards - reference)`` (nats, <= 0), broadcast; e.g. (n,) with a scalar or (n,)."""
    r, ref = _finite(rewards, "rewards"), _finite(reference, "reference")
    try:
        delta = r - ref
    except ValueError:
        raise ValueError(f"'rewards' {r.shape} and 'reference' {ref.shape} do not broadcast") from None
    return -np.logaddexp(0.0, -delta)


def conjunction(rewards, reference) -> np.ndarray:
    """``sum_i log sigmoid(r_i - ref_i)`` over the last axis (the objectives): (..., m) -> (...)."""
    r = _finite(rewards, "rewards")
    if r.ndim == 0:
        raise ValueError("'rewards' needs a last axis of objectives; got a scalar")
    return log_sigmoid_centre(r, reference).sum(axis=-1)


def _check_candidates(rewards, reference) -> tuple[np.ndarray, np.ndarray]:
    r = _finite(rewards, "rewards")
    if r.ndim != 3 or r.shape[1] < 2:
        raise ValueError(
            f"'rewards' must have shape (n_prompts, n_candidates >= 2, n_objectives); got {r.shape}"
        )
    ref = _finite(reference, "reference")
    if ref.shape != (r.shape[0], r.shape[2]):
        raise ValueError(f"'reference' must have shape (n_prompts, n_objectives) = {(r.shape[0], r.shape[2])}; "
                         f"got {ref.shape}")
    return r, ref


def best_of_n(rewards, reference=None, combine: str = "conjunction") -> np.ndarray:
    """Index of the best candidate per prompt; ``rewards`` (n_prompts, n_candidates, n_objectives).

    ``combine="sum"``: the largest raw sum; ``"conjunction"``: the largest sum of log-sigmoid
    rewards centred on ``reference`` (n_prompts, n_objectives), the reference response's rewards.
    """
    if combine not in COMBINE:
        raise ValueError(f"combine must be one of {COMBINE}; got {combine!r}")
    if combine == "sum":
        r = _check_candidates(rewards, np.zeros((np.shape(rewards)[0], np.shape(rewards)[-1])))[0]
        return r.sum(axis=2).argmax(axis=1)
    if reference is None:
        raise ValueError("combine='conjunction' needs 'reference': the reference response's rewards")
    r, ref = _check_candidates(rewards, reference)
    return conjunction(r, ref[:, None, :]).argmax(axis=1)


@dataclass(frozen=True, repr=False)
class BestOfN(Result):
    """Winners of best-of-n reranking by the raw sum and by the conjunction.

    ``frame``: one row per (prompt, method) with each objective's reward of the winner minus the
    reference's (``margin_<objective>``) and ``all_above`` (the winner beats the reference on
    every objective).
    """

    frame: pd.DataFrame
    objectives: tuple[str, ...]
    n_candidates: int

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def rates(self) -> pd.DataFrame:
        """Per method: the share of winners above the reference on each objective and on all."""
        cols = [f"margin_{o}" for o in self.objectives]
        above = (self.frame[cols] > 0).rename(columns=dict(zip(cols, self.objectives, strict=True)))
        above["all"] = self.frame["all_above"]
        return above.groupby(self.frame["method"]).mean().loc[list(COMBINE)]

    def summary(self) -> Summary:
        return frame_summary(
            f"Best-of-{self.n_candidates} over {self.frame['prompt'].nunique()} prompts: share of winners above "
            "the reference", self.rates(), notes="sum = raw sum of rewards; conjunction = sum of log-sigmoid "
            "rewards centred on the reference")

    def to_dict(self) -> dict:
        return {"objectives": list(self.objectives), "n_candidates": self.n_candidates,
                "rates": self.rates().to_dict(orient="index"), "claims": self.claims().to_dict()}

    def _repr_fields(self) -> dict:
        return {"n_prompts": self.frame["prompt"].nunique(), "n_candidates": self.n_candidates,
                "objectives": len(self.objectives)}

    def claims(self, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """``conjunction_all_above``: the conjunction's winners beat the reference on every objective
        more often than the raw sum's (paired bootstrap over prompts)."""
        by = {m: g.sort_values("prompt")["all_above"].to_numpy(float) for m, g in self.frame.groupby("method")}
        return Claims([claim_paired(
            "conjunction_all_above",
            "reranking by the conjunction picks responses that beat the reference on every objective more often "
            "than the raw sum", by["conjunction"], by["sum"], quantity="difference in share above on all",
            confidence=confidence, n_boot=n_boot, seed=seed)])

    def plot(self, ax=None):
        """Share of winners above the reference per objective (and on all), by method."""
        return viz.bars(self.rates().T, ylabel="share of winners above the reference",
                        title=f"best-of-{self.n_candidates}: raw sum vs conjunction", ax=ax)


def compare_best_of_n(rewards, reference, objectives: Sequence[str] | None = None, truth=None,
                      truth_reference=None) -> BestOfN:
    """Rerank each prompt's candidates with the raw sum and the conjunction; a :class:`BestOfN`.

    ``rewards`` (n_prompts, n_candidates, n_objectives), ``reference`` (n_prompts, n_objectives):
    what the reranking sees. ``truth``, ``truth_reference`` (same shapes, optional): the true
    rewards the winners are judged by (default: the same as the reranking's).
    """
    r, ref = _check_candidates(rewards, reference)
    if (truth is None) != (truth_reference is None):
        raise ValueError("pass both 'truth' and 'truth_reference', or neither")
    t, t_ref = (r, ref) if truth is None else _check_candidates(truth, truth_reference)
    if t.shape != r.shape:
        raise ValueError(f"'truth' must have the shape of 'rewards' {r.shape}; got {t.shape}")
    names = tuple(objectives) if objectives is not None else tuple(f"objective_{j}" for j in range(r.shape[2]))
    if len(names) != r.shape[2]:
        raise ValueError(f"'objectives' names {len(names)} objectives; rewards have {r.shape[2]}")
    rows = []
    prompts = np.arange(r.shape[0])
    for method in COMBINE:
        margin = t[prompts, best_of_n(r, ref, method)] - t_ref  # (n_prompts, m)
        frame = pd.DataFrame(margin, columns=[f"margin_{o}" for o in names])
        frame.insert(0, "method", method)
        frame.insert(0, "prompt", prompts)
        frame["all_above"] = (margin > 0).all(axis=1)
        rows.append(frame)
    return BestOfN(pd.concat(rows, ignore_index=True), names, r.shape[1])
