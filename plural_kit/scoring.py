"""One answer-option scorer: the probability of each option label as the model's next token.

Audits (:class:`plural_kit.audit.LogprobScorer`), behaviour probes
(:func:`plural_kit.probes.choice_logprobs`) and the refusal score
(:func:`plural_kit.probes.refusal_score`) all read options this way.

Label tokens are resolved against the real prompt: the label's token is the one the tokenizer
produces for it *when it follows the prompt*. After a chat template's generation prompt
(``...<|im_start|>assistant\\n``) or an opening bracket (``(``) that is the token without a
leading space (``A``); after ``Answer:`` the token with one (`` A``); when a tokenizer splits
`` 1`` into a space and ``1``, the space is moved into the prompt. A label that starts with
whitespace is taken as written.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["EngineOutputError", "LabelTokenError", "check_logprobs", "label_logprobs", "option_probs", "resolve_label_tokens", "start_logprob"]

#: After these characters (and after whitespace) a label follows with no space: ``(A``, ``"Yes``.
NO_SPACE_AFTER = "([{<\"'`"


class LabelTokenError(ValueError):
    """A label is not a (distinct) next token after its prompt for this tokenizer."""


class EngineOutputError(ValueError):
    """An engine returned next-token log-probabilities that are not log-probabilities."""


#: Slack for rounding (float32/bf16 engines): a log-probability up to this above 0 is accepted.
LOGPROB_TOL = 1e-3
#: A total probability over distinct tokens up to ``1 + LOGPROB_SUM_TOL`` is accepted (hand-written
#: fakes round their log-probabilities: ``-0.1, -3, -3`` sum to 1.004).
LOGPROB_SUM_TOL = 1e-2


def check_logprobs(logprobs, n: int, k: int, where: str = "engine.next_token_logprobs") -> np.ndarray:
    """Return ``logprobs`` as a float64 ``(n, k)`` array after checking that it is ``k`` distinct tokens'
    log-probabilities for each of ``n`` texts: no NaN, no +inf, each <= 0 and their total
    probability per row <= 1 (within :data:`LOGPROB_TOL` and :data:`LOGPROB_SUM_TOL`; ``-inf`` =
    probability 0 is allowed). Raises :class:`EngineOutputError`
    naming the problem, the rows and the values."""
    try:
        arr = np.asarray(logprobs, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise EngineOutputError(f"{where} returned values that are not a numeric array ({err})") from None
    if arr.shape != (n, k):
        raise EngineOutputError(f"{where} returned shape {arr.shape}; expected ({n}, {k}) (texts, token ids)")

    def rows(bad) -> str:
        idx = np.flatnonzero(bad)
        return "; ".join(f"row {i}: {np.array2string(arr[i], precision=4)}" for i in idx[:3]) + (
            f" (and {idx.size - 3} more)" if idx.size > 3 else "")

    bad = np.isnan(arr).any(axis=1) | (arr == np.inf).any(axis=1)
    if bad.any():
        raise EngineOutputError(f"{where} returned NaN or +inf log-probabilities: {rows(bad)}")
    bad = (arr > LOGPROB_TOL).any(axis=1)
    if bad.any():
        raise EngineOutputError(f"{where} returned log-probabilities above 0 (probabilities above 1; "
                                f"were logits or probabilities passed instead?): {rows(bad)}")
    with np.errstate(over="ignore"):
        total = np.exp(arr).sum(axis=1)
    bad = total > 1.0 + LOGPROB_SUM_TOL
    if bad.any():
        raise EngineOutputError(f"{where} returned log-probabilities of distinct tokens whose probabilities sum "
                                f"above 1 (max {total.max():.6g}; not a log-softmax?): {rows(bad)}")
    return arr


def _lead(prompt: str) -> str:
    return "" if not prompt or prompt[-1].isspace() or prompt[-1] in NO_SPACE_AFTER else " "


def resolve_label_tokens(tokenizer, prompt: str, labels: Sequence[str], *,
                         first_token: bool = False) -> tuple[str, list[int]]:
    """``(prompt_used, token_ids)``: the next token that stands for each label after ``prompt_used``.

    Tries, in order: the labels as they would follow the prompt (no leading space after
    whitespace or an opening bracket/quote, a leading space otherwise); the prompt with a
    trailing space and bare labels (tokenizers that split `` 1`` into space + digit); bare
    labels. A strategy is accepted when, for every label, ``tokenize(prompt_used + label)``
    starts with ``tokenize(prompt_used)`` and then has exactly one more token (``first_token``:
    at least one; its first is the label's token, e.g. ``Sorry`` for ``"Sorry, I can't"``), and
    the labels' tokens are distinct (``first_token``: repeated tokens are kept once, so the ids
    may be fewer than the labels). Raises :class:`LabelTokenError` when no strategy fits.
    """
    if isinstance(labels, str) or not len(labels):
        raise LabelTokenError(f"labels must be a non-empty list of strings, got {labels!r}")

    def enc(s: str) -> list[int]:
        return tokenizer.encode(s, add_special_tokens=False)

    lead = _lead(prompt)
    strategies = [(prompt, lead)]
    if lead:
        strategies += [(prompt + " ", ""), (prompt, "")]
    for base, sep in strategies:
        base_ids = enc(base)
        ids: list[int] = []
        for lab in labels:
            full = enc(base + ("" if lab[:1].isspace() else sep) + lab)
            extra = len(full) - len(base_ids)
            if full[:len(base_ids)] != base_ids or extra < 1 or (extra > 1 and not first_token):
                break
            if not (first_token and full[len(base_ids)] in ids):
                ids.append(full[len(base_ids)])
        else:
            if first_token or len(set(ids)) == len(ids):
                return base, ids
    raise LabelTokenError(
        f"the labels {list(labels)} are not {'' if first_token else 'single, distinct '}next tokens after the "
        f"prompt ending {prompt[-40:]!r} for this tokenizer; use other labels"
    )


def _per_prompt(prompts: Sequence[str], labels) -> list[Sequence[str]]:
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not one string")
    if isinstance(labels, str):
        raise TypeError("labels must be a list of strings (or one list per prompt), not one string")
    labels = list(labels)
    if labels and all(isinstance(lab, str) for lab in labels):
        return [labels] * len(prompts)
    if len(labels) != len(prompts):
        raise LabelTokenError(f"{len(labels)} label lists for {len(prompts)} prompts")
    return labels


def _grouped_logprobs(engine, texts: list[str], ids: list[list[int]]) -> list[np.ndarray]:
    """Next-token log-probs (float64) of ``ids[i]`` after ``texts[i]``, one engine call per distinct id list."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, row in enumerate(ids):
        groups.setdefault(tuple(row), []).append(i)
    out: list[np.ndarray] = [np.empty(0)] * len(texts)
    for key, rows in groups.items():
        lp = check_logprobs(engine.next_token_logprobs([texts[i] for i in rows], token_ids=list(key)),
                            len(rows), len(key))
        for r, row in zip(rows, lp):
            out[r] = row
    return out


