"""ForwardEngine: pooling against unbatched runs, early stop, hooks, log-probs, generation, errors.

Most tests use tiny randomly initialised models (fast, exact in fp32) with the bundled MiniLM
tokenizer; the ``slow`` ones load the real bundled SmolLM2.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch
from tiny_models import TEXTS, tiny_causal_lm
from tiny_models import tiny_bert as tiny_bert_model

from plural_kit.engine import ForwardEngine, decoder_blocks


@pytest.fixture(scope="module")
def tiny_llama(tokenizer):
    return tiny_causal_lm(tokenizer)


@pytest.fixture(scope="module")
def tiny_bert(tokenizer):
    return tiny_bert_model(tokenizer)


_REFS: dict = {}


def reference(model, tokenizer, text, layer):
    """Unbatched hidden states (seq, d) of one text, from a plain full forward pass (memoised)."""
    key = (id(model), text)
    if key not in _REFS:
        with torch.no_grad():
            out = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True)
        _REFS[key] = [h[0].float().numpy() for h in out.hidden_states]
    return _REFS[key][layer]


def pool_ref(h, pooling):
    if pooling == "mean":
        return h.mean(0)
    k = -1 if pooling == "last" else pooling
    return h[max(min(k, len(h) - 1), -len(h))]


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("which", ["tiny_llama", "tiny_bert"])
@pytest.mark.parametrize("pooling", ["last", "mean", -3, 0])
def test_pooling_matches_unbatched(request, tokenizer, side, which, pooling):
    model = request.getfixturevalue(which)
    eng = ForwardEngine(model, tokenizer, device="cpu", dtype="float32", batch_size=4, padding_side=side,
                        progress=False)
    layers = [0, 1, -2, -1]
    got = eng.hidden_states(TEXTS, layers, pooling=pooling)
    assert set(got) == set(layers)
    for i, text in enumerate(TEXTS):
        for layer in layers:
            want = pool_ref(reference(model, tokenizer, text, layer), pooling)
            np.testing.assert_allclose(got[layer][i], want, rtol=1e-4, atol=1e-5,
                                       err_msg=f"{which} {side} {pooling} layer {layer} text {i}")
    assert all(v.dtype == np.float32 and v.shape == (len(TEXTS), 32) for v in got.values())


def hook_snapshot(model):
    """Ids of every forward (pre-)hook on the model's modules (transformers installs some of its own)."""
    return {name: (tuple(m._forward_hooks), tuple(m._forward_pre_hooks)) for name, m in model.named_modules()}


def test_stops_at_deepest_layer_and_never_runs_head(tiny_llama, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False)
    eng.hidden_states(TEXTS[:1], [1])
    snapshot = hook_snapshot(tiny_llama)
    calls = {"block2": 0, "block3": 0, "head": 0}
    blocks = decoder_blocks(tiny_llama)
    handles = [blocks[1].register_forward_hook(lambda *a: calls.__setitem__("block2", calls["block2"] + 1)),
               blocks[2].register_forward_hook(lambda *a: calls.__setitem__("block3", calls["block3"] + 1)),
               tiny_llama.lm_head.register_forward_hook(lambda *a: calls.__setitem__("head", 1))]
    try:
        out = eng.hidden_states(TEXTS, [1, 2])
        assert calls["block2"] >= 1 and calls["block3"] == 0
        full = eng.hidden_states(TEXTS, [-1, 2])  # the last layer runs the whole body (and its norm) ...
        assert calls["block3"] >= 1 and calls["head"] == 0  # ... but not the LM head
    finally:
        for h in handles:
            h.remove()
    np.testing.assert_allclose(out[2], full[2], rtol=1e-5, atol=1e-6)
    assert hook_snapshot(tiny_llama) == snapshot  # capture hooks removed


def test_hooks_edit_and_leave_the_model_identical(tiny_llama, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False)
    ids = tokenizer(TEXTS[0], return_tensors="pt")
    with torch.no_grad():
        before = tiny_llama(**ids).logits
    snapshot = hook_snapshot(tiny_llama)
    seen = []
    with eng.hooks({0: lambda h: h * 0.5, 2: lambda h: seen.append(h.shape) or None}):
        with torch.no_grad():
            during = tiny_llama(**ids).logits
        edited = eng.hidden_states([TEXTS[0]], [0])[0][0]
    with torch.no_grad():
        after = tiny_llama(**ids).logits
    assert torch.equal(before, after)
    assert not torch.allclose(before, during)
    assert seen and seen[0][-1] == 32
    np.testing.assert_allclose(edited, 0.5 * reference(tiny_llama, tokenizer, TEXTS[0], 0)[-1], rtol=1e-5)
    # removed even when the body raises
    with pytest.raises(KeyError):
        with eng.hooks({-1: lambda h: h + 1.0}):
            raise KeyError("boom")
    assert hook_snapshot(tiny_llama) == snapshot


