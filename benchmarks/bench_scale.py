"""The Ray backend against the in-process engine, and the driver's memory with and without shards.

    python benchmarks/bench_scale.py [--texts N] [--large M] [--skip-memory]

1. Embeddings of the same ``N`` persona statements (bundled SmolLM2-135M-Instruct, layer -2,
   last token, ``dtype="auto"``) in-process (all torch threads, and one thread; median of 3) and on a local
   Ray cluster with 1 and 2 CPU actors (one CPU, so one torch thread, each). A Ray call starts
   its actors and loads the model in each: its wall time is printed, and the throughput inside
   the engine (``N`` over the actors' engine seconds, :attr:`RayEngine.engine_seconds`, divided by
   the number of actors): what a long run approaches once its actors are started.
2. The driver's peak resident memory (``VmHWM``) for ``M`` texts, in a fresh process each:
   ``RayEngine.hidden_states`` (all rows come back to the driver) against
   ``RayEngine.write_embeddings`` (Parquet shards of 4,096 rows; the driver keeps the shards in
   flight). The model of this part is a randomly initialised 2-block Llama of SmolLM2's width
   (d = 576) with SmolLM2's tokenizer, built from a config (no download), read at layer 0 (the
   token embeddings): the rows and bytes are those of SmolLM2-135M while the compute is nearly
   nil, so what is measured is the driver holding (or not) the results.

Each row is printed as it is measured. Compare ratios from the same run: the machine's load
changes wall times from run to run.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_embed import load_texts, timed  # noqa: E402  (the same persona statements and timer)


def row(text: str) -> None:
    print(text, flush=True)


def wide_random_llama(folder: Path) -> Path:
    """A seeded 2-block Llama with SmolLM2-135M's width and tokenizer, saved to ``folder``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from plural_kit.models import _resolve

    tok = AutoTokenizer.from_pretrained(_resolve("smollm2-135m-instruct"))
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=576, intermediate_size=1536, num_hidden_layers=2,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                      architectures=["LlamaForCausalLM"], pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def memory_child(mode: str, model: str, n: int, out_dir: str) -> None:
    """Run in a fresh process: embed ``n`` texts in ``mode`` and print a JSON line with the peak RSS."""
    import ray

    from plural_kit.backends.ray import RayEngine
    from plural_kit.device import peak_rss_mb

    base = load_texts(2000, 0)
    texts = [f"{base[i % len(base)]} ({i})" for i in range(n)]  # distinct texts
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    eng = RayEngine(model, rows_per_batch=1024)
    before = peak_rss_mb()
    start = time.perf_counter()
    if mode == "in-memory":
        emb = eng.hidden_states(texts, [0])[0]
        rows = emb.shape[0]
    else:
        out = eng.write_embeddings(texts, out_dir, layer=0, shard_size=4096)
        rows = out.n_rows
    print(json.dumps({"mode": mode, "rows": rows, "seconds": time.perf_counter() - start,
                      "peak_before_mb": before, "peak_mb": peak_rss_mb()}), flush=True)
    ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=64, help="texts for the speed rows (default 64)")
    parser.add_argument("--large", type=int, default=100_000, help="texts for the memory rows (default 100,000)")
    parser.add_argument("--skip-memory", action="store_true", help="only the speed rows")
    parser.add_argument("--memory-child", nargs=4, metavar=("MODE", "MODEL", "N", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        mode, model, n, out_dir = args.memory_child
        memory_child(mode, model, int(n), out_dir)
        return

    import ray

    from plural_kit.backends.ray import RayEngine
    from plural_kit.engine import ForwardEngine

    n = args.texts
    texts = load_texts(n, 0)
    small = texts[:n]
    threads = torch.get_num_threads()
    local = ForwardEngine("smollm2-135m-instruct", progress=False)
    tokens = sum(map(len, local.tokenize(small)))
    row(f"SmolLM2-135M, layer -2, last token, {local.dtype}; {n} texts ({tokens} tokens); "
        f"{threads} torch threads in-process; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    local.hidden_states(small[:8], [-2])  # warm-up
    want, t_local = timed(lambda: local.hidden_states(small, [-2])[-2], 3)
    row(f"  in-process, {threads} threads:           {t_local:7.2f} s   {n / t_local:7.1f} texts/s")
    torch.set_num_threads(1)
    _, t_local1 = timed(lambda: local.hidden_states(small, [-2])[-2], 3)
    torch.set_num_threads(threads)
    row(f"  in-process, 1 thread:             {t_local1:7.2f} s   {n / t_local1:7.1f} texts/s")
    del local

    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    for actors in (1, 2):
        eng = RayEngine("smollm2-135m-instruct", num_actors=actors, num_cpus=1, rows_per_batch=max(8, n // 4))
        got, t_small = timed(lambda: eng.hidden_states(small, [-2])[-2])
        cos = float(((got * want).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(want, axis=1)).min())
        rate = n * actors / eng.engine_seconds
        row(f"  Ray, {actors} CPU actor{'s' if actors > 1 else ' '}:                {t_small:7.2f} s per call "
            f"(actors started, models loaded) = {t_small / t_local:5.2f}x the in-process {threads}-thread time, "
            f"{t_small / t_local1:5.2f}x the 1-thread time; inside the engine {rate:6.1f} texts/s "
            f"= {rate * t_local1 / n:4.2f}x in-process 1 thread, {rate * t_local / n:4.2f}x {threads} threads; "
            f"min cosine vs in-process {cos:.5f}")
    ray.shutdown()

    if args.skip_memory:
        return
    row(f"\nDriver peak RSS for {args.large:,} texts (a random 2-block Llama of SmolLM2's width, d=576; "
        f"outputs {args.large * 576 * 4 / 2**20:.0f} MiB of float32)")
    with tempfile.TemporaryDirectory(prefix="bench_scale-") as tmp:
        model = str(wide_random_llama(Path(tmp) / "model"))
        for mode in ("in-memory", "sharded"):
            proc = subprocess.run([sys.executable, __file__, "--memory-child", mode, model, str(args.large),
                                   str(Path(tmp) / f"run-{mode}")], capture_output=True, text=True)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            if proc.returncode != 0 or not lines:
                row(f"  {mode}: failed (exit {proc.returncode}): {proc.stderr[-800:]}")
                continue
            res = json.loads(lines[-1])
            row(f"  {mode:9s} ({'all rows to the driver' if mode == 'in-memory' else 'Parquet shards of 4,096'}): "
                f"peak {res['peak_mb']:7.0f} MiB (before the call {res['peak_before_mb']:5.0f} MiB), "
                f"{res['seconds']:6.1f} s")


if __name__ == "__main__":
    main()
