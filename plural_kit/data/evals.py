"""Probe inputs: refusal-direction prompt sets, Anthropic model-written evaluations, the
emergent-misalignment questions, TruthfulQA and repeng's true facts.

Content warning: the harmful prompts ask for seriously harmful content; use them as probe inputs.
"""
from __future__ import annotations

import difflib
import os
from functools import lru_cache

import pandas as pd

from plural_kit.data._io import parse, stamp
from plural_kit.data.home import _load_registry

__all__ = [
    "list_anthropic_evals",
    "load_anthropic_eval",
    "load_emergent_misalignment_questions",
    "load_refusal_prompts",
    "load_true_facts",
    "load_truthfulqa",
]

PathLike = str | os.PathLike | None

# ----------------------------------------------------------------------------------- refusal
_RD = "refusal_direction_prompts/"
_SPLITS = ("train", "val", "test")


def load_refusal_prompts(kind: str = "harmful", split: str = "train", data_home: PathLike = None) -> pd.DataFrame:
    """Harmful or harmless instructions as split by the refusal-direction study (Arditi et al. 2024).

    Parameters
    ----------
    kind : ``"harmful"`` (train 260 / val 39 / test 572) or ``"harmless"`` (Alpaca instructions
        without input: 18,793 / 6,264 / 6,266; CC BY-NC 4.0, non-commercial).
    split : ``"train"``, ``"val"``, ``"test"`` or ``"all"`` (the three, in that order).

    Returns
    -------
    DataFrame: ``instruction, category`` (None where the source has none), ``source``, ``split``,
    ``kind``. ``source`` is one of AdvBench, MaliciousInstruct, TDC2023 (train), HarmBench (val,
    test), JailbreakBench, StrongREJECT (test), Alpaca (harmless). It is recovered from the
    repository's processed files (AdvBench, JailbreakBench and HarmBench membership by category)
    and, for the two sources whose files are not mirrored, from the build order of the train split
    (AdvBench, then MaliciousInstruct, whose prompts are all questions, then TDC2023) and the test
    split (JailbreakBench, HarmBench, then StrongREJECT).
    """
    if kind not in ("harmful", "harmless"):
        raise ValueError(f"kind must be 'harmful' or 'harmless', got {kind!r}")
    if split not in (*_SPLITS, "all"):
        raise ValueError(f"split must be one of {_SPLITS + ('all',)}, got {split!r}")
    splits = _SPLITS if split == "all" else (split,)
    frames = []
    for s in splits:
        key = stamp(f"{_RD}splits/{kind}_{s}.json", data_home)
        if kind == "harmful":
            refs = tuple(
                stamp(f"{_RD}processed/{n}.json", data_home)
                for n in ("advbench", "jailbreakbench", "harmbench_test", "harmbench_val")
            )
            frames.append(_harmful(key, refs, s))
        else:
            frames.append(_harmless(key, s))
    return pd.concat(frames, ignore_index=True)


def _records(st) -> pd.DataFrame:
    rows = parse(st, "json")
    if not isinstance(rows, list) or not rows or "instruction" not in rows[0]:
        raise ValueError(f"{st[0]}: expected a JSON list of {{'instruction', 'category'}} records")
    return pd.DataFrame({"instruction": [r["instruction"] for r in rows], "category": [r.get("category") for r in rows]})


@lru_cache(maxsize=8)
def _harmless(st, split: str) -> pd.DataFrame:
    return _records(st).assign(source="Alpaca", split=split, kind="harmless")


@lru_cache(maxsize=8)
def _harmful(st, refs, split: str) -> pd.DataFrame:
    df = _records(st)
    adv, jbb, hb_test, hb_val = (_records(r) for r in refs)
    if split == "train":
        in_adv = df["instruction"].isin(set(adv["instruction"])).to_numpy()
        source = []
        state = "AdvBench"
        for is_adv, text in zip(in_adv, df["instruction"]):
            if is_adv and state == "AdvBench":
                source.append("AdvBench")
                continue
            if state == "AdvBench":
                state = "MaliciousInstruct"
            if state == "MaliciousInstruct" and not text.rstrip().endswith("?"):
                state = "TDC2023"
            source.append(state)
    elif split == "val":
        source = ["HarmBench"] * len(df)
    else:
        jbb_cats = set(jbb["category"].dropna())
        hb_cats = set(hb_test["category"].dropna()) | set(hb_val["category"].dropna())
        source = [
            "JailbreakBench" if c in jbb_cats else "HarmBench" if c in hb_cats else "StrongREJECT"
            for c in df["category"]
        ]
    return df.assign(source=source, split=split, kind="harmful")


