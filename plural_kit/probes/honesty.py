"""Honesty probes: does the residual stream separate true from false answers (TruthfulQA),
and does that probe carry over to plain true statements (the repeng true-facts set)?"""
from __future__ import annotations

import numpy as np
import pandas as pd

TRUTH_TEMPLATE = "Question: {question}\nAnswer: {answer}\nIs this answer true?"


def _first(cell) -> str:
    if isinstance(cell, (list, tuple, np.ndarray)):
        return str(cell[0]) if len(cell) else ""
    return str(cell).split(";")[0].strip()


def truthfulqa_statements(df: pd.DataFrame, n_questions: int | None = None, seed: int = 0,
                          template: str = TRUTH_TEMPLATE) -> pd.DataFrame:
    """One true and one false answer per TruthfulQA question as probe prompts.

    df: TruthfulQA with a question column (``question``/``Question``), a best answer
    (``best_answer``/``Best Answer``) and incorrect answers (``incorrect_answers``/``Incorrect Answers``,
    a list or a "; "-separated string). Returns ``text``, ``label`` (1 = true answer) and ``group``
    (the question, so a grouped split never puts one question on both sides).
    """
    cols = {c.lower().replace(" ", "_"): c for c in df.columns}
    need = ["question", "best_answer", "incorrect_answers"]
    missing = [c for c in need if c not in cols]
    if missing:
        raise ValueError(f"TruthfulQA frame lacks columns {missing}; has {list(df.columns)}")
    df = df.dropna(subset=[cols[c] for c in need])
    if n_questions is not None:
        if n_questions < 2:
            raise ValueError("n_questions must be >= 2")
        df = df.sample(n=min(n_questions, len(df)), random_state=seed)
    rows = []
    for i, r in enumerate(df.itertuples(index=False)):
        rec = dict(zip(df.columns, r))
        q = str(rec[cols["question"]])
        for answer, label in ((str(rec[cols["best_answer"]]), 1), (_first(rec[cols["incorrect_answers"]]), 0)):
            if answer:
                rows.append({"text": template.format(question=q, answer=answer), "label": label, "group": q})
    return pd.DataFrame(rows)


def fact_prompts(facts, template: str = "Statement: {fact}\nIs this statement true?") -> list[str]:
    """Probe prompts for plain statements (for example the repeng true facts)."""
    facts = list(facts.iloc[:, 0] if isinstance(facts, pd.DataFrame) else facts)
    if not facts:
        raise ValueError("no facts given")
    return [template.format(fact=f) for f in facts]
