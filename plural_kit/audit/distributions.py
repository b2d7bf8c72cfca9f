"""A language model's answer distribution over the options of multiple-choice items.

The model reads one prompt per item (the instruction, the statement, the options labelled
``A.``/``B.`` or ``1.``/``2.`` in a given order) and we read the probability of each option
label as the next token. The probabilities are renormalised over the options; the mass that
fell on the options before renormalising (``on_option_mass``) is reported beside them: a low
mass means the model did not answer the question in the expected format.

Label tokens are resolved against the real prompt: after a chat template's generation
prompt (``...<|im_start|>assistant\\n``) the label is the token *without* a leading space
(``A``), after ``Answer:`` it is the token with one (`` A``); when a tokenizer splits
`` 1`` into a space and ``1`` the space is moved into the prompt. Each option order is
truly applied in the prompt text and the answers are mapped back to the original order.

Hook point: anything implementing :class:`AnswerScorer` (``apply_chat_template`` and
``score``) can stand in for the model, e.g. a fake scorer in tests.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from plural_kit.audit.metrics import SUM_TOL, AuditInputError
from plural_kit.engine import Engine
from plural_kit.results import Result, Summary, frame_summary
from plural_kit.scoring import LOGPROB_SUM_TOL, EngineOutputError, LabelTokenError, option_probs, resolve_label_tokens

__all__ = [
    "AnswerDistributions",
    "AnswerScorer",
    "LogprobScorer",
    "MultipleChoiceItem",
    "PromptDesign",
    "answer_distributions",
    "build_prompt",
    "check_scorer_output",
    "option_labels",
    "option_permutation",
    "resolve_label_tokens",
]

DEFAULT_INSTRUCTION = "Read the question and choose one option.\n\n{text}"
RESPONSE_LINE = {"letters": "Answer with the letter of one option only.",
                 "numbers": "Answer with the number of one option only."}
ANSWER_PREFIX = "Answer:"


@dataclass(frozen=True)
class MultipleChoiceItem:
    """One question: ``text`` (statement or question), ``options`` (K ≥ 2 option texts in their
    original order), ``values`` (K ordinal values, e.g. ratings 1..5; default 0..K−1),
    ``group`` (e.g. the MFQ-2 foundation) and ``id``."""

    id: str
    text: str
    options: tuple[str, ...]
    values: tuple[float, ...] | None = None
    group: str | None = None

    def __post_init__(self):
        if not isinstance(self.text, str) or not self.text.strip():
            raise AuditInputError(f"item {self.id!r} has an empty text")
        opts = tuple(self.options)
        if len(opts) < 2:
            raise AuditInputError(f"item {self.id!r} needs at least two options, got {len(opts)}")
        if any(not isinstance(o, str) or not o.strip() for o in opts):
            raise AuditInputError(f"item {self.id!r} has an empty or non-text option: {opts}")
        if len(set(opts)) != len(opts):
            raise AuditInputError(f"item {self.id!r} has duplicate options: {opts}")
        object.__setattr__(self, "options", opts)
        if self.values is not None:
            try:
                vals = tuple(float(v) for v in self.values)
            except (TypeError, ValueError):
                raise AuditInputError(f"item {self.id!r} has values that are not numbers: {self.values!r}") from None
            if not all(np.isfinite(vals)):
                raise AuditInputError(f"item {self.id!r} has NaN or infinite values: {vals}")
            if len(vals) != len(opts):
                raise AuditInputError(f"item {self.id!r}: {len(vals)} values for {len(opts)} options")
            object.__setattr__(self, "values", vals)

    @property
    def ordinal(self) -> np.ndarray:
        """The options' values, shape (K,) (0..K−1 when none were given)."""
        return np.arange(len(self.options), dtype=float) if self.values is None else np.asarray(self.values)