def label_logprobs(engine, prompts: Sequence[str], labels) -> np.ndarray:
    """Next-token log-probabilities of each label after its prompt: ``(n, K)`` float64.

    ``labels``: one list of K labels for every prompt, or one list per prompt (all of length
    K). Labels are resolved against each prompt (:func:`resolve_label_tokens`); ``engine`` is
    any :class:`plural_kit.engine.Engine` (``tokenizer`` and ``next_token_logprobs`` are used).
    """
    per = _per_prompt(prompts, labels)
    k = len(per[0]) if per else 0
    if any(len(lab) != k for lab in per):
        raise LabelTokenError("all prompts scored together must have the same number of labels")
    resolved = [resolve_label_tokens(engine.tokenizer, p, lab) for p, lab in zip(prompts, per)]
    rows = _grouped_logprobs(engine, [t for t, _ in resolved], [ids for _, ids in resolved])
    return np.stack(rows) if rows else np.empty((0, k))


def option_probs(engine, prompts: Sequence[str], labels) -> tuple[np.ndarray, np.ndarray]:
    """``(probs (n, K) renormalised over the labels, mass (n,) = their total probability before)``.

    A low ``mass`` means the model did not answer in the expected format. See :func:`label_logprobs`.
    """
    p = np.exp(label_logprobs(engine, prompts, labels))
    mass = p.sum(axis=1)
    zero = np.flatnonzero(mass <= 0)
    if zero.size:
        raise EngineOutputError(f"the engine gives probability 0 to every label after {zero.size} prompt(s), e.g. "
                                f"the one ending {prompts[zero[0]][-40:]!r}: they cannot be renormalised")
    return p / mass[:, None], mass


def start_logprob(engine, prompts: Sequence[str], words: Sequence[str]) -> np.ndarray:
    """``log P(the next token starts one of words)`` after each prompt: ``(n,)`` float64.

    Each word's first token is resolved against the prompt (``first_token=True`` of
    :func:`resolve_label_tokens`); words that share a first token count it once.
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not one string")
    resolved = [resolve_label_tokens(engine.tokenizer, p, words, first_token=True) for p in prompts]
    rows = _grouped_logprobs(engine, [t for t, _ in resolved], [ids for _, ids in resolved])
    return np.array([np.logaddexp.reduce(r) for r in rows], dtype=np.float64)
