"""EmbeddingExtractor: values, the resumable disk cache, pairs, parity with sentence-transformers."""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from plural_kit.embed import EmbeddingExtractor, model_fingerprint
from plural_kit.engine import ForwardEngine, decoder_blocks
from tiny_models import minilm_tokenizer, tiny_causal_lm
from plural_kit.models import _bundle_path

TEXTS = [f"Statement number {i}: " + "people differ in what they value. " * (i % 5) for i in range(12)]


@pytest.fixture(scope="module")
def engine(tokenizer):
    return ForwardEngine(tiny_causal_lm(tokenizer, hidden_size=24, intermediate_size=48), tokenizer, device="cpu",
                         dtype="float32", batch_size=2, progress=False)


@contextlib.contextmanager
def count_rows(engine):
    """Count texts the engine computes (wrapping ``iter_hidden_states``); ``raise_after`` simulates
    an interruption once that many rows were computed."""
    seen = {"rows": 0, "raise_after": None}
    original = engine.iter_hidden_states

    def counting(*args, **kwargs):
        for idx, res in original(*args, **kwargs):
            if seen["raise_after"] is not None and seen["rows"] >= seen["raise_after"]:
                raise KeyboardInterrupt("simulated interruption")
            seen["rows"] += len(idx)
            yield idx, res

    engine.iter_hidden_states = counting
    try:
        yield seen
    finally:
        del engine.iter_hidden_states


def test_encode_matches_engine_and_cache_off(engine, tmp_path):
    ex = EmbeddingExtractor(engine, cache_dir=None)
    got = ex.encode(TEXTS)
    want = engine.hidden_states(TEXTS, [-2])[-2]
    assert got.shape == (len(TEXTS), 24) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert ex.cache_path() is None


def test_cache_resumes_after_interruption(engine, tmp_path):
    plain = EmbeddingExtractor(engine, cache_dir=None).encode(TEXTS)
    ex = EmbeddingExtractor(engine, cache_dir=tmp_path, chunk_size=2)
    with count_rows(engine) as seen:
        seen["raise_after"] = 6  # three batches of two, then the run is interrupted
        with pytest.raises(KeyboardInterrupt):
            ex.encode(TEXTS)
        assert len(list(ex.cache_path().glob("chunk-*.npz"))) == 3
        assert not list(ex.cache_path().glob("*.tmp"))
        seen.update(rows=0, raise_after=None)
        resumed = ex.encode(TEXTS)
        assert seen["rows"] == len(TEXTS) - 6  # only the missing texts were computed
        seen["rows"] = 0
        again = EmbeddingExtractor(engine, cache_dir=tmp_path).encode(TEXTS[::-1])
        assert seen["rows"] == 0  # all from disk, any order
    np.testing.assert_allclose(resumed, plain, rtol=1e-6)
    np.testing.assert_array_equal(again, resumed[::-1])


def test_many_chunks_are_merged(engine, tmp_path, monkeypatch):
    import plural_kit.embed as embed

    monkeypatch.setattr(embed, "_MAX_CHUNKS", 3)
    ex = EmbeddingExtractor(engine, cache_dir=tmp_path, chunk_size=1)
    first = ex.encode(TEXTS[:8])  # batches of two: four files
    assert len(list(ex.cache_path().glob("chunk-*.npz"))) == 4
    np.testing.assert_array_equal(ex.encode(TEXTS[:8]), first)  # read, then merged
    assert len(list(ex.cache_path().glob("chunk-*.npz"))) == 1
    np.testing.assert_array_equal(ex.encode(TEXTS[:8]), first)


def test_cache_key_separates_layers_and_pooling_and_dedupes(engine, tmp_path):
    a = EmbeddingExtractor(engine, layer=-2, cache_dir=tmp_path)
    b = EmbeddingExtractor(engine, layer=1, cache_dir=tmp_path)
    c = EmbeddingExtractor(engine, layer=-2, pooling="mean", cache_dir=tmp_path)
    assert len({a.cache_path(), b.cache_path(), c.cache_path()}) == 3
    assert a.cache_path() == EmbeddingExtractor(engine, layer=2, cache_dir=tmp_path).cache_path()  # -2 is 2 of 3
    with count_rows(engine) as seen:
        out = a.encode(["same", "same", "other", "same"])
    assert seen["rows"] == 2
    np.testing.assert_array_equal(out[0], out[3])
    assert not np.allclose(b.encode(["same"]), out[:1])