@dataclass(frozen=True)
class PromptDesign:
    """How an item is put to the model (the design factors of the robustness protocol).

    ``order``: ``"original"``, ``"reversed"`` or ``"random<k>"`` (the k-th seeded random
    permutation, drawn per item); ``labels``: ``"letters"`` (A., B.) or ``"numbers"`` (1., 2.);
    ``response``: ``"label"`` (the answer is the first token of the model's turn) or
    ``"answer_prefix"`` (the turn is pre-filled with ``Answer:``); ``chat_template``: wrap the
    question in the tokenizer's chat template; ``instruction``: a template with ``{text}``;
    ``instruction_name``: its short name in reports; ``system``: a system prompt (``None`` =
    the template's default); ``seed``: for random orders.
    """

    order: str = "original"
    labels: str = "letters"
    response: str = "label"
    chat_template: bool = True
    instruction: str = DEFAULT_INSTRUCTION
    instruction_name: str = "default"
    system: str | None = None
    seed: int = 0

    def __post_init__(self):
        if not (self.order in ("original", "reversed") or
                (self.order.startswith("random") and self.order[6:].isdigit())):
            raise AuditInputError(f"order must be 'original', 'reversed' or 'random<k>', got {self.order!r}")
        if self.labels not in RESPONSE_LINE:
            raise AuditInputError(f"labels must be one of {sorted(RESPONSE_LINE)}, got {self.labels!r}")
        if self.response not in ("label", "answer_prefix"):
            raise AuditInputError(f"response must be 'label' or 'answer_prefix', got {self.response!r}")
        if "{text}" not in self.instruction:
            raise AuditInputError("instruction must contain the placeholder {text}")

    @property
    def name(self) -> str:
        """A short readable name, e.g. ``original|letters|label|chat|default``."""
        chat = "chat" if self.chat_template else "plain"
        return f"{self.order}|{self.labels}|{self.response}|{chat}|{self.instruction_name}"

    def factors(self) -> dict[str, str]:
        """The design factors as strings (for regression tables)."""
        return {"order": "random" if self.order.startswith("random") else self.order, "labels": self.labels,
                "response": self.response, "chat_template": str(self.chat_template),
                "instruction": self.instruction_name}

    def with_(self, **changes) -> PromptDesign:
        """A copy with some fields changed."""
        return replace(self, **changes)


def option_labels(n: int, style: str = "letters") -> list[str]:
    """The first ``n`` labels: ``A, B, ...`` (letters, n ≤ 26) or ``1, 2, ...`` (numbers, n ≤ 9)."""
    if style == "letters":
        if n > 26:
            raise AuditInputError(f"{n} options is too many for letter labels")
        return [chr(ord("A") + i) for i in range(n)]
    if style == "numbers":
        if n > 9:
            raise AuditInputError(f"{n} options is too many for single-digit number labels")
        return [str(i + 1) for i in range(n)]
    raise AuditInputError(f"label style must be 'letters' or 'numbers', got {style!r}")


def option_permutation(n: int, order: str, *, item_index: int = 0, seed: int = 0) -> np.ndarray:
    """``display`` (n,) int: ``display[j]`` is the original option shown at position j."""
    if order == "original":
        return np.arange(n)
    if order == "reversed":
        return np.arange(n)[::-1].copy()
    if order.startswith("random") and order[6:].isdigit():
        rng = np.random.default_rng([seed, int(order[6:]), item_index])
        return rng.permutation(n)
    raise AuditInputError(f"unknown option order {order!r}")