def test_hook_replacement_changes_output_of_the_right_block(tiny_llama, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False)
    with eng.hooks({2: lambda h: torch.zeros_like(h)}):
        got = eng.hidden_states(TEXTS[:2], [1, 2])
    clean = eng.hidden_states(TEXTS[:2], [1, 2])
    np.testing.assert_allclose(got[1], clean[1])
    assert np.all(got[2] == 0)


@pytest.mark.parametrize("token_ids", [None, [5, 17, 1012], ["the", 7]])
def test_next_token_logprobs_match_direct_forward(tiny_llama, tokenizer, token_ids):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", batch_size=4, progress=False)
    got = eng.next_token_logprobs(TEXTS, token_ids)
    cols = None if token_ids is None else eng.token_ids(token_ids)
    for i, text in enumerate(TEXTS):
        with torch.no_grad():
            logits = tiny_llama(**tokenizer(text, return_tensors="pt")).logits[0, -1]
        want = torch.log_softmax(logits, -1).numpy()
        np.testing.assert_allclose(got[i], want if cols is None else want[cols], rtol=1e-4, atol=1e-4)


def test_continuation_logprobs_match_direct_forward(tiny_llama, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", batch_size=3, progress=False)
    prompts = TEXTS[:5]
    conts = ["yes", "no way at all", "maybe so", "the answer is b", "ok"]
    got = eng.continuation_logprobs(prompts, conts)
    mean = eng.continuation_logprobs(prompts, conts, reduce="mean")
    for i, (p, c) in enumerate(zip(prompts, conts)):
        p_ids = tokenizer(p)["input_ids"]
        c_ids = tokenizer(c, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = tiny_llama(torch.tensor([p_ids + c_ids])).logits[0]
        logp = torch.log_softmax(logits, -1)
        want = sum(logp[len(p_ids) - 1 + j, t].item() for j, t in enumerate(c_ids))
        np.testing.assert_allclose(got[i], want, rtol=1e-4)
        np.testing.assert_allclose(mean[i], want / len(c_ids), rtol=1e-4)
    with pytest.raises(ValueError, match="differ in length"):
        eng.continuation_logprobs(prompts, conts[:2])


def test_generate_batched_equals_unbatched_and_sampling_is_seeded(tiny_llama, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", batch_size=3, progress=False)
    batched = eng.generate(TEXTS[:4], max_new_tokens=6)
    single = [eng.generate([t], max_new_tokens=6)[0] for t in TEXTS[:4]]
    assert batched == single and all(isinstance(t, str) for t in batched)
    state = torch.random.get_rng_state()
    a = eng.generate(TEXTS[:3], max_new_tokens=6, do_sample=True, seed=3)
    b = eng.generate(TEXTS[:3], max_new_tokens=6, do_sample=True, seed=3)
    c = eng.generate(TEXTS[:3], max_new_tokens=6, do_sample=True, seed=4)
    assert a == b and a != c
    assert torch.equal(state, torch.random.get_rng_state())


def test_out_of_memory_halves_the_batch(tiny_llama, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", batch_size=6, progress=False)
    want = eng.hidden_states(TEXTS, [2])[2]

    def fail_big(module, args):
        if args[0].shape[0] > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")

    h = tiny_llama.model.embed_tokens.register_forward_pre_hook(fail_big)
    try:
        got = eng.hidden_states(TEXTS, [2])[2]
    finally:
        h.remove()
    assert eng._backoff.cap in (1, 2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_truncation_keeps_the_end_for_causal_models(tiny_llama, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", max_length=4, progress=False)
    ids = eng.tokenize([TEXTS[0]])[0]
    assert ids == tokenizer(TEXTS[0])["input_ids"][-4:]


def test_bad_input_is_named(tiny_llama, tiny_bert, tokenizer):
    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False)
    with pytest.raises(ValueError, match="empty"):
        eng.hidden_states([], [1])
    with pytest.raises(TypeError, match="index 1"):
        eng.hidden_states(["ok", 3], [1])
    with pytest.raises(TypeError, match="single string"):
        eng.next_token_logprobs("just one")
    with pytest.raises(ValueError, match="out of range"):
        eng.hidden_states(["ok"], [7])
    with pytest.raises(ValueError, match="pooling"):
        eng.hidden_states(["ok"], [1], pooling="max")
    with pytest.raises(ValueError, match="not one"):
        eng.next_token_logprobs(["ok"], ["two words"])
    with pytest.raises(ValueError, match="no chat template"):
        eng.apply_chat_template(["hi"])
    bert = ForwardEngine(tiny_bert, tokenizer, device="cpu", dtype="float32", progress=False)
    with pytest.raises(TypeError, match="causal"):
        bert.next_token_logprobs(["hi"])
    with pytest.raises(TypeError, match="tokenizer"):
        ForwardEngine(tiny_bert)


# ---------------------------------------------------------------- the real bundled SmolLM2
@pytest.fixture(scope="module")
def smollm():
    from plural_kit.models import load_model

    return load_model("smollm2-135m-instruct", device="cpu")


@pytest.mark.slow
def test_smollm_bf16_matches_fp32_and_chat_template(smollm):
    model, tok = smollm
    texts = TEXTS[:4]
    bf16 = ForwardEngine(model, tok, device="cpu", dtype="bfloat16", progress=False).hidden_states(texts, [-2])[-2]
    fp32 = ForwardEngine(model, tok, device="cpu", dtype="float32", progress=False).hidden_states(texts, [-2])[-2]
    cos = (bf16 * fp32).sum(1) / np.linalg.norm(bf16, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cos.min() >= 0.99, cos
    eng = ForwardEngine(model, tok, device="cpu", dtype="bfloat16", progress=False)
    prompt = eng.apply_chat_template(["What is the capital of France?"], system="Answer briefly.")[0]
    assert prompt.startswith("<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\n")
    assert prompt.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert eng.tokenize([prompt])[0][0] == tok.convert_tokens_to_ids("<|im_start|>")  # BOS not doubled
    with pytest.raises(ValueError, match="empty after tokenisation"):
        eng.tokenize(["fine", ""])
    default = eng.apply_chat_template(["What is the capital of France?"])[0]
    assert default.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")
    assert "Paris" in eng.generate([default], max_new_tokens=12)[0]
    # after the generation prompt "<|im_start|>assistant\n" option letters come without a leading space
    quiz = eng.apply_chat_template(["Which is a fruit? (A) apple (B) car. Answer with A or B."])
    lp = eng.next_token_logprobs(quiz + ["The capital of France is"], ["A", "B", " Paris", " London"])
    assert lp.shape == (2, 4) and lp[0, 0] > lp[0, 1] and lp[1, 2] > lp[1, 3]


@pytest.mark.parametrize("side", ["left", "right"])
def test_roberta_positions_are_the_models_own(tokenizer, side):
    """RoBERTa numbers positions from padding_idx + 1: the engine must not pass 0-based ids."""
    from transformers import RobertaConfig, RobertaModel

    torch.manual_seed(0)
    cfg = RobertaConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                        num_attention_heads=4, max_position_embeddings=260, pad_token_id=tokenizer.pad_token_id,
                        architectures=["RobertaModel"])
    model = RobertaModel(cfg).eval()
    engine = ForwardEngine(model, tokenizer, device="cpu", dtype="float32", progress=False, padding_side=side)
    got = engine.hidden_states(TEXTS, layers=[-1], pooling="mean")[-1]
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(got[i], reference(model, tokenizer, text, -1).mean(0), atol=1e-4)


def test_hooks_replace_the_first_field_of_a_model_output():
    from transformers.modeling_outputs import BaseModelOutput

    from plural_kit._hooks import replace_first_tensor as _replace_first

    out = _replace_first(BaseModelOutput(last_hidden_state=torch.zeros(1, 2, 3)), torch.ones(1, 2, 3))
    assert torch.equal(out.last_hidden_state, torch.ones(1, 2, 3))


def test_replace_first_tensor_handles_each_output_kind():
    from plural_kit._hooks import replace_first_tensor

    h, new = torch.zeros(1, 2, 3), torch.ones(1, 2, 3)
    assert replace_first_tensor(h, new) is new
    out = replace_first_tensor((h, "cache"), new)
    assert out[0] is new and out[1] == "cache"
    assert replace_first_tensor([h, 1], new)[0] is new


# ---------------------------------------------------------------- points: before and after the final norm
@pytest.mark.parametrize("packed", [False, "auto"])
def test_named_points_tell_the_last_block_from_the_final_norm(tiny_llama, tokenizer, packed):
    from plural_kit.engine import FINAL_NORM

    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False, packed=packed)
    assert (eng.packed_decoder() is not None) == (packed == "auto")
    n = eng.n_layers
    last_block = f"blocks.{n - 1}.hook_resid_post"
    got = eng.hidden_states(TEXTS, [n, -1, FINAL_NORM, last_block, "blocks.0.hook_resid_pre", "blocks.0.hook_resid_post"])
    want_final = np.stack([reference(tiny_llama, tokenizer, t, n)[-1] for t in TEXTS])  # HF: after the norm
    for key in (n, -1, FINAL_NORM):
        np.testing.assert_allclose(got[key], want_final, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got["blocks.0.hook_resid_pre"], eng.hidden_states(TEXTS, [0])[0])
    np.testing.assert_allclose(got["blocks.0.hook_resid_post"], eng.hidden_states(TEXTS, [1])[1], rtol=1e-5, atol=1e-6)
    # the last block's output before the norm: what hooks({n: fn}) sees
    seen, normed = [], []
    with eng.hooks({n: lambda h: seen.append(h[:, -1].float().clone()) or None,
                    FINAL_NORM: lambda h: normed.append(h[:, -1].float().clone()) or None}):
        eng.next_token_logprobs([TEXTS[1]])  # one text, no padding: position -1 is its last token
    np.testing.assert_allclose(seen[0][0].numpy(), eng.hidden_states([TEXTS[1]], [last_block])[last_block][0],
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(normed[0][0].numpy(), got[FINAL_NORM][1], rtol=1e-4, atol=1e-5)
    assert not np.allclose(got[last_block], got[FINAL_NORM], atol=1e-3)


@pytest.mark.parametrize("packed", [False, "auto"])
def test_hook_after_the_final_norm_edits_what_the_head_reads(tiny_llama, tokenizer, packed):
    from plural_kit.engine import FINAL_NORM

    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False, packed=packed)
    n = eng.n_layers
    with eng.hooks({FINAL_NORM: lambda h: torch.zeros_like(h)}):
        lp = eng.next_token_logprobs(TEXTS[:2])
        final = eng.hidden_states(TEXTS[:2], [FINAL_NORM, n - 1])
    np.testing.assert_allclose(lp, -np.log(tiny_llama.config.vocab_size), rtol=1e-5)  # zero logits: uniform
    assert np.all(final[FINAL_NORM] == 0)
    np.testing.assert_allclose(final[n - 1], eng.hidden_states(TEXTS[:2], [n - 1])[n - 1])  # upstream untouched
    # the same edit before the norm: equivalent int and name
    with eng.hooks({n: lambda h: h * 2.0}):
        by_int = eng.hidden_states(TEXTS[:2], [f"blocks.{n - 1}.hook_resid_post"])
    with eng.hooks({f"blocks.{n - 1}.hook_resid_post": lambda h: h * 2.0}):
        by_name = eng.hidden_states(TEXTS[:2], [f"blocks.{n - 1}.hook_resid_post"])
    key = f"blocks.{n - 1}.hook_resid_post"
    np.testing.assert_allclose(by_int[key], by_name[key])
    np.testing.assert_allclose(by_int[key], 2 * eng.hidden_states(TEXTS[:2], [key])[key], rtol=1e-5)


def test_bad_points_are_named(tiny_llama, tiny_bert, tokenizer):
    from plural_kit.engine import FINAL_NORM

    eng = ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False)
    with pytest.raises(ValueError, match="unknown point 'blocks.3.hook_resid_post'.*0..2"):
        eng.hidden_states(["ok"], ["blocks.3.hook_resid_post"])
    with pytest.raises(ValueError, match="unknown point 'resid_post'"), eng.hooks({"resid_post": lambda h: None}):
        pass
    with pytest.raises(TypeError, match="not callable"), eng.hooks({1: "not a function"}):
        pass
    bert = ForwardEngine(tiny_bert, tokenizer, device="cpu", dtype="float32", progress=False)
    with pytest.raises(ValueError, match="no final norm.*layer 3"), bert.hooks({FINAL_NORM: lambda h: None}):
        pass
    np.testing.assert_allclose(bert.hidden_states(TEXTS[:2], [FINAL_NORM])[FINAL_NORM],
                               bert.hidden_states(TEXTS[:2], ["blocks.2.hook_resid_post"])["blocks.2.hook_resid_post"])


# ---------------------------------------------------------------- batching helpers
def test_length_sorted_batches_halve_on_out_of_memory():
    from plural_kit._batching import (
        OutOfMemoryBackoff,
        length_sorted_batches,
        token_budget,
    )

    ids = [[1] * n for n in (3, 9, 1, 5, 7, 2)]
    sizes = []

    def step(seqs, idx):
        if len(seqs) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        sizes.append(len(seqs))
        return [len(s) for s in seqs]

    backoff = OutOfMemoryBackoff()
    out = list(length_sorted_batches(ids, step, collate=list, budget=lambda: (100, 6), backoff=backoff,
                                     device=torch.device("cpu")))
    assert backoff.cap == 1 or backoff.cap == 2
    assert sizes and max(sizes) <= 2 and sum(sizes) == len(ids)
    order = np.concatenate([idx for idx, _ in out])
    assert sorted(order) == list(range(len(ids)))
    lengths = [n for _, res in out for n in res]
    assert lengths == sorted(lengths, reverse=True)  # longest first
    # the token budget bounds padded tokens: width 9 with a budget of 10 tokens gives one text
    first = next(iter(length_sorted_batches(ids, lambda s, i: s, collate=list, budget=lambda: (10, 6),
                                            backoff=OutOfMemoryBackoff(), device=torch.device("cpu"))))
    assert len(first[0]) == 1
    with pytest.raises(ValueError, match="boom"):  # other errors are raised, not retried
        list(length_sorted_batches(ids, lambda s, i: (_ for _ in ()).throw(ValueError("boom")), collate=list,
                                   budget=lambda: (100, 6), backoff=OutOfMemoryBackoff(), device=torch.device("cpu")))
    assert token_budget(5, torch.device("cpu"), torch.float32, 32, 64) == (float("inf"), 5)
    assert token_budget("auto", torch.device("cpu"), torch.float32, 32, 64, packed=True) == (2048, 128)


# ---------------------------------------------------------------- the engine contract
class FakeEngine:
    """The smallest object that satisfies :class:`plural_kit.engine.Engine`: a tokenizer and
    fixed next-token log-probs (option "A" always most likely)."""

    n_layers, hidden_size = 2, 4

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def resolve_layer(self, layer):
        return layer % (self.n_layers + 1)

    def apply_chat_template(self, prompts, system=None, add_generation_prompt=True):
        return [f"<user>{p}</user>\n" for p in prompts]

    def hidden_states(self, texts, layers=-2, pooling="last"):
        return {layers: np.zeros((len(texts), self.hidden_size), np.float32)}

    def next_token_logprobs(self, texts, token_ids=None):
        a = self.tokenizer.encode("A", add_special_tokens=False)[0]
        return np.array([[-0.1 if t == a else -3.0 for t in token_ids]] * len(texts), dtype=np.float32)

    def continuation_logprobs(self, prompts, continuations):
        return np.zeros(len(prompts), np.float32)

    def generate(self, prompts, max_new_tokens=64, do_sample=False, **kwargs):
        return [""] * len(prompts)

    def hooks(self, fns):
        return contextlib.nullcontext(self)


def test_forward_engine_and_a_fake_satisfy_the_engine_contract(tiny_llama, tokenizer):
    from plural_kit.audit import MultipleChoiceItem, PromptDesign, answer_distributions
    from plural_kit.engine import Engine

    assert isinstance(ForwardEngine(tiny_llama, tokenizer, device="cpu", dtype="float32", progress=False), Engine)
    fake = FakeEngine(tokenizer)
    assert isinstance(fake, Engine)
    NoHooks = type("NoHooks", (), {k: v for k, v in vars(FakeEngine).items() if k != "hooks"})
    assert not isinstance(NoHooks(tokenizer), Engine)  # a missing method breaks the contract
    items = [MultipleChoiceItem("q", "Is it?", ("yes", "no", "maybe"))]
    res = answer_distributions(fake, items, PromptDesign(order="reversed"))
    assert res.prompts[0].startswith("<user>") and res.prompts[0].endswith("\n")
    w = np.exp([-0.1, -3.0, -3.0])
    np.testing.assert_allclose(res.position_probs[0], w / w.sum(), rtol=1e-5)  # "A" is shown first ...
    np.testing.assert_allclose(res.probs[0], (w / w.sum())[::-1], rtol=1e-5)  # ... and is the last option
    assert res.on_option_mass[0] == pytest.approx(w.sum(), rel=1e-5)
