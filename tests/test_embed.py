"""EmbeddingExtractor: values, the resumable disk cache, pairs, parity with sentence-transformers."""
from __future__ import annotations

import contextlib
import re
import shutil
import warnings

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


def test_describe_names_the_shape_device_and_dtype(engine):
    ex = EmbeddingExtractor(engine, cache_dir=None)
    line = ex.describe(np.zeros((7, 24), dtype=np.float32))
    assert line == f"{ex!r}: 7 texts -> 24-d hidden states on cpu in torch.float32"


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


# ------------------------------------------------------------------ damaged, foreign and unwritable caches
def _flip_byte(f):
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0x01
    f.write_bytes(bytes(data))


def _edit_values_keep_checksum(f):
    with np.load(f) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["values"] = arrays["values"] + 1.0
    np.savez(f, **arrays)


def _rewrite_without_checksum(f):
    """A valid .npz with the right names and shapes but other values (format 1 had no checksum)."""
    with np.load(f) as z:
        keys, vals = z["keys"], z["values"]
    np.savez(f, keys=keys, values=np.zeros_like(vals))


def _recompute_checksum_for_wrong_values(f):
    """Values replaced and the checksum recomputed to match: only the configuration tag can tell."""
    from plural_kit.embed import _chunk_checksum

    with np.load(f) as z:
        keys, vals = z["keys"], z["values"]
    other = np.frombuffer(bytes(range(32)), dtype=np.uint8)
    np.savez(f, keys=keys, values=vals * 0, entry=other, checksum=_chunk_checksum(other, keys, vals * 0))


