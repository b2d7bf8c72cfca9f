"""The packed (padding-free) hidden-state path against the model's own forward.

Tiny random Llama, Mistral and Qwen2 models in fp32, so the two paths agree to rounding.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from plural_kit.engine import ForwardEngine
from plural_kit.packed import PackedDecoder, packed_support
from tiny_models import TEXTS as TINY_TEXTS
from tiny_models import tiny_bert, tiny_causal_lm

TEXTS = [*TINY_TEXTS, "x"]
LAYERS = [0, 1, 2, 3]


def tiny(kind: str, tokenizer, **extra):
    model = tiny_causal_lm(tokenizer, kind, intermediate_size=48, **extra)
    with torch.no_grad():  # non-trivial norm weights and biases
        for name, p in model.named_parameters():
            if "norm" in name or name.endswith("bias"):
                p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.fixture(scope="module", params=["llama", "mistral", "qwen2", "llama-biased"])
def model(request, tokenizer):
    if request.param == "llama-biased":
        return tiny("llama", tokenizer, attention_bias=True, mlp_bias=True)
    return tiny(request.param, tokenizer)


def engines(model, tokenizer, **kw):
    fast = ForwardEngine(model, tokenizer, device="cpu", dtype="float32", progress=False, **kw)
    plain = ForwardEngine(model, tokenizer, device="cpu", dtype="float32", progress=False, packed=False)
    assert fast.packed_decoder() is not None and plain.packed_decoder() is None
    return fast, plain


def assert_same(a: dict, b: dict):
    assert set(a) == set(b)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=2e-5, atol=2e-6, err_msg=f"layer {k}")


@pytest.mark.parametrize("pooling", ["last", "mean", 0, -3, 40])
@pytest.mark.parametrize("batch_size", [3, "auto"])
def test_packed_equals_the_models_forward(model, tokenizer, pooling, batch_size):
    fast, plain = engines(model, tokenizer, batch_size=batch_size)
    assert_same(fast.hidden_states(TEXTS, LAYERS, pooling), plain.hidden_states(TEXTS, LAYERS, pooling))


def test_engine_hooks_run_inside_the_packed_path(model, tokenizer):
    fast, plain = engines(model, tokenizer, batch_size=4)
    r = torch.linspace(-1, 1, 32)
    fns = {0: lambda h: h * 1.5, 2: lambda h: h + r, 3: lambda h: None}
    with fast.hooks(fns):
        assert fast.packed_decoder() is not None  # its own hooks do not turn the packed path off
        hooked = fast.hidden_states(TEXTS, LAYERS)
    with plain.hooks(fns):
        assert fast.packed_decoder() is None  # another engine's hooks on the same model do
        assert_same(hooked, plain.hidden_states(TEXTS, LAYERS))
    assert not fast._hooks.active and not fast._hooks.own_ids
    assert not np.allclose(hooked[2], fast.hidden_states(TEXTS, [2])[2])


@pytest.mark.parametrize("side", ["left", "right"])
def test_hooks_see_the_engines_padding_side_and_may_edit_in_place(tokenizer, side):
    model = tiny("llama", tokenizer)
    fast = ForwardEngine(model, tokenizer, device="cpu", dtype="float32", progress=False, padding_side=side)
    plain = ForwardEngine(model, tokenizer, device="cpu", dtype="float32", progress=False, padding_side=side,
                          packed=False)

    def last_position(h):  # position-dependent and in place: the padding side matters
        h[:, -1 if side == "left" else 0] += 2.0

    with fast.hooks({1: last_position}):
        got = fast.hidden_states(TEXTS, [1, 3])
    with plain.hooks({1: last_position}):
        want = plain.hidden_states(TEXTS, [1, 3])
    assert_same(got, want)
    assert not np.allclose(got[3], fast.hidden_states(TEXTS, [3])[3])


def test_transformers_output_recording_hooks_do_not_turn_it_off(tokenizer):
    model = tiny("llama", tokenizer)
    fast, plain = engines(model, tokenizer)
    with torch.no_grad():
        model(**tokenizer(TEXTS[:2], return_tensors="pt", padding=True), output_hidden_states=True)
    assert fast.packed_decoder() is not None and not fast.has_hooks()


def test_a_foreign_hook_turns_the_packed_path_off(tokenizer):
    model = tiny("llama", tokenizer)
    fast, plain = engines(model, tokenizer)
    seen = []
    handle = model.model.layers[1].mlp.register_forward_hook(lambda m, a, out: seen.append(out.shape))
    try:
        assert fast.packed_decoder() is None
        assert_same(fast.hidden_states(TEXTS, [2]), plain.hidden_states(TEXTS, [2]))
        assert seen  # the hook ran
    finally:
        handle.remove()
    assert fast.packed_decoder() is not None


@pytest.mark.parametrize("param", ["self_attn.k_proj.weight", "input_layernorm.weight", "mlp.up_proj.bias"])
def test_rebuilt_after_the_weights_change_in_place(tokenizer, param):
    model = tiny("llama", tokenizer, mlp_bias=True)
    fast, plain = engines(model, tokenizer)
    before = fast.hidden_states(TEXTS, [3])[3]
    with torch.no_grad():
        model.model.layers[0].get_parameter(param).mul_(3.0)
    after = fast.hidden_states(TEXTS, [3])[3]
    assert not np.allclose(before, after)
    assert_same({3: after}, plain.hidden_states(TEXTS, [3]))


def test_replaced_layers_are_checked_again(tokenizer):
    model = tiny("llama", tokenizer)
    fast, plain = engines(model, tokenizer)

    class Adapter(torch.nn.Linear):  # e.g. a LoRA wrapper: not a plain nn.Linear
        pass

    old = model.model.layers[1].mlp.down_proj
    model.model.layers[1].mlp.down_proj = Adapter(old.in_features, old.out_features, bias=False)
    assert fast.packed_decoder() is None
    assert_same(fast.hidden_states(TEXTS, [3]), plain.hidden_states(TEXTS, [3]))


def test_unsupported_models_use_their_own_forward(tokenizer):
    bert = tiny_bert(tokenizer)
    eng = ForwardEngine(bert, tokenizer, device="cpu", dtype="float32", progress=False)
    assert eng.packed_decoder() is None
    with pytest.raises(ValueError, match="not supported: an encoder"):
        ForwardEngine(bert, tokenizer, device="cpu", dtype="float32", packed=True)
    gelu = tiny("llama", tokenizer, hidden_act="gelu")
    assert "hidden_act" in packed_support(gelu, gelu.model.layers, 512)
    windowed = tiny("mistral", tokenizer, sliding_window=16)
    assert "sliding-window" in packed_support(windowed, windowed.model.layers, 256)
    with pytest.raises(ValueError, match="packed must be"):
        ForwardEngine(gelu, tokenizer, packed="yes")


def test_auto_packs_on_cpu_only(tokenizer):
    eng = ForwardEngine(tiny("llama", tokenizer), tokenizer, device="cpu", dtype="float32", progress=False)
    assert eng.packed_decoder() is not None
    eng.device = torch.device("cuda")  # as if on a GPU, where the packed path is untested
    assert eng.packed_decoder() is None
    eng.packed = True
    assert eng.packed_decoder() is not None


def test_compiled_block_equals_eager(tokenizer):
    model = tiny("llama", tokenizer)
    eager = PackedDecoder(model, model.model.layers)
    compiled = PackedDecoder(model, model.model.layers, compile=True)
    ids = [tokenizer(t)["input_ids"] for t in TEXTS]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for batch in (ids[:3], ids[3:], ids):  # several shapes: dynamic, no recompiles needed
            got, got_mask = compiled.hidden_states(batch, LAYERS)
            want, want_mask = eager.hidden_states(batch, LAYERS)
            assert torch.equal(got_mask, want_mask)
            for k in LAYERS:
                torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5)
    # without a working C++ compiler it falls back to eager, and says so
    assert compiled.compiled or any("torch.compile failed" in str(w.message) for w in caught)
