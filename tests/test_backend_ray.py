"""The Ray backend: the same numbers as the in-process engine, and resumable sharded Parquet runs.

One local Ray cluster with 2 CPUs serves the module (Ray's temporary files under /tmp/ray).
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import ray
import torch

from plural_kit.backends.ray import RayEngine, ShardWarning, read_shards
from plural_kit.embed import EmbeddingExtractor
from plural_kit.engine import ForwardEngine
from plural_kit.scoring import option_probs
from tiny_models import tiny_causal_lm

TEXTS = [f"Opinion {i}: " + "people weigh fairness and care differently. " * (i % 6) for i in range(24)]


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", _temp_dir="/tmp/ray")
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory, tokenizer):
    """A tiny Llama saved as a model folder (actors load models by path)."""
    path = tmp_path_factory.mktemp("tiny-llama")
    tiny_causal_lm(tokenizer, hidden_size=24, intermediate_size=48).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.slow
def test_extractor_on_ray_equals_in_process():
    local = EmbeddingExtractor("smollm2-135m-instruct", cache_dir=None, progress=False)
    on_ray = EmbeddingExtractor("smollm2-135m-instruct", backend="ray", progress=False)
    on_ray.engine.rows_per_batch = 5  # 5 blocks over 2 actors: rows come back out of order
    want = local.encode(TEXTS)
    got = on_ray.encode(TEXTS)
    assert got.shape == want.shape == (len(TEXTS), 576) and got.dtype == np.float32
    assert cosines(got, want).min() >= 0.9999
    assert on_ray.get_params()["backend"] == "ray" and on_ray.cache_path() is None


@pytest.mark.slow
def test_answer_distributions_on_ray_match_in_process():
    # fp32: in bf16 the in-process engine itself moves a probability by up to ~0.02 when a prompt
    # is padded in another batch (measured here), so 1e-4 is a test of the backend only in fp32
    local = ForwardEngine("smollm2-135m-instruct", dtype="float32", progress=False)
    on_ray = RayEngine("smollm2-135m-instruct", dtype="float32", rows_per_batch=3)
    questions = [f"Is it acceptable to break a promise to help a stranger? Case {i}." + " Think." * (i % 4)
                 for i in range(8)]
    prompts = local.apply_chat_template([q + "\nA. Yes\nB. No\nC. It depends\nAnswer with A, B or C." for q in questions])
    assert on_ray.apply_chat_template(questions) == local.apply_chat_template(questions)
    want, want_mass = option_probs(local, prompts, ["A", "B", "C"])
    got, got_mass = option_probs(on_ray, prompts, ["A", "B", "C"])
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    np.testing.assert_allclose(got_mass, want_mass, atol=1e-4, rtol=0)


def test_sharded_run_keeps_ids_and_resumes_only_the_missing_shard(tiny_dir, tmp_path):
    texts = [f"row {i} " + "word " * (i % 7) for i in range(37)]
    ids = [f"pair-{i:03d}" for i in range(37)]
    eng = RayEngine(tiny_dir, dtype="float32", rows_per_batch=4)
    want = ForwardEngine(str(tiny_dir), dtype="float32", progress=False).hidden_states(texts, [-2])[-2]
    out = eng.write_embeddings(texts, tmp_path, ids=ids, shard_size=10)
    assert out.computed == (0, 1, 2, 3) and out.reused == ()
    assert eng.engine_seconds > 0
    got_ids, got = out.read()
    assert got_ids.tolist() == ids
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [manifest["shards"][str(k)]["rows"] for k in range(4)] == [10, 10, 10, 7]

    before = {k: (tmp_path / f"shard-{k:05d}.parquet").stat().st_mtime_ns for k in (0, 1, 3)}
    (tmp_path / "shard-00002.parquet").unlink()
    with pytest.raises(ValueError, match="shard-00002.parquet is missing"):
        read_shards(tmp_path).read()
    with pytest.warns(ShardWarning, match="shard-00002.parquet is missing"):
        again = eng.write_embeddings(texts, tmp_path, ids=ids, shard_size=10)
    assert again.computed == (2,) and again.reused == (0, 1, 3)
    assert {k: (tmp_path / f"shard-{k:05d}.parquet").stat().st_mtime_ns for k in (0, 1, 3)} == before
    np.testing.assert_array_equal(again.read()[1], got)


def test_damaged_and_changed_shards_are_recomputed(tiny_dir, tmp_path):
    texts = [f"row {i} " + "word " * (i % 5) for i in range(30)]
    eng = RayEngine(tiny_dir, dtype="float32", rows_per_batch=5, num_actors=1)  # one actor: less start-up
    first = eng.write_embeddings(texts, tmp_path, shard_size=10)
    _, values = first.read()
    shard = tmp_path / "shard-00001.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte
    shard.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged"):
        read_shards(tmp_path).read()
    changed = texts[:25] + ["a new text in the last shard"] + texts[26:]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = eng.write_embeddings(changed, tmp_path, shard_size=10)
    messages = sorted(str(w.message) for w in caught if issubclass(w.category, ShardWarning))
    assert len(messages) == 2 and "shard-00001.parquet does not match its sha256" in messages[0]
    assert "shard-00002.parquet was written for other inputs" in messages[1]
    assert again.computed == (1, 2) and again.reused == (0,)
    ids, got = again.read()
    assert ids.tolist() == list(range(30))
    np.testing.assert_array_equal(got[:25], values[:25])
    np.testing.assert_array_equal(got[26:], values[26:])
    assert not np.allclose(got[25], values[25])


def test_another_configuration_in_the_same_folder_is_refused(tiny_dir, tmp_path):
    eng = RayEngine(tiny_dir, dtype="float32")
    manifest = {"format": 1, "engine": None, "shards": {},
                "request": {"method": "hidden_states", "kwargs": {"layers": [-1], "pooling": "last"},
                            "column": "embedding", "model": str(tiny_dir), "dtype": "float32", "max_length": 512,
                            "n_rows": 3, "shard_size": 10}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="another configuration .differs in kwargs"):
        eng.write_embeddings(["a", "b", "c"], tmp_path, layer=-2, shard_size=10)


def test_bad_input_is_named(tiny_dir, tmp_path, tokenizer):
    with pytest.raises(TypeError, match="needs a model name or path"):
        RayEngine(tiny_causal_lm(tokenizer))
    eng = RayEngine(tiny_dir, dtype="float32")
    with pytest.raises(ValueError, match="ids must be distinct: 1 repeat"):
        eng.write_embeddings(["a", "b"], tmp_path, ids=[1, 1])
    with pytest.raises(ValueError, match="all ints or all strings"):
        eng.write_embeddings(["a", "b"], tmp_path, ids=[1, "b"])
    with pytest.raises(ValueError, match="layer 9 is out of range"):
        eng.hidden_states(["a"], [9])
    with pytest.raises(TypeError, match="cannot run hooks"):
        eng.hooks({1: lambda h: h})
    with pytest.raises(ValueError, match="backend must be 'local' or 'ray'"):
        EmbeddingExtractor(str(tiny_dir), backend="spark")


@pytest.mark.cuda
@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.sh runs it)")
def test_one_gpu_actor_equals_in_process_cuda():
    on_ray = RayEngine("smollm2-135m-instruct", rows_per_batch=5)  # num_gpus="auto": one GPU per actor
    assert on_ray._pool(ray) == (int(ray.cluster_resources()["GPU"]), 1.0)
    local = ForwardEngine("smollm2-135m-instruct", device="cuda", progress=False)
    want = local.hidden_states(TEXTS, [-2])[-2]
    got = on_ray.hidden_states(TEXTS, [-2])[-2]
    assert cosines(got, want).min() >= 0.999  # bf16, padded batches of other compositions on the GPU
    local32 = ForwardEngine("smollm2-135m-instruct", device="cuda", dtype="float32", progress=False)
    on_ray32 = RayEngine("smollm2-135m-instruct", dtype="float32", rows_per_batch=5)
    prompts = [t + "\nA. agree\nB. disagree\nAnswer:" for t in TEXTS[:10]]
    np.testing.assert_allclose(option_probs(on_ray32, prompts, ["A", "B"])[0],
                               option_probs(local32, prompts, ["A", "B"])[0], atol=1e-4, rtol=0)
