"""Time embedding extraction against plain baselines in one process and print the ratios.

    python benchmarks/bench_embed.py [--quick] [--repeat R] [--rounds K] [--threads N]

On the same length-varied texts (Anthropic persona statements and HH-RLHF harmless-base
dialogues, read from ``$PLURAL_KIT_DATA_HOME``), for the bundled SmolLM2-135M-Instruct,
penultimate layer, last token:

1. ``EmbeddingExtractor`` with its defaults (bf16 where the CPU has bf16 matrix units, the
   packed padding-free path with fused projections, length-sorted batches, stop at the layer,
   no cache), and the same with ``compile=True``.
2. A plain Hugging Face loop: batches of 32 in input order, padded, the full model with
   ``output_hidden_states=True`` (LM head included), fp32. Target: extractor >= 8x faster.
3. The same loop in the extractor's dtype, and the extractor in fp32 against the fp32 loop.
   Target at equal dtype (fp32): >= 3x.
4. MiniLM (all-minilm-l6-v2, last layer, mean pooling): sentence-transformers' ``encode``
   vs the extractor. Target: >= 1x.
5. Model-FLOPs utilisation against the machine's matmul peak in the extractor's dtype. The
   FLOPs are those of the model on the real (unpadded) tokens: 2 x (weights of the linear
   layers of the blocks run) x tokens, plus causal attention, 2 x 2 x d x L(L+1)/2 per text
   and block. The peak is the faster of two square ``torch.matmul`` (n = 1024, 2048, best of
   two each): the best throughput measured here, not the chip's rated peak. A shared machine changes speed from second to second, so the peak is measured
   after every batch (outside the timed span) and each batch is held to the peak of its moment:
   MFU = sum of FLOPs / sum of (batch seconds x peak). The median of ``--rounds`` rounds is the
   figure to quote. Target on CPU: >= 70 %.

The plain loops run once (they are long); every other timing is the median of ``--repeat`` runs.
Compare the ratios measured in the same run. Each row is printed as it is measured. On a CPU
without bf16 matrix units (AVX2 only) the run uses the ``--quick`` sizes and skips, saying why,
the ``compile=True`` and bf16 rows (bf16 is slower than fp32 there; ``--all`` runs everything).
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

from plural_kit.device import cpu_has_bf16_matmul, get_device, get_dtype
from plural_kit.embed import EmbeddingExtractor
from plural_kit.engine import ForwardEngine
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


def timed(fn, repeat: int = 1):
    """(output of the last run, median wall time of ``repeat`` runs in s)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return out, float(np.median(times))


def plain_loop(model, tok, texts: list[str], layer: int, batch_size: int = 32, max_length: int = 512) -> np.ndarray:
    """The baseline: input order, right padding, the full model with all hidden states; long
    texts keep their last ``max_length`` tokens, as in the extractor."""
    out = []
    tok.truncation_side = "left"
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = tok(texts[start: start + batch_size], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length)
            hs = model(**batch, output_hidden_states=True).hidden_states[layer]
            last = batch["attention_mask"].sum(1) - 1
            out.append(hs[torch.arange(len(last)), last].float().numpy())
    return np.concatenate(out)


def matmul_peak(dtype: torch.dtype, device: torch.device, sizes=(1024, 2048), reps: int = 2) -> float:
    """GFLOP/s of the fastest square n x n ``torch.matmul`` (best of ``reps`` after a warm-up, per size)."""
    best = 0.0
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        for i in range(reps + 1):
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            torch.matmul(a, b)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i:  # the first is a warm-up
                best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


def model_flops(engine, ids: list[list[int]], layer: int) -> tuple[np.ndarray, np.ndarray]:
    """Per text: (linear-layer FLOPs, causal-attention FLOPs) of the blocks that ``layer`` needs,
    on its real tokens."""
    blocks = engine.blocks[: engine.resolve_layer(layer)]
    linear = sum(m.weight.numel() for b in blocks for m in b.modules() if isinstance(m, torch.nn.Linear))
    cfg = engine.model.config
    width = cfg.num_attention_heads * getattr(cfg, "head_dim", cfg.hidden_size // cfg.num_attention_heads)
    n = np.array([len(s) for s in ids], dtype=np.float64)
    return 2.0 * linear * n, len(blocks) * 2.0 * 2 * width * n * (n + 1) / 2


def utilisation(engine, texts: list[str], layer: int, dtype, device, rounds: int) -> list[tuple[float, float, float]]:
    """Model-FLOPs utilisation measured batch by batch, each batch against the matmul peak measured
    right after it (outside the timed span), so that a machine whose speed changes from second to
    second is compared with itself. Per round: (seconds, achieved GFLOP/s, sum of FLOPs / sum of
    (batch seconds x peak))."""
    linear, attention = model_flops(engine, engine.tokenize(texts), layer)
    per_text = linear + attention
    out = []
    for _ in range(rounds):
        seconds = capacity = flops = 0.0
        batches = engine.iter_hidden_states(texts, [layer], progress=False)
        while True:
            start = time.perf_counter()
            try:
                idx, _ = next(batches)
            except StopIteration:
                break
            elapsed = time.perf_counter() - start
            seconds += elapsed
            capacity += elapsed * matmul_peak(dtype, device) * 1e9
            flops += per_text[idx].sum()
        out.append((seconds, flops / seconds / 1e9, flops / capacity))
    return out


def cos_min(a: np.ndarray, b: np.ndarray) -> float:
    return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())