def test_hooks_bypass_the_cache(engine, tmp_path):
    ex = EmbeddingExtractor(engine, cache_dir=tmp_path)
    plain = ex.encode(TEXTS[:3])
    shift = torch.ones(engine.hidden_size)
    with engine.hooks({1: lambda h: h + shift}):
        steered = ex.encode(TEXTS[:3])  # not read from the cache...
    assert not np.allclose(steered, plain)
    np.testing.assert_array_equal(ex.encode(TEXTS[:3]), plain)  # ...nor written to it
    handle = decoder_blocks(engine.model)[0].register_forward_hook(lambda m, a, out: None)
    try:
        with count_rows(engine) as seen:
            ex.encode(TEXTS[:3])
        assert seen["rows"] == 3  # a hook from elsewhere: computed again
    finally:
        handle.remove()


def test_fingerprint_changes_with_weights(engine):
    before = model_fingerprint(engine.model)
    w = engine.model.model.norm.weight
    with torch.no_grad():
        w.add_(1.0)
    try:
        assert model_fingerprint(engine.model) != before
    finally:
        with torch.no_grad():
            w.sub_(1.0)
    assert model_fingerprint(engine.model) == before


def test_pairs_and_bad_input(engine):
    ex = EmbeddingExtractor(engine, cache_dir=None)
    assert ex.format_pairs(["Why?"], ["Because."]) == ["Why?\n\nBecause."]  # no chat template
    np.testing.assert_allclose(ex.encode_pairs(["Why?"], ["Because."]), ex.encode(["Why?\n\nBecause."]))
    with pytest.raises(ValueError, match="differ in length"):
        ex.encode_pairs(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="empty"):
        ex.encode([])
    with pytest.raises(TypeError, match="strings"):
        ex.encode(["fine", None])
    with pytest.raises(ValueError, match="pooling"):
        EmbeddingExtractor(engine, pooling="max")
    with pytest.raises(ValueError, match="out of range"):
        EmbeddingExtractor(engine, layer=9, cache_dir=None).encode(["x"])


def test_minilm_mean_pooling_matches_sentence_transformers():
    from sentence_transformers import SentenceTransformer

    texts = ["A cat sits on the mat.", "Preferences differ across people and cultures.", "Hi"]
    st = SentenceTransformer(str(_bundle_path("all-minilm-l6-v2")), device="cpu")
    want = st.encode(texts, normalize_embeddings=True)
    got = EmbeddingExtractor("all-minilm-l6-v2", layer=-1, pooling="mean", device="cpu", dtype="float32",
                             cache_dir=None, progress=False).encode(texts)
    got /= np.linalg.norm(got, axis=1, keepdims=True)
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.slow
def test_smollm_pairs_use_the_chat_template(tmp_path):
    ex = EmbeddingExtractor("smollm2-135m-instruct", device="cpu", cache_dir=tmp_path, progress=False)
    texts = ex.format_pairs(["Is water wet?"], ["Yes, in everyday language."])
    assert texts[0].endswith("<|im_start|>user\nIs water wet?<|im_end|>\n"
                             "<|im_start|>assistant\nYes, in everyday language.<|im_end|>")
    emb = ex.encode_pairs(["Is water wet?", "Is fire cold?"], ["Yes, in everyday language.", "No."])
    assert emb.shape == (2, 576) and np.isfinite(emb).all()
    assert (tmp_path / ex.cache_path().name / "key.json").exists()


def test_cache_key_follows_the_tokenizer(tmp_path):
    """Same weights, another tokenizer setting: another cache folder (no stale embeddings)."""
    from transformers import BertConfig, BertModel

    tok_a, tok_b = minilm_tokenizer(), minilm_tokenizer()
    tok_b.add_special_tokens({"additional_special_tokens": ["<extra>"]})
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=len(tok_b), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, architectures=["BertModel"])).eval()
    kw = dict(layer=-1, pooling="mean", device="cpu", dtype="float32", cache_dir=tmp_path, progress=False)
    path_a = EmbeddingExtractor(model, tok_a, **kw).cache_path()
    assert EmbeddingExtractor(model, tok_a, **kw).cache_path() == path_a
    assert EmbeddingExtractor(model, tok_b, **kw).cache_path() != path_a
