"""Time embedding extraction against plain baselines in one process and print the ratios.

    python benchmarks/bench_embed.py [--quick] [--threads N] [--clock wall|cpu]

On the same length-varied texts (Anthropic persona statements and HH-RLHF harmless-base
dialogues, read from ``$PLURAL_KIT_DATA_HOME``), for the bundled SmolLM2-135M-Instruct,
penultimate layer, last token:

1. ``EmbeddingExtractor`` with its defaults (bf16 where the CPU has bf16 matrix units,
   length-sorted token-budget batches, stop at the layer, no cache).
2. A plain Hugging Face loop: batches of 32 in input order, padded, the full model with
   ``output_hidden_states=True`` (LM head included), fp32. Target: extractor >= 8x faster.
3. The same loop in the extractor's dtype. Target: >= 3x.
4. MiniLM (all-minilm-l6-v2, last layer, mean pooling): sentence-transformers' ``encode``
   vs the extractor. Target: >= 1x.
5. The machine's matmul peak in the extractor's dtype (square ``torch.matmul``) and the
   extractor's model-FLOPs utilisation: 2 x (parameters of the blocks it runs) x real
   tokens / time. Target on CPU: >= 70 % of that peak.

Timings depend on the machine and its load; compare the ratios measured in the same run.
On a busy machine, ``--threads 1 --clock cpu`` (process CPU time of one thread) gives ratios
that the other processes disturb much less than wall time does.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from plural_kit.device import get_device, get_dtype
from plural_kit.embed import EmbeddingExtractor
from plural_kit.models import _bundle_path, load_model


def load_texts(n_persona: int, n_dialogues: int, seed: int = 0) -> list[str]:
    """Persona statements and HH-RLHF dialogues, shuffled together (lengths ~10 to 512+ tokens)."""
    home = Path(os.environ.get("PLURAL_KIT_DATA_HOME", Path(__file__).resolve().parents[2] / "shared" / "data"))
    statements = []
    for f in sorted((home / "anthropic_evals" / "persona").glob("*.jsonl")):
        with open(f) as fh:
            statements += [json.loads(line)["statement"] for line in fh]
    with gzip.open(home / "hh_rlhf" / "harmless-base" / "test.jsonl.gz", "rt") as fh:
        dialogues = [json.loads(line)["chosen"].strip() for line in fh]
    rng = np.random.default_rng(seed)
    texts = [statements[i] for i in rng.choice(len(statements), n_persona, replace=False)]
    texts += [dialogues[i] for i in rng.choice(len(dialogues), n_dialogues, replace=False)]
    rng.shuffle(texts)
    return texts


CLOCK = time.perf_counter


def timed(fn):
    start = CLOCK()
    out = fn()
    return out, CLOCK() - start


def plain_loop(model, tok, texts: list[str], layer: int, batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """The baseline: input order, right padding, the full model with all hidden states."""
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tok(texts[start: start + batch_size], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length)
            hs = model(**batch, output_hidden_states=True).hidden_states[layer]
            last = batch["attention_mask"].sum(1) - 1
            out.append(hs[torch.arange(len(last)), last].float().numpy())
    return np.concatenate(out)


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 4096, reps: int = 5) -> float:
    """Best-of-``reps`` GFLOP/s of an n x n by n x n ``torch.matmul``."""
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    best = float("inf")
    for _ in range(reps + 1):  # the first is a warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = CLOCK()
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, CLOCK() - start)
    return 2 * n**3 / best / 1e9


def cos_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="72 texts instead of 192 (a smoke run)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time (default) or this process's CPU time (use with --threads 1 on a busy machine)")
    args = parser.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    n_persona, n_dialogues = (60, 12) if args.quick else (160, 32)
    device = get_device("auto")
    dtype = get_dtype("auto", device)
    texts = load_texts(n_persona, n_dialogues)
    layer = -2
    print(f"device={device} dtype={dtype} threads={torch.get_num_threads()} clock={args.clock} texts={len(texts)} "
          f"({n_persona} persona statements + {n_dialogues} HH-RLHF dialogues)")

    # 1. the extractor with its defaults
    ex = EmbeddingExtractor("smollm2-135m-instruct", layer=layer, cache_dir=None, progress=False)
    eng = ex.engine
    ids = eng.encode(texts)
    n_tokens = sum(map(len, ids))
    print(f"tokens: {n_tokens} real, {min(map(len, ids))}..{max(map(len, ids))} per text")
    ex.encode(texts[:8])  # warm-up
    emb, t_ex = timed(lambda: ex.encode(texts))

    # 2-3. the plain loop in fp32 and in the extractor's dtype
    model32, tok = load_model("smollm2-135m-instruct", device=device, dtype="float32")
    plain_loop(model32, tok, texts[:8], layer)
    ref32, t_plain32 = timed(lambda: plain_loop(model32, tok, texts, layer))
    ex32 = EmbeddingExtractor(model32, tok, layer=layer, dtype="float32", cache_dir=None, progress=False)
    ex32.encode(texts[:8])
    _, t_ex32 = timed(lambda: ex32.encode(texts))
    model_eq = model32.to(dtype)
    plain_loop(model_eq, tok, texts[:8], layer)
    _, t_plain_eq = timed(lambda: plain_loop(model_eq, tok, texts, layer))
    del model32, model_eq

    # 4. MiniLM: sentence-transformers vs the extractor (same work: last layer, mean pooling)
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(_bundle_path("all-minilm-l6-v2")), device=str(device))
    st.encode(texts[:8])
    st_emb, t_st = timed(lambda: st.encode(texts, batch_size=32, show_progress_bar=False))
    mini = EmbeddingExtractor("all-minilm-l6-v2", layer=-1, pooling="mean", max_length=st.max_seq_length,
                              cache_dir=None, progress=False)
    mini.encode(texts[:8])
    mini_emb, t_mini = timed(lambda: mini.encode(texts))

    # 5. matmul peak and model-FLOPs utilisation
    peak = matmul_peak(dtype, device)
    resolved = eng._resolve_layer(layer)
    block_params = sum(p.numel() for b in eng.blocks[:resolved] for p in b.parameters())
    all_params = sum(p.numel() for p in eng.model.parameters())
    achieved = 2 * block_params * n_tokens / t_ex / 1e9
    achieved_all = 2 * all_params * n_tokens / t_ex / 1e9

    print(f"\nSmolLM2-135M, layer {layer}, last token ({len(texts)} texts, {n_tokens} tokens)")
    print(f"  extractor (defaults, {dtype}):        {t_ex:7.2f} s  {n_tokens / t_ex:8.0f} tok/s")
    print(f"  plain HF loop, fp32:                 {t_plain32:7.2f} s  -> extractor is {t_plain32 / t_ex:5.2f}x "
          f"(target >= 8x)")
    print(f"  plain HF loop, {str(dtype):14s}:       {t_plain_eq:7.2f} s  -> extractor is {t_plain_eq / t_ex:5.2f}x "
          f"(equal dtype, {dtype})")
    print(f"  extractor in fp32:                   {t_ex32:7.2f} s  -> {t_plain32 / t_ex32:5.2f}x the plain fp32 loop "
          f"(equal dtype, fp32; target >= 3x)")
    print(f"  extractor vs plain fp32 embeddings: min cosine {cos_min(emb, ref32):.4f}")
    print(f"\nMiniLM-L6, last layer, mean pooling")
    print(f"  sentence-transformers encode (fp32): {t_st:7.2f} s")
    print(f"  extractor (defaults, {mini.engine.dtype}):        {t_mini:7.2f} s  -> {t_st / t_mini:5.2f}x "
          f"(target >= 1x); min cosine vs ST {cos_min(mini_emb, st_emb):.4f}")
    print(f"\nmatmul peak ({dtype}, 4096^3): {peak:7.1f} GFLOP/s")
    print(f"  extractor: {achieved:7.1f} GFLOP/s = {100 * achieved / peak:5.1f}% of peak "
          f"(2 x {block_params / 1e6:.1f}M block params x tokens; target >= 70% on CPU)")
    print(f"  (counting all {all_params / 1e6:.1f}M params incl. embeddings: {100 * achieved_all / peak:5.1f}%)")


if __name__ == "__main__":
    main()