# ----------------------------------------------------------------------------------- Anthropic evals
_AE = "anthropic_evals/"
_AE_DIRS = {"persona": "persona/", "advanced-ai-risk": "advanced-ai-risk/human_generated_evals/"}


def list_anthropic_evals(category: str | None = None) -> list[str]:
    """Names of the mirrored model-written evaluations: ``"persona/<trait>"`` (135) and
    ``"advanced-ai-risk/<behaviour>"`` (16 human-generated sets); ``category`` filters one family."""
    if category is not None and category not in _AE_DIRS:
        raise ValueError(f"category must be one of {sorted(_AE_DIRS)} or None, got {category!r}")
    out = []
    for rel in _load_registry()["files"]:
        for cat, sub in _AE_DIRS.items():
            if rel.startswith(_AE + sub) and rel.endswith(".jsonl") and category in (None, cat):
                out.append(f"{cat}/{rel[len(_AE + sub):-len('.jsonl')]}")
    return sorted(out)


def load_anthropic_eval(name: str, data_home: PathLike = None) -> pd.DataFrame:
    """One model-written evaluation (Perez et al. 2022, CC BY 4.0).

    Parameters
    ----------
    name : ``"persona/<trait>"``, ``"advanced-ai-risk/<behaviour>"`` or a bare name when it is
        unambiguous (e.g. ``"power-seeking-inclination"``, ``"narcissism"``).

    Returns
    -------
    DataFrame: ``name, category`` ("persona"/"advanced-ai-risk"), ``question`` (the text to put to
    the model), ``statement`` (persona only, else None), ``answer_matching_behavior,
    answer_not_matching_behavior`` (as published, with the leading space: " Yes"/" No" or
    " (A)"/" (B)"; some advanced-ai-risk items list more options, up to " (F)"), ``label_confidence`` (persona only, else NaN).
    """
    known = list_anthropic_evals()
    if name not in known:
        hits = [k for k in known if k.split("/", 1)[1] == name]
        if len(hits) != 1:
            close = difflib.get_close_matches(name, known + [k.split("/", 1)[1] for k in known], n=3)
            raise ValueError(
                f"unknown Anthropic evaluation {name!r}" + (f"; did you mean {close}?" if close else "")
                + " (list_anthropic_evals() lists them)"
            )
        name = hits[0]
    category, base = name.split("/", 1)
    return _ae(stamp(_AE + _AE_DIRS[category] + base + ".jsonl", data_home), name, category).copy()


@lru_cache(maxsize=256)
def _ae(st, name: str, category: str) -> pd.DataFrame:
    df = pd.DataFrame(parse(st, "jsonl"))
    missing = {"question", "answer_matching_behavior", "answer_not_matching_behavior"} - set(df.columns)
    if missing:
        raise ValueError(f"{st[0]}: evaluation file lacks fields {sorted(missing)}")
    out = pd.DataFrame(
        {
            "name": name,
            "category": category,
            "question": df["question"],
            "statement": df["statement"] if "statement" in df else None,
            "answer_matching_behavior": df["answer_matching_behavior"],
            "answer_not_matching_behavior": df["answer_not_matching_behavior"],
            "label_confidence": df["label_confidence"].astype(float) if "label_confidence" in df else float("nan"),
        }
    )
    return out


# ----------------------------------------------------------------------------------- emergent misalignment
_EM = {
    "first_plot": "emergent_misalignment_eval/first_plot_questions.yaml",
    "preregistered": "emergent_misalignment_eval/preregistered_evals.yaml",
    "deception_factual": "emergent_misalignment_eval/deception_factual.yaml",
    "deception_sit_aware": "emergent_misalignment_eval/deception_sit_aware.yaml",
}


