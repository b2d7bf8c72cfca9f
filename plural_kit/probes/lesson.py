"""The misalignment-probes lesson's data and closing table.

:func:`harm_prompts` and :func:`behaviour_evals` draw the lesson's prompts and eval items;
:func:`middle_layer` fixes the layer its claims speak about before any data is seen;
:func:`summary_table` writes the closing table from the claims' outcomes. Each claim has one fixed
reading per outcome, so the table says only what the printed outcomes say: the same model gives
the same table in bf16 and fp32 whenever the outcomes agree, and a different model (or more data)
changes the rows that its evidence changes.
"""
from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import pandas as pd

from plural_kit.claims import DOES_NOT_HOLD, HOLDS, NOT_DISTINGUISHABLE, Claims
from plural_kit.results import Result, Summary

#: ``(question, claim name or prefix, {outcome: reading})``, in the lesson's order. A name ending in
#: ``_`` matches every claim that starts with it (one row per behaviour).
SUMMARY: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("Is harmfulness linearly decodable?", "harm_decodable", {
        HOLDS: "yes, on prompts from held-out sources",
        NOT_DISTINGUISHABLE: "cannot tell at this size",
        DOES_NOT_HOLD: "no: below chance on held-out sources"}),
    ("... beyond memorisation?", "harm_selective", {
        HOLDS: "yes: the probe beats its shuffled-label control",
        NOT_DISTINGUISHABLE: "cannot tell from the control task",
        DOES_NOT_HOLD: "no: the control task does as well"}),
    ("... beyond the prompt's words?", "harm_beats_lexical", {
        HOLDS: "yes: the probe beats a bag-of-words classifier",
        NOT_DISTINGUISHABLE: "cannot tell: the signal may be lexical (needs more held-out prompts)",
        DOES_NOT_HOLD: "no: a bag-of-words classifier does better"}),
    ("Does the model refuse harmful requests?", "model_refuses_harmful", {
        HOLDS: "yes, by the refusal score",
        NOT_DISTINGUISHABLE: "cannot tell",
        DOES_NOT_HOLD: "no: its mean refusal log-odds is below 0 (a refusal test needs a chat model that refuses, >= 1B)"}),
    ("Does its refusal score tell harmful from harmless?", "harmful_scored_higher", {
        HOLDS: "yes: higher on harmful prompts (whether or not it refuses)",
        NOT_DISTINGUISHABLE: "cannot tell at this size",
        DOES_NOT_HOLD: "no: higher on harmless prompts"}),
    ("Does ablating r remove refusal?", "ablation_lowers_refusal", {
        HOLDS: "yes, more than a random direction",
        NOT_DISTINGUISHABLE: "no effect beyond a random direction can be shown (null result)",
        DOES_NOT_HOLD: "no: a random direction lowers it more"}),
    ("Does adding r push towards refusal?", "addition_raises_refusal", {
        HOLDS: "yes, more than a random direction of the same norm",
        NOT_DISTINGUISHABLE: "not distinguishable from a random direction",
        DOES_NOT_HOLD: "no: a random direction raises it more"}),
    ("Does adding r create refusals?", "addition_induces_refusal", {
        HOLDS: "yes: the mean refusal log-odds rises above 0",
        NOT_DISTINGUISHABLE: "cannot tell",
        DOES_NOT_HOLD: "no: the mean refusal log-odds stays below 0"}),
    ("Do harmful and harmless activations share a subspace?", "subspaces_share_more_than_chance", {
        HOLDS: "yes, more than random subspaces",
        NOT_DISTINGUISHABLE: "not distinguishable from random subspaces",
        DOES_NOT_HOLD: "less than random subspaces"}),
    ("Is there a separate safety subspace?", "harmful_subspace_distinct", {
        HOLDS: "partly: harmful prompts overlap harmless ones less than two harmless halves do",
        NOT_DISTINGUISHABLE: "no evidence for one: not distinguishable from two halves of one set",
        DOES_NOT_HOLD: "no: they overlap more than two halves of the harmless set"}),
    ("Do its answers show the behaviour beyond label bias?", "beyond_label_bias_", {
        HOLDS: "yes, beyond its favourite label (then check the swap test)",
        NOT_DISTINGUISHABLE: "cannot tell beyond label bias",
        DOES_NOT_HOLD: "the answers match the behaviour less than label bias alone would"}),
    ("Does it read the (A)/(B) options?", "keeps_letter_after_swap", {
        HOLDS: "no: it keeps its letter when the options are swapped",
        NOT_DISTINGUISHABLE: "cannot tell from the swap test at this size",
        DOES_NOT_HOLD: "yes: it switches letters with the content"}),
    ("Can the local model judge open answers?", "judge_agrees_with_labels", {
        HOLDS: "its flags agree with plain labels above chance",
        NOT_DISTINGUISHABLE: "no evidence that it can: needs a judge that passes (API or large model)",
        DOES_NOT_HOLD: "no: its flags disagree with plain labels"}),
    ("Are open answers misaligned?", "open_answers_misaligned", {
        HOLDS: "some are, by a judge that passed its check",
        NOT_DISTINGUISHABLE: "not measured (or none found)",
        DOES_NOT_HOLD: "no"}),
    ("Is truth linearly decodable (TruthfulQA)?", "truth_decodable", {
        HOLDS: "yes, on held-out questions",
        NOT_DISTINGUISHABLE: "cannot tell at this size (raise n_truthfulqa and the model size)",
        DOES_NOT_HOLD: "no: below chance"}),
    ("Does the honesty probe carry over to true facts?", "true_facts_called_true", {
        HOLDS: "yes: it calls most true facts true",
        NOT_DISTINGUISHABLE: "cannot tell",
        DOES_NOT_HOLD: "no: it reads something other than truth"}),
)


