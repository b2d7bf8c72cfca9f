"""GlobalOpinionQA: how similar are the model's answers to each country's survey answers?

Durmus et al. (2023) compare a model's answer distribution on each Pew Global Attitudes / World
Values Survey question with each country's distribution of answers, by similarity
(1 − Jensen–Shannon distance), and average over questions per country. The data come from
:func:`plural_kit.data.load_global_opinion_qa` (online users; CC BY-NC-SA 4.0, so nothing is
bundled). Questions have 2–10+ options; items are scored in groups of equal option count.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from dataclasses import dataclass

from plural_kit import stats, viz
from plural_kit.audit.distributions import (
    AnswerScorer,
    MultipleChoiceItem,
    PromptDesign,
    answer_distributions,
    option_labels,
)
from plural_kit.audit.metrics import AuditInputError, similarity
from plural_kit.engine import Engine
from plural_kit.io import jsonable
from plural_kit.results import Result

__all__ = ["CountrySimilarity", "OpinionDistributions", "country_similarity", "opinion_distributions",
           "opinion_items"]


def opinion_items(tidy: pd.DataFrame, max_options: int = 9) -> list[MultipleChoiceItem]:
    """One item per ``question_id`` of the tidy GlobalOpinionQA table (``group`` = source).

    Questions with more than ``max_options`` options (9 = the limit of single-digit labels)
    or duplicate options are skipped.
    """
    missing = {"question_id", "question", "options", "source"} - set(tidy.columns)
    if missing:
        raise AuditInputError(f"GlobalOpinionQA table lacks columns {sorted(missing)}")
    items = []
    for qid, row in tidy.drop_duplicates("question_id").set_index("question_id").iterrows():
        opts = tuple(str(o) for o in row["options"])
        if 2 <= len(opts) <= max_options and len(set(opts)) == len(opts):
            items.append(MultipleChoiceItem(str(qid), str(row["question"]), opts, group=str(row["source"])))
    if not items:
        raise AuditInputError("no GlobalOpinionQA question has a usable option list")
    return items


@dataclass(repr=False)
class OpinionDistributions(Result):
    """The model's answer distribution per GlobalOpinionQA question (:func:`opinion_distributions`).

    ``probs``: ``{item id: probs (K,)}`` in the original option order, averaged over ``orders``.
    ``result[item_id]`` gives one distribution; ``in``, ``len`` and iteration work as for a dict.
    """

    probs: dict[str, np.ndarray]
    orders: tuple[str, ...]

    title = "Model answer distributions per question"

    def __getitem__(self, item_id: str) -> np.ndarray:
        return self.probs[item_id]

    def __contains__(self, item_id) -> bool:
        return item_id in self.probs

    def __iter__(self):
        return iter(self.probs)

    def __len__(self) -> int:
        return len(self.probs)

    def to_frame(self) -> pd.DataFrame:
        """One row per (question, option): ``item``, ``option`` (original index), ``p``."""
        rows = [{"item": k, "option": j, "p": float(v)} for k, p in self.probs.items() for j, v in enumerate(p)]
        return pd.DataFrame(rows, columns=["item", "option", "p"])

    def to_dict(self) -> dict:
        return jsonable({"orders": list(self.orders), "probs": {k: list(v) for k, v in self.probs.items()}})

    def _repr_fields(self) -> dict:
        return {"questions": len(self.probs), "orders": len(self.orders)}


def opinion_distributions(engine: Engine | AnswerScorer, items: Sequence[MultipleChoiceItem],
                          design: PromptDesign = PromptDesign(),
                          orders: Sequence[str] = ("original", "reversed")) -> OpinionDistributions:
    """The model's distribution per item averaged over ``orders``; items batched by option count."""
    by_k: dict[int, list[MultipleChoiceItem]] = {}
    for it in items:
        by_k.setdefault(len(it.options), []).append(it)
    out = {}
    for k, group in by_k.items():
        labels = "letters" if design.labels == "letters" or k > 9 else design.labels
        option_labels(k, labels)  # raises for too many options
        runs = [answer_distributions(engine, group, design.with_(order=o, labels=labels)) for o in orders]
        probs = np.mean([r.probs for r in runs], axis=0)
        out.update({it.id: p for it, p in zip(group, probs)})
    return OpinionDistributions(out, tuple(orders))


@dataclass(repr=False)
class CountrySimilarity(Result):
    """Per country the mean similarity of the model's answers to the country's (:func:`country_similarity`).

    ``table``: indexed by country, ``similarity`` with its bootstrap interval over questions
    (``ci_low``, ``ci_high``) and ``n_questions``, most similar first.
    """

    table: pd.DataFrame

    title = "Similarity (1 - JS distance) of the model's answers to each country's, bootstrap CI over questions"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def _repr_fields(self) -> dict:
        return {"countries": len(self.table), "most_similar": self.table.index[0] if len(self.table) else None}

    def plot(self, ax=None, title: str = "Similarity to each country's answers"):
        return viz.intervals(self.table, estimate="similarity", kind="point", xlabel="similarity (1 - JS distance)",
                             title=title, ax=ax)


def country_similarity(model_probs: OpinionDistributions | dict[str, np.ndarray], tidy: pd.DataFrame,
                       countries: Sequence[str] | None = None, *, min_questions: int = 1,
                       confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> CountrySimilarity:
    """Per country: mean similarity of the model's answers to the country's, over shared questions.

    ``model_probs``: from :func:`opinion_distributions`; ``tidy``: the GlobalOpinionQA table.
    Country distributions are renormalised (published shares sum to ~1). Returns a
    :class:`CountrySimilarity` (bootstrap over questions), most similar first.
    """
    model_probs = model_probs.probs if isinstance(model_probs, OpinionDistributions) else model_probs
    missing = {"question_id", "country", "distribution"} - set(tidy.columns)
    if missing:
        raise AuditInputError(f"GlobalOpinionQA table lacks columns {sorted(missing)}")
    df = tidy[tidy["question_id"].astype(str).isin(model_probs)]
    if countries is not None:
        df = df[df["country"].isin(list(countries))]
    if df.empty:
        raise AuditInputError("no question answered by the model matches the selected countries")
    rows = {}
    for country, grp in df.groupby("country"):
        sims = []
        for r in grp.itertuples():
            human = np.asarray(r.distribution, dtype=float)
            if human.sum() <= 0 or not np.all(np.isfinite(human)):
                continue
            sims.append(similarity(model_probs[str(r.question_id)], human / human.sum()))
        if len(sims) >= min_questions:
            iv = stats.bootstrap_ci(np.asarray(sims), confidence=confidence, n_boot=n_boot, seed=seed)
            rows[country] = {"similarity": iv.estimate, "ci_low": iv.ci_low, "ci_high": iv.ci_high,
                             "n_questions": len(sims)}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=["similarity", "ci_low", "ci_high", "n_questions"])
    out.index.name = "country"
    return CountrySimilarity(out.sort_values("similarity", ascending=False))