class AnswerScorer:
    """Hook point: turns prompts into probabilities over the displayed option labels.

    Subclasses implement :meth:`apply_chat_template` (used when ``design.chat_template``)
    and :meth:`score`.
    """

    def apply_chat_template(self, prompts: Sequence[str], system: str | None = None) -> list[str]:
        raise NotImplementedError

    def score(self, prompts: Sequence[str], labels: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """``(probs (n, K), on_option_mass (n,))`` for the labels in displayed order; rows of
        ``probs`` sum to one."""
        raise NotImplementedError


class LogprobScorer(AnswerScorer):
    """The real scorer: next-token log-probabilities of the label tokens, resolved against each
    prompt, from any :class:`plural_kit.engine.Engine` (:func:`plural_kit.scoring.option_probs`)."""

    def __init__(self, engine: Engine):
        for attr in ("next_token_logprobs", "apply_chat_template", "tokenizer"):
            if not hasattr(engine, attr):
                raise TypeError(f"engine must be an Engine (e.g. a ForwardEngine) with .{attr}")
        self.engine = engine

    def apply_chat_template(self, prompts, system=None):
        return self.engine.apply_chat_template(list(prompts), system=system, add_generation_prompt=True)

    def score(self, prompts, labels):
        try:
            return option_probs(self.engine, list(prompts), [list(lab) for lab in labels])
        except (LabelTokenError, EngineOutputError) as err:
            raise AuditInputError(str(err)) from err


def _as_scorer(model) -> AnswerScorer:
    if isinstance(model, AnswerScorer):
        return model
    return LogprobScorer(model)


def build_prompt(item: MultipleChoiceItem, design: PromptDesign, scorer: AnswerScorer | None = None, *,
                 item_index: int = 0) -> tuple[str, np.ndarray, list[str]]:
    """``(prompt_text, display (K,), labels (K,))`` for one item under one design.

    ``display[j]`` is the original option index shown at position j with label ``labels[j]``.
    ``scorer`` provides the chat template when ``design.chat_template``.
    """
    k = len(item.options)
    display = option_permutation(k, design.order, item_index=item_index, seed=design.seed)
    labels = option_labels(k, design.labels)
    lines = [f"{lab}. {item.options[j]}" for lab, j in zip(labels, display)]
    user = design.instruction.format(text=item.text) + "\n" + "\n".join(lines) + "\n" + RESPONSE_LINE[design.labels]
    if design.chat_template:
        if scorer is None:
            raise AuditInputError("design.chat_template=True needs a scorer/engine that provides the chat template")
        text = scorer.apply_chat_template([user], system=design.system)[0]
    else:
        text = (design.system + "\n\n" if design.system else "") + user + "\n"
    if design.response == "answer_prefix":
        text += ANSWER_PREFIX
    return text, display, labels


@dataclass(repr=False)
class AnswerDistributions(Result):
    """Answer distributions of ``n`` items with ``K`` options under one design.

    ``probs``: (n, K), original option order, rows sum to one; ``position_probs``: (n, K), the
    same by displayed position (position 0 = first listed); ``display``: (n, K) int, original
    option index at each position; ``on_option_mass``: (n,), the probability on the option
    labels before renormalising; ``prompts``: the n prompt texts.
    """

    items: list[MultipleChoiceItem]
    design: PromptDesign
    probs: np.ndarray
    position_probs: np.ndarray
    display: np.ndarray
    on_option_mass: np.ndarray
    prompts: list[str] = field(repr=False)

    def expected(self) -> np.ndarray:
        """Expected value of each item's answer under its ordinal values, shape (n,)."""
        return np.array([p @ it.ordinal for p, it in zip(self.probs, self.items)])

    def to_frame(self) -> pd.DataFrame:
        """One row per item: id, group, ``p_0..p_{K-1}`` (original order), ``pos_0..`` (by
        position), ``on_option_mass``, ``expected``, ``top_position``, the design name."""
        k = self.probs.shape[1]
        df = pd.DataFrame({"item": [it.id for it in self.items], "group": [it.group for it in self.items]})
        for j in range(k):
            df[f"p_{j}"] = self.probs[:, j]
        for j in range(k):
            df[f"pos_{j}"] = self.position_probs[:, j]
        df["on_option_mass"] = self.on_option_mass
        df["expected"] = self.expected()
        df["top_position"] = self.position_probs.argmax(axis=1)
        df["design"] = self.design.name
        return df

    def summary(self) -> Summary:
        """Mean probability by displayed position, how often each position wins, on-option mass."""
        k = self.probs.shape[1]
        wins = np.bincount(self.position_probs.argmax(axis=1), minlength=k) / len(self.items)
        table = pd.DataFrame({"mean probability": self.position_probs.mean(axis=0), "share of top answers": wins},
                             index=pd.Index(range(k), name="position"))
        return frame_summary(f"Answer distributions: {len(self.items)} items x {k} options, design {self.design.name}",
                             table, f"mean on-option mass: {self.on_option_mass.mean():.3f} "
                                    f"(min {self.on_option_mass.min():.3f})")

    def _repr_fields(self) -> dict:
        return {"items": len(self.items), "options": self.probs.shape[1], "design": self.design.name}


def _rows(items, bad: np.ndarray, arr: np.ndarray) -> str:
    rows = np.flatnonzero(bad)
    shown = "; ".join(f"item {items[i].id!r}: {np.array2string(arr[i], precision=4)}" for i in rows[:3])
    return shown + (f" (and {rows.size - 3} more)" if rows.size > 3 else "")


def check_scorer_output(output, items: Sequence[MultipleChoiceItem], *, tol: float = SUM_TOL
                        ) -> tuple[np.ndarray, np.ndarray]:
    """``(probs (n, K), on_option_mass (n,))`` from what an :class:`AnswerScorer`'s ``score`` returned,
    after checking it: a pair of arrays of the right shapes, ``probs`` finite, non-negative, each row
    summing to one within ``tol``; ``on_option_mass`` finite and in [0, 1] (up to
    :data:`plural_kit.scoring.LOGPROB_SUM_TOL` of rounding above 1).
    Raises :class:`AuditInputError` naming the problem and the offending items."""
    n, k = len(items), len(items[0].options)
    if not (isinstance(output, (tuple, list)) and len(output) == 2):
        raise AuditInputError(f"scorer.score must return (probs, on_option_mass); got {type(output).__name__}"
                              + (f" of length {len(output)}" if isinstance(output, (list, tuple)) else ""))
    try:
        pos_probs = np.asarray(output[0], dtype=np.float64)
        mass = np.asarray(output[1], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise AuditInputError(f"scorer returned probabilities that are not numeric arrays ({err})") from None
    if pos_probs.shape != (n, k) or mass.shape != (n,):
        raise AuditInputError(f"scorer returned shapes {pos_probs.shape}, {mass.shape}; expected ({n}, {k}), ({n},)")
    bad = ~np.isfinite(pos_probs).all(axis=1)
    if bad.any():
        raise AuditInputError(f"scorer returned NaN or infinite probabilities: {_rows(items, bad, pos_probs)}")
    bad = (pos_probs < 0).any(axis=1)
    if bad.any():
        raise AuditInputError(f"scorer returned negative probabilities: {_rows(items, bad, pos_probs)}")
    sums = pos_probs.sum(axis=1)
    bad = np.abs(sums - 1.0) > tol
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise AuditInputError(
            f"scorer returned probabilities whose rows do not sum to 1 (item {items[i].id!r} sums to "
            f"{sums[i]:.6g}; {int(bad.sum())} of {n} rows): renormalise over the options and report the mass "
            f"before in on_option_mass; {_rows(items, bad, pos_probs)}")
    bad = ~np.isfinite(mass) | (mass < 0) | (mass > 1.0 + LOGPROB_SUM_TOL)
    if bad.any():
        raise AuditInputError(f"scorer returned on_option_mass outside [0, 1]: "
                              f"{_rows(items, bad, mass[:, None])}")
    return pos_probs, mass


def answer_distributions(engine: Engine | AnswerScorer, items: Sequence[MultipleChoiceItem],
                         design: PromptDesign = PromptDesign()) -> AnswerDistributions:
    """Score ``items`` under ``design``; ``engine`` is an :class:`~plural_kit.engine.Engine` or an
    :class:`AnswerScorer`.

    All items go through the engine in one batched call (per distinct label-token set).
    """
    items = list(items)
    if not items:
        raise AuditInputError("no items to score")
    if not all(isinstance(it, MultipleChoiceItem) for it in items):
        raise AuditInputError("items must be MultipleChoiceItem objects")
    k = len(items[0].options)
    if any(len(it.options) != k for it in items):
        raise AuditInputError("all items scored together must have the same number of options")
    scorer = _as_scorer(engine)
    built = [build_prompt(it, design, scorer, item_index=i) for i, it in enumerate(items)]
    prompts = [b[0] for b in built]
    display = np.stack([b[1] for b in built])
    pos_probs, mass = check_scorer_output(scorer.score(prompts, [b[2] for b in built]), items)
    probs = np.empty_like(pos_probs)
    np.put_along_axis(probs, display, pos_probs, axis=1)  # probs[i, display[i, j]] = pos_probs[i, j]
    return AnswerDistributions(items, design, probs, pos_probs, display, mass, prompts)
