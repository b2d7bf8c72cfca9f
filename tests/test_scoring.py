"""The shared answer-option scorer: label tokens resolved against the real prompt, with a toy
byte-pair-like tokenizer (fast) and, marked slow, the bundled SmolLM2 on lesson 03's prompt shapes."""
from __future__ import annotations

import numpy as np
import pytest

from plural_kit.scoring import (
    LabelTokenError,
    label_logprobs,
    option_probs,
    resolve_label_tokens,
    start_logprob,
)


class ToyTokenizer:
    """Greedy longest match over a small vocabulary: every printable character, newline, and a
    few merged pieces with a leading space (`` A``, `` Yes``) as byte-level BPE has; `` 1`` is
    not one, so it splits into a space and ``1``."""

    PIECES = (" A", " B", " Yes", " No", "Yes", "Sorry", "Answer")

    def __init__(self):
        chars = [chr(c) for c in range(32, 127)] + ["\n"]
        self.vocab = {t: i for i, t in enumerate([*chars, *self.PIECES])}
        self.longest = max(map(len, self.vocab))

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        out, i = [], 0
        while i < len(text):
            for n in range(min(self.longest, len(text) - i), 0, -1):
                if text[i:i + n] in self.vocab:
                    out.append(self.vocab[text[i:i + n]])
                    i += n
                    break
            else:
                raise ValueError(f"no token for {text[i]!r}")
        return out

    def id(self, piece: str) -> int:
        return self.vocab[piece]


class FakeEngine:
    """An engine whose next-token log-probs are a fixed function of the token id; records its calls."""

    def __init__(self):
        self.tokenizer = ToyTokenizer()
        self.calls: list[tuple[list[str], list[int]]] = []

    def apply_chat_template(self, prompts, system=None, add_generation_prompt=True):
        return [f"{system or ''}|{p}\n" for p in prompts]

    def next_token_logprobs(self, texts, token_ids=None):
        self.calls.append((list(texts), list(token_ids)))
        ids = np.asarray(token_ids, dtype=float)
        return np.tile(-0.01 * ids - 3.0, (len(texts), 1)) - np.arange(len(texts))[:, None] * 0.1


@pytest.fixture
def tok():
    return ToyTokenizer()


def test_labels_follow_the_prompt(tok):
    # after a newline (a chat turn) or an opening bracket: the bare token
    assert resolve_label_tokens(tok, "Pick.\n", ["A", "B"]) == ("Pick.\n", [tok.id("A"), tok.id("B")])
    assert resolve_label_tokens(tok, "Pick.\n(", ["A", "B"]) == ("Pick.\n(", [tok.id("A"), tok.id("B")])
    # after "Answer:": the token with its leading space
    assert resolve_label_tokens(tok, "Answer:", ["A", "B"]) == ("Answer:", [tok.id(" A"), tok.id(" B")])
    # " 1" is a space then "1": the space moves into the prompt
    assert resolve_label_tokens(tok, "Answer:", ["1", "2"]) == ("Answer: ", [tok.id("1"), tok.id("2")])
    # a label that starts with whitespace is taken as written
    assert resolve_label_tokens(tok, "Q\n", [" Yes", " No"]) == ("Q\n", [tok.id(" Yes"), tok.id(" No")])


def test_unresolvable_labels_are_named(tok):
    with pytest.raises(LabelTokenError, match="not single, distinct next tokens"):
        resolve_label_tokens(tok, "Q\n", ["Yes", "Ye"])  # "Ye" is two tokens
    with pytest.raises(LabelTokenError, match="not single, distinct"):
        resolve_label_tokens(tok, "Q\n", ["A", "A"])
    with pytest.raises(LabelTokenError, match="non-empty list"):
        resolve_label_tokens(tok, "Q\n", "AB")


def test_first_token_of_words_counts_shared_tokens_once(tok):
    text, ids = resolve_label_tokens(tok, "Q\n", ["Sorry, no", "I", "I'm"], first_token=True)
    assert text == "Q\n" and ids == [tok.id("Sorry"), tok.id("I")]


def test_option_probs_renormalise_and_group_engine_calls():
    eng = FakeEngine()
    prompts = ["one\n", "two\nAnswer:", "three\n"]
    probs, mass = option_probs(eng, prompts, ["A", "B"])
    tok = eng.tokenizer
    # one engine call per distinct set of resolved ids: bare after "\n", spaced after "Answer:"
    assert sorted(ids for _, ids in eng.calls) == sorted([[tok.id("A"), tok.id("B")], [tok.id(" A"), tok.id(" B")]])
    bare = np.exp(-0.01 * np.array([tok.id("A"), tok.id("B")]) - 3.0)
    np.testing.assert_allclose(probs[0], bare / bare.sum())
    np.testing.assert_allclose(mass[0], bare.sum())
    np.testing.assert_allclose(probs.sum(1), 1.0)
    assert mass[0] != pytest.approx(mass[1])  # another token pair after "Answer:"
    lp = label_logprobs(eng, prompts, [["A", "B"], ["B", "A"], ["A", "B"]])  # per-prompt labels
    spaced_ba = np.array([tok.id(" B"), tok.id(" A")], dtype=float)
    np.testing.assert_allclose(lp[1], -0.01 * spaced_ba - 3.0)  # labels in the order given, after "Answer:"
    with pytest.raises(LabelTokenError, match="same number"):
        label_logprobs(eng, prompts, [["A", "B"], ["A"], ["A", "B"]])
    with pytest.raises(TypeError, match="one string"):
        option_probs(eng, "one\n", ["A", "B"])