def row(text: str) -> None:
    """Print one result line as soon as it is measured."""
    print(text, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="72 texts, 1 repeat, 2 rounds (a smoke run)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing, median kept (default 3)")
    parser.add_argument("--rounds", type=int, default=5, help="paired peak/extractor rounds for MFU (default 5)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--all", action="store_true", help="also run the rows skipped as slow on this hardware")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = get_device("auto")
    dtype = get_dtype("auto", device)
    # A CPU without bf16 matrix units (AVX2 only) runs bf16 slower than fp32 and compiles slowly:
    # there the bf16 and compile=True rows are skipped (--all runs them) and the sizes are smaller.
    slow_cpu = device.type == "cpu" and not cpu_has_bf16_matmul()
    fast = args.quick or (slow_cpu and not args.all)
    repeat, rounds = (1, 2) if fast else (args.repeat, args.rounds)
    n_persona, n_dialogues = (60, 12) if fast else (160, 32)
    texts = load_texts(n_persona, n_dialogues)
    layer = -2
    row(f"device={device} dtype={dtype} threads={torch.get_num_threads()} texts={len(texts)} "
        f"({n_persona} persona statements + {n_dialogues} HH-RLHF dialogues); median of {repeat} runs"
        + ("; CPU without bf16 matrix units: smaller sizes, slow rows skipped (--all runs them)"
           if slow_cpu and not args.all else ""))

    # 1. the extractor with its defaults, compiled, and unpacked
    ex = EmbeddingExtractor("smollm2-135m-instruct", layer=layer, cache_dir=None, progress=False)
    eng = ex.engine
    ids = eng.tokenize(texts)
    n_tokens = sum(map(len, ids))
    linear, attention = (f.sum() for f in model_flops(eng, ids, layer))
    row(f"tokens: {n_tokens} real, {min(map(len, ids))}..{max(map(len, ids))} per text; "
        f"packed path: {eng.packed_decoder() is not None}")
    row(f"\nSmolLM2-135M, layer {layer}, last token ({len(texts)} texts, {n_tokens} tokens)")
    ex.encode(texts[:8])  # warm-up
    emb, t_ex = timed(lambda: ex.encode(texts), repeat)
    row(f"  extractor (defaults, {dtype}):        {t_ex:7.2f} s  {n_tokens / t_ex:8.0f} tok/s")
    ex_c = None
    if slow_cpu and not args.all:
        row("  extractor, compile=True:             skipped: compiling takes minutes on a CPU without bf16 "
            "matrix units (--all runs it)")
    else:
        ex_c = EmbeddingExtractor(eng.model, eng.tokenizer, layer=layer, cache_dir=None, progress=False, compile=True)
        start = time.perf_counter()
        ex_c.encode(texts[:8])
        ex_c.encode(texts)
        t_compile = time.perf_counter() - start
        emb_c, t_ex_c = timed(lambda: ex_c.encode(texts), repeat)
        row(f"  extractor, compile=True:             {t_ex_c:7.2f} s  {n_tokens / t_ex_c:8.0f} tok/s "
            f"({t_ex / t_ex_c:.2f}x the defaults; first call incl. compiling {t_compile:.1f} s)")
    if eng.packed_decoder() is None:
        row("  extractor, packed=False:             the defaults row (the engine does not pack here: see "
            "ForwardEngine's packed='auto')")
    else:
        unpacked = EmbeddingExtractor(ForwardEngine(eng.model, eng.tokenizer, packed=False, progress=False),
                                      layer=layer, cache_dir=None, progress=False)
        unpacked.encode(texts[:8])
        _, t_unpacked = timed(lambda: unpacked.encode(texts), repeat)
        row(f"  extractor, packed=False:             {t_unpacked:7.2f} s  (the packed path is "
            f"{t_unpacked / t_ex:.2f}x faster)")

    # 2-3. the plain loop in fp32 and in the extractor's dtype
    model32, tok = load_model("smollm2-135m-instruct", device=device, dtype="float32")
    plain_loop(model32, tok, texts[:8], layer)
    ref32, t_plain32 = timed(lambda: plain_loop(model32, tok, texts, layer))  # long: once
    row(f"  plain HF loop, fp32:                 {t_plain32:7.2f} s  -> extractor is {t_plain32 / t_ex:5.2f}x "
        f"(target >= 8x)")
    if dtype == torch.float32:
        row("  plain HF loop in the extractor's dtype: the fp32 row above (the extractor runs fp32 here)")
    elif slow_cpu and not args.all:
        row(f"  plain HF loop, {dtype}: skipped: {dtype} on a CPU without bf16 matrix units is slower than "
            f"fp32 (--all runs it)")
    else:
        model_eq = load_model("smollm2-135m-instruct", device=device, dtype=dtype)[0]
        plain_loop(model_eq, tok, texts[:8], layer)
        _, t_plain_eq = timed(lambda: plain_loop(model_eq, tok, texts, layer))
        row(f"  plain HF loop, {str(dtype):14s}:       {t_plain_eq:7.2f} s  -> extractor is "
            f"{t_plain_eq / t_ex:5.2f}x (equal dtype, {dtype})")
        del model_eq
    if dtype == torch.float32:
        row(f"  extractor in fp32: the defaults row -> {t_plain32 / t_ex:5.2f}x the plain fp32 loop "
            f"(equal dtype, fp32; target >= 3x)")
    else:
        ex32 = EmbeddingExtractor(model32, tok, layer=layer, dtype="float32", cache_dir=None, progress=False)
        ex32.encode(texts[:8])
        _, t_ex32 = timed(lambda: ex32.encode(texts), repeat)
        row(f"  extractor in fp32:                   {t_ex32:7.2f} s  -> {t_plain32 / t_ex32:5.2f}x the plain fp32 "
            f"loop (equal dtype, fp32; target >= 3x; packed path: {ex32.engine.packed_decoder() is not None})")
        del ex32
    row(f"  extractor vs plain fp32 embeddings: min cosine {cos_min(emb, ref32):.4f} (defaults)"
        + (f", {cos_min(emb_c, ref32):.4f} (compiled)" if ex_c is not None else ""))
    del model32

    # 4. MiniLM: sentence-transformers vs the extractor (same work: last layer, mean pooling)
    from sentence_transformers import SentenceTransformer

    row("\nMiniLM-L6, last layer, mean pooling")
    st = SentenceTransformer(str(_bundle_path("all-minilm-l6-v2")), device=str(device))
    st.encode(texts[:8])
    st_emb, t_st = timed(lambda: st.encode(texts, batch_size=32, show_progress_bar=False), repeat)
    row(f"  sentence-transformers encode (fp32): {t_st:7.2f} s")
    mini = EmbeddingExtractor("all-minilm-l6-v2", layer=-1, pooling="mean", max_length=st.max_seq_length,
                              cache_dir=None, progress=False)
    mini.encode(texts[:8])
    mini_emb, t_mini = timed(lambda: mini.encode(texts), repeat)
    row(f"  extractor (defaults, {mini.engine.dtype}):        {t_mini:7.2f} s  -> {t_st / t_mini:5.2f}x "
        f"(target >= 1x); min cosine vs ST {cos_min(mini_emb, st_emb):.4f}")

    # 5. model-FLOPs utilisation in paired rounds
    row(f"\nModel-FLOPs utilisation ({dtype}; {linear / 1e12:.3f} TFLOP in linear layers + "
        f"{attention / 1e12:.3f} TFLOP causal attention; target >= 70% on CPU)")
    configs = {"defaults": eng} | ({"compile=True": ex_c.engine} if ex_c is not None else {})
    for name, engine in configs.items():
        res = utilisation(engine, texts, layer, dtype, device, rounds)
        median = float(np.median([r[2] for r in res]))
        rounds_text = ", ".join(f"{100 * f:.0f}% ({s:.2f} s, {a:.0f} GFLOP/s)" for s, a, f in res)
        row(f"  {name:13s} median {100 * median:5.1f}% of the matmul peak measured after each batch; "
            f"rounds: {rounds_text}")


if __name__ == "__main__":
    main()