DAMAGES = {
    "truncated": (lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]), "unreadable: "),
    "empty": (lambda f: f.write_bytes(b""), "unreadable: "),
    "flipped byte": (_flip_byte, "(unreadable: |its sha256 does not match)"),
    "garbage": (lambda f: f.write_bytes(b"\x00not a zip at all" * 64), "unreadable: "),
    "a pickle": (lambda f: f.write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."), "unreadable: "),
    "values edited, checksum kept": (_edit_values_keep_checksum, "its sha256 does not match its contents"),
    "old format, other values": (_rewrite_without_checksum, "not a plural_kit cache chunk of format 2"),
    "foreign tag": (_recompute_checksum_for_wrong_values, "written for another model or configuration"),
    "float64 values": (lambda f: np.savez(f, **{k: (v.astype(np.float64) if k == "values" else v)
                                                  for k, v in np.load(f).items()}), "values of dtype float64"),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_cache_chunk_is_removed_and_recomputed(engine, tmp_path, damage):
    """Any damaged chunk: a warning names it, it is removed, its rows are computed again (and cached
    again), the other chunks are still used, and the result equals an uncached run."""
    from plural_kit.embed import CacheEntryWarning

    break_it, reason = DAMAGES[damage]
    plain = EmbeddingExtractor(engine, cache_dir=None).encode(TEXTS)
    ex = EmbeddingExtractor(engine, cache_dir=tmp_path, chunk_size=4)
    ex.encode(TEXTS)
    chunks = sorted(ex.cache_path().glob("chunk-*.npz"))
    assert len(chunks) == 3
    victim = chunks[1]
    break_it(victim)
    with count_rows(engine) as seen, pytest.warns(CacheEntryWarning, match=rf"{re.escape(str(victim))} cannot be used \({reason}") as rec:
        got = ex.encode(TEXTS)
    assert seen["rows"] == 4  # only the damaged chunk's rows
    np.testing.assert_allclose(got, plain, rtol=1e-6)
    assert not victim.exists()
    mine = [w for w in rec if issubclass(w.category, CacheEntryWarning)]
    assert len(mine) == 1 and "removed it; its rows are computed again" in str(mine[0].message)
    with count_rows(engine) as seen, warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(ex.encode(TEXTS), got)
    assert seen["rows"] == 0  # the recomputed rows were cached again


def test_chunk_copied_from_another_configuration_is_not_served(engine, tmp_path):
    """Same texts, same width, another layer: a chunk moved into this folder is foreign."""
    from plural_kit.embed import CacheEntryWarning

    mine = EmbeddingExtractor(engine, layer=-2, cache_dir=tmp_path)
    other = EmbeddingExtractor(engine, layer=1, cache_dir=tmp_path)
    want = mine.encode(TEXTS[:4])
    other.encode(TEXTS[:4])
    for f in mine.cache_path().glob("chunk-*.npz"):
        f.unlink()
    for f in other.cache_path().glob("chunk-*.npz"):
        shutil.copy(f, mine.cache_path() / f.name)
    with pytest.warns(CacheEntryWarning, match="written for another model or configuration"):
        got = mine.encode(TEXTS[:4])
    np.testing.assert_array_equal(got, want)


def test_a_folder_in_place_of_a_chunk_is_ignored(engine, tmp_path):
    from plural_kit.embed import CacheEntryWarning

    ex = EmbeddingExtractor(engine, cache_dir=tmp_path)
    want = ex.encode(TEXTS[:2])
    (ex.cache_path() / "chunk-folder.npz").mkdir()
    with pytest.warns(CacheEntryWarning, match=r"chunk-folder.npz cannot be used \(unreadable: IsADirectoryError.*could not remove it"):
        np.testing.assert_array_equal(ex.encode(TEXTS[:2]), want)


def test_fingerprint_sees_every_element(engine):
    """One element of the embedding matrix edited through ``.data`` (no version bump, off any stride)."""
    emb = engine.model.get_input_embeddings().weight
    before = model_fingerprint(engine.model)
    for flat_index in (1, 3 * emb.shape[1] + 5, emb.numel() - 2):
        row, col = divmod(flat_index, emb.shape[1])
        old = emb.data[row, col].item()
        emb.data[row, col] = old + 1e-3
        try:
            assert model_fingerprint(engine.model) != before, flat_index
        finally:
            emb.data[row, col] = old
    assert model_fingerprint(engine.model) == before


def test_fingerprint_follows_dtype_and_tied_weights(tokenizer):
    model = tiny_causal_lm(tokenizer, hidden_size=16, intermediate_size=32, tie_word_embeddings=True)
    assert model.lm_head.weight is model.get_input_embeddings().weight
    fp = model_fingerprint(model)
    assert fp == model_fingerprint(tiny_causal_lm(tokenizer, hidden_size=16, intermediate_size=32,
                                                  tie_word_embeddings=True))  # deterministic
    assert model_fingerprint(model.to(torch.bfloat16)) != fp


def test_unusable_cache_dir_is_named(engine, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=rf"cannot use {re.escape(str(blocker))}/\S+ as the embedding cache folder "
                                      r"\(.*\); pass another cache_dir=, or cache_dir=None"):
        EmbeddingExtractor(engine, cache_dir=blocker).encode(["x"])


def test_auto_cache_that_cannot_be_created_warns_and_computes(engine, tmp_path, monkeypatch):
    from plural_kit.embed import CacheEntryWarning

    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PLURAL_KIT_CACHE", str(blocker))
    with pytest.warns(CacheEntryWarning, match="computing without the cache"):
        got = EmbeddingExtractor(engine, cache_dir="auto").encode(TEXTS[:2])
    np.testing.assert_allclose(got, EmbeddingExtractor(engine, cache_dir=None).encode(TEXTS[:2]), rtol=1e-6)


def test_cache_write_failure_returns_the_embeddings(engine, tmp_path, monkeypatch):
    import errno

    import plural_kit.embed as embed
    from plural_kit.embed import CacheEntryWarning

    def disk_full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    ex = EmbeddingExtractor(engine, cache_dir=tmp_path, chunk_size=2)
    ex.cache_path()
    monkeypatch.setattr(embed, "atomic_write", disk_full)
    with pytest.warns(CacheEntryWarning, match=r"could not write to the embedding cache .* \(No space left on device\)") as rec:
        got = ex.encode(TEXTS)
    assert len(rec) == 1  # warned once, then no more attempts
    np.testing.assert_allclose(got, EmbeddingExtractor(engine, cache_dir=None).encode(TEXTS), rtol=1e-6)


@pytest.mark.parametrize("bad", [True, 0, -1, 2.5, "4"])
def test_chunk_size_must_be_a_positive_int(engine, bad):
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        EmbeddingExtractor(engine, chunk_size=bad)