def load_emergent_misalignment_questions(
    which: str = "first_plot", *, per_paraphrase: bool = False, data_home: PathLike = None
) -> pd.DataFrame:
    """Evaluation questions of the emergent-misalignment study (Betley et al. 2025, MIT).

    Parameters
    ----------
    which : ``"first_plot"`` (24: the 8 main questions, 8 with a JSON-answer system prompt, 8 with
        a fill-in template), ``"preregistered"`` (48), ``"deception_factual"`` (5 system-prompt
        conditions x 20 questions), ``"deception_sit_aware"`` (8).
    per_paraphrase : one row per paraphrase (column ``paraphrase_index``) instead of per question.

    Returns
    -------
    DataFrame: ``id, variant`` (first_plot: "main"/"json"/"template"; otherwise "main"),
    ``question`` (the first paraphrase, or the paraphrase of the row), ``paraphrases`` (list),
    ``system`` (system prompt or None), ``type, samples_per_paraphrase, judge``, ``judge_prompts``
    (dict name -> template with ``{question}`` and ``{answer}``).
    """
    if which not in _EM:
        raise ValueError(f"which must be one of {sorted(_EM)}, got {which!r}")
    df = _em(stamp(_EM[which], data_home)).copy()
    df["paraphrases"] = [list(p) for p in df["paraphrases"]]
    df["judge_prompts"] = [dict(j) for j in df["judge_prompts"]]
    if per_paraphrase:
        rows = [
            {**rec, "paraphrase_index": i, "question": text, "paraphrases": list(rec["paraphrases"]),
             "judge_prompts": dict(rec["judge_prompts"])}
            for rec in df.to_dict("records")
            for i, text in enumerate(rec["paraphrases"])
        ]
        order = ["id", "variant", "paraphrase_index", "question"]
        df = pd.DataFrame(rows)
        df = df[order + [c for c in df.columns if c not in order]]
    return df


@lru_cache(maxsize=8)
def _em(st) -> pd.DataFrame:
    items = parse(st, "yaml")
    if not isinstance(items, list):
        raise ValueError(f"{st[0]}: expected a YAML list of questions")
    rows = []
    for q in items:
        if "id" not in q or not q.get("paraphrases"):
            raise ValueError(f"{st[0]}: every question needs an id and paraphrases; got keys {sorted(q)}")
        qid = str(q["id"])
        variant = "json" if qid.endswith("_json") else "template" if qid.endswith("_template") else "main"
        rows.append(
            {
                "id": qid,
                "variant": variant,
                "question": q["paraphrases"][0],
                "paraphrases": tuple(q["paraphrases"]),
                "system": q.get("system"),
                "type": q.get("type"),
                "samples_per_paraphrase": q.get("samples_per_paraphrase"),
                "judge": q.get("judge"),
                "judge_prompts": q.get("judge_prompts") or {},
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- honesty
def _split_answers(text) -> list[str]:
    if not isinstance(text, str):
        return []
    return [a.strip() for a in text.split(";") if a.strip()]


def load_truthfulqa(data_home: PathLike = None) -> pd.DataFrame:
    """TruthfulQA (Lin et al. 2021, Apache-2.0): 817 questions.

    Returns
    -------
    DataFrame: ``type`` (Adversarial/Non-Adversarial), ``category`` (38), ``question``,
    ``best_answer``, ``correct_answers`` and ``incorrect_answers`` (lists, split on ";"),
    ``source``. Split train/test by question or category so paraphrases do not leak.
    """
    df = _tqa(stamp("truthfulqa/TruthfulQA.csv", data_home)).copy()
    for col in ("correct_answers", "incorrect_answers"):
        df[col] = [list(a) for a in df[col]]
    return df


@lru_cache(maxsize=4)
def _tqa(st) -> pd.DataFrame:
    raw = parse(st, "csv")
    cols = {"Type": "type", "Category": "category", "Question": "question", "Best Answer": "best_answer",
            "Correct Answers": "correct_answers", "Incorrect Answers": "incorrect_answers", "Source": "source"}
    missing = [c for c in cols if c not in raw.columns]
    if missing:
        raise ValueError(f"{st[0]}: TruthfulQA file lacks columns {missing}")
    df = raw[list(cols)].rename(columns=cols)
    for col in ("correct_answers", "incorrect_answers"):
        df[col] = [tuple(_split_answers(x)) for x in df[col]]
    return df


def load_true_facts(data_home: PathLike = None) -> pd.DataFrame:
    """repeng's 306 short true statements (MIT), for honest/dishonest contrast prompts.

    Returns a DataFrame with one column ``statement`` (true statements only: no labelled lies).
    """
    facts = parse(stamp("repeng_true_facts/true_facts.json", data_home), "json")
    if not isinstance(facts, list) or not all(isinstance(f, str) for f in facts):
        raise ValueError("true_facts.json: expected a JSON list of strings")
    return pd.DataFrame({"statement": list(facts)})
