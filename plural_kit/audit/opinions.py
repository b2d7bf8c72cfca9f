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

from plural_kit.audit.distributions import MultipleChoiceItem, PromptDesign, answer_distributions, option_labels
from plural_kit.audit.metrics import AuditInputError, bootstrap_ci, similarity

__all__ = ["country_similarity", "opinion_distributions", "opinion_items"]


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


def opinion_distributions(model, items: Sequence[MultipleChoiceItem], design: PromptDesign = PromptDesign(),
                          orders: Sequence[str] = ("original", "reversed")) -> dict[str, np.ndarray]:
    """``{item id: probs (K,)}`` averaged over ``orders``; items batched by option count."""
    by_k: dict[int, list[MultipleChoiceItem]] = {}
    for it in items:
        by_k.setdefault(len(it.options), []).append(it)
    out = {}
    for k, group in by_k.items():
        labels = "letters" if design.labels == "letters" or k > 9 else design.labels
        option_labels(k, labels)  # raises for too many options
        runs = [answer_distributions(model, group, design.with_(order=o, labels=labels)) for o in orders]
        probs = np.mean([r.probs for r in runs], axis=0)
        out.update({it.id: p for it, p in zip(group, probs)})
    return out


def country_similarity(model_probs: dict[str, np.ndarray], tidy: pd.DataFrame, countries: Sequence[str] | None = None,
                       *, min_questions: int = 1, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per country: mean similarity of the model's answers to the country's, over shared questions.

    ``model_probs``: from :func:`opinion_distributions`; ``tidy``: the GlobalOpinionQA table.
    Country distributions are renormalised (published shares sum to ~1). Returns a frame indexed
    by country with ``similarity``, ``low``, ``high`` (bootstrap over questions) and
    ``n_questions``, sorted from most to least similar.
    """
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
            est, low, high = bootstrap_ci(np.asarray(sims), n_resamples=n_boot, seed=seed)
            rows[country] = {"similarity": est, "low": low, "high": high, "n_questions": len(sims)}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "country"
    return out.sort_values("similarity", ascending=False)