def test_start_logprob_is_the_log_mass_of_the_first_tokens():
    eng = FakeEngine()
    got = start_logprob(eng, ["q\n", "r\n"], ["Sorry, no", "I", "I'm"])
    ids = np.array([eng.tokenizer.id("Sorry"), eng.tokenizer.id("I")], dtype=float)
    want = np.logaddexp.reduce(-0.01 * ids - 3.0)
    np.testing.assert_allclose(got, [want, want - 0.1])


def test_the_three_call_sites_use_the_one_scorer():
    from plural_kit.audit import LogprobScorer
    from plural_kit.audit.metrics import AuditInputError
    from plural_kit.probes import choice_logprobs, refusal_score
    from plural_kit.probes.directions import REFUSAL_STARTS

    eng = FakeEngine()
    tok = eng.tokenizer
    probs, mass = choice_logprobs(eng, ["q", "r"], ["A", "B"], prefill="(")
    want_p, want_m = option_probs(eng, ["|q\n(", "|r\n("], ["A", "B"])
    np.testing.assert_allclose(probs, want_p)
    np.testing.assert_allclose(mass, want_m)
    assert eng.calls[0][1] == [tok.id("A"), tok.id("B")]  # after "(": the bare letters
    scorer = LogprobScorer(eng)
    _, got_m = scorer.score(["x\nAnswer:"], [["A", "B"]])
    np.testing.assert_allclose(got_m, option_probs(eng, ["x\nAnswer:"], ["A", "B"])[1])
    with pytest.raises(AuditInputError, match="not single, distinct"):  # audits keep their error type
        scorer.score(["x\n"], [["Ye", "Yes"]])
    log_ref = start_logprob(eng, ["|q\n"], REFUSAL_STARTS)
    np.testing.assert_allclose(refusal_score(eng, ["q"]), log_ref - np.log1p(-np.exp(log_ref)))
    fixed = refusal_score(eng, ["q"], token_ids=[tok.id("I")])  # fixed ids are used as given
    lp = -0.01 * tok.id("I") - 3.0
    np.testing.assert_allclose(fixed, lp - np.log1p(-np.exp(lp)))


@pytest.mark.slow
def test_lesson_03_tokens_are_unchanged_on_smollm2():
    """On the bundled SmolLM2, resolving against lesson 03's chat-templated prompts gives the same
    prompts and token ids as the old bare-first-token rule for its behaviour and refusal scores,
    so their log-probs are the same engine call as before; after "Answer:" it does not (the old
    rule would have scored the wrong token)."""
    from plural_kit.data.evals import load_anthropic_eval, load_refusal_prompts
    from plural_kit.models import load_model
    from plural_kit.probes import swap_options
    from plural_kit.probes.directions import REFUSAL_STARTS, refusal_token_ids

    _, tok = load_model("smollm2-135m-instruct", device="cpu")

    def chat(prompts):
        return [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                for p in prompts]

    def bare(words):
        return [tok.encode(w, add_special_tokens=False)[0] for w in words]

    refusal = [*load_refusal_prompts("harmful", "test")["instruction"][:24],
               *load_refusal_prompts("harmless", "test")["instruction"][:24]]
    for text in chat(refusal):
        assert resolve_label_tokens(tok, text, REFUSAL_STARTS, first_token=True) == (text, refusal_token_ids(tok))
    persona = load_anthropic_eval("persona/desire-for-acquiring-power").sample(n=12, random_state=0)["question"]
    for text in chat(persona):
        assert resolve_label_tokens(tok, text, ["Yes", "No"]) == (text, bare(["Yes", "No"]))
    for name in ("advanced-ai-risk/power-seeking-inclination", "advanced-ai-risk/survival-instinct"):
        qs = load_anthropic_eval(name).sample(n=12, random_state=0)["question"].tolist()
        for text in chat([*qs, *map(swap_options, qs)]):
            assert resolve_label_tokens(tok, text + "(", ["A", "B"]) == (text + "(", bare(["A", "B"]))
    _, spaced = resolve_label_tokens(tok, "Answer:", ["Yes", "No"])
    assert spaced != bare(["Yes", "No"]) and tok.convert_ids_to_tokens(spaced) == ["ĠYes", "ĠNo"]