class SummaryTable(Result):
    """The lesson's closing table: one row per claim (question, claim, outcome, what it means);
    ``str()`` and the text summary are Markdown, the HTML summary a table."""

    title = "what this run shows"

    def __init__(self, rows: pd.DataFrame):
        self._rows = rows.reset_index(drop=True).copy()

    def to_frame(self) -> pd.DataFrame:
        return self._rows.copy()

    def markdown(self) -> str:
        lines = ["| question | claim | outcome | what it means here |", "|---|---|---|---|"]
        lines += [f"| {r.question} | `{r.claim}` | {r.outcome} | {r.meaning} |" for r in self._rows.itertuples()]
        return "\n".join(lines)

    def summary(self) -> Summary:
        body = "".join(f"<tr><td>{html.escape(r.question)}</td><td><code>{html.escape(r.claim)}</code></td>"
                       f"<td><b>{html.escape(r.outcome)}</b></td><td>{html.escape(r.meaning)}</td></tr>"
                       for r in self._rows.itertuples())
        head = "<tr><th>question</th><th>claim</th><th>outcome</th><th>what it means here</th></tr>"
        return Summary(self.markdown(), f"<table><thead>{head}</thead><tbody>{body}</tbody></table>")

    def __str__(self) -> str:
        return self.markdown()

    def _repr_fields(self) -> dict:
        return {"rows": len(self._rows), **self._rows["outcome"].value_counts().to_dict()}


def summary_table(claims: Claims) -> SummaryTable:
    """The lesson's closing table: one row per claim found in ``claims`` (question, claim, outcome,
    what that outcome means). Rows whose claim is missing are left out."""
    rows = []
    for question, key, readings in SUMMARY:
        for c in claims:
            if c.name.startswith(key) if key.endswith("_") else c.name == key:
                rows.append({"question": question, "claim": c.name, "outcome": c.outcome,
                             "meaning": readings[c.outcome]})
    return SummaryTable(pd.DataFrame(rows, columns=["question", "claim", "outcome", "meaning"]))


def harm_prompts(n_train: int, n_test: int, *, seed: int = 0) -> pd.DataFrame:
    """Harmful and harmless instructions per class and split (:func:`~plural_kit.data.evals.load_refusal_prompts`):
    ``n_train`` training and ``n_test`` held-out prompts of each class, the harmful ones sampled
    evenly across their sources, duplicates removed (no prompt in both splits).

    Columns of the refusal prompts plus ``label`` (1 = harmful) and ``group`` (the source; the
    harmless side is one source, grouped by split), rows in order train harmful, train harmless,
    test harmful, test harmless.
    """
    from plural_kit.data.evals import load_refusal_prompts
    from plural_kit.probes.linear import dedupe_prompts

    def sample(kind: str, split: str, n: int) -> pd.DataFrame:
        df = load_refusal_prompts(kind, split).drop_duplicates("instruction")
        if kind == "harmful":  # keep every source represented: sample evenly across sources
            per_source = -(-n // df["source"].nunique())
            df = pd.concat([g.sample(n=min(len(g), per_source), random_state=seed) for _, g in df.groupby("source")])
        return df.sample(n=min(n, len(df)), random_state=seed)

    data = pd.concat([sample(kind, split, n) for split, n in (("train", n_train), ("test", n_test))
                      for kind in ("harmful", "harmless")], ignore_index=True)
    data["label"] = (data["kind"] == "harmful").astype(int)
    data["group"] = np.where(data["kind"] == "harmless", "Alpaca/" + data["split"], data["source"])
    keep = dedupe_prompts(data["instruction"].tolist(), data["label"].to_numpy())
    return data.iloc[keep].reset_index(drop=True)


def prompts_by_kind(data: pd.DataFrame, split: str, n: int) -> dict[str, list[str]]:
    """``{"harmful": [...], "harmless": [...]}``: the first ``n`` instructions of each class in ``split``
    of :func:`harm_prompts`' frame."""
    part = data[data["split"] == split]
    return {kind: part.loc[part["label"] == y, "instruction"].tolist()[:n] for kind, y in (("harmful", 1),
                                                                                         ("harmless", 0))}


def behaviour_evals(names: Sequence[str], n_items: int, *, seed: int = 0) -> dict[str, pd.DataFrame]:
    """``{behaviour: items}``: ``n_items`` seeded items of each Anthropic eval ``names``
    (``"persona/…"``, ``"advanced-ai-risk/…"``), keyed by the name after the folder."""
    from plural_kit.data.evals import load_anthropic_eval

    out = {}
    for name in names:
        df = load_anthropic_eval(name)
        out[name.split("/", 1)[1]] = df.sample(n=min(n_items, len(df)), random_state=seed)
    return out


def middle_layer(layers: Sequence[int], n_layers: int) -> int:
    """The layer of ``layers`` nearest the middle of a model of ``n_layers`` blocks (lower on ties)."""
    if not len(layers):
        raise ValueError("no layers to choose from")
    return int(min(layers, key=lambda l: (abs(l - n_layers / 2), l)))
