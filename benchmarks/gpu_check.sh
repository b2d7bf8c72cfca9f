#!/usr/bin/env bash
# The GPU check: run on a machine with one CUDA GPU, from the repository root, after
# `bash scripts/install.sh test`. Under 8 minutes: the steps' time limits add up to 7 min 45 s; the
# run goes on after a failed step, then ends with a closing note and a non-zero exit if any failed.
#
#   bash benchmarks/gpu_check.sh 2>&1 | tee gpu_check.log
#
# 1. every test marked `cuda` (pytest -m cuda), and the fitter tests that have a CUDA branch;
# 2. extractor throughput and model-FLOPs utilisation (MFU) in bf16 against the card's rated
#    dense bf16 peak and against the best square matmul measured here, for the bundled
#    SmolLM2-135M and for a >= 1B Llama (a local model folder given as GPU_CHECK_BIG_MODEL, else
#    one randomly initialised from a Llama-3.2-1B-like config: no download);
# 3. the reward fitters on CUDA against the CPU (same data; agreement and times);
# 4. the Ray backend with one GPU actor against the in-process CUDA engine (in step 1's tests);
# 5. vLLM against the in-process engine, when vLLM is installed.
# Until this has run on a GPU, no GPU code path of plural_kit has ever run: expect bugs.
set -uo pipefail
cd "$(dirname "$0")/.."
export PLURAL_KIT_DATA_HOME="${PLURAL_KIT_DATA_HOME:-$(cd .. && pwd)/shared/data}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 MPLBACKEND=Agg TOKENIZERS_PARALLELISM=false
failed=()
step() {  # step NAME SECONDS COMMAND...
  local name=$1 limit=$2; shift 2
  echo; echo "=== $name (limit ${limit}s)"; local start=$SECONDS
  if timeout "$limit" "$@"; then echo "--- $name: ok ($((SECONDS - start)) s)"
  else echo "--- $name: FAILED (exit $?, $((SECONDS - start)) s)"; failed+=("$name"); fi
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python - <<'EOF' || { echo "no CUDA GPU visible to torch: nothing to check"; exit 1; }
import torch
assert torch.cuda.is_available()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name()}, "
      f"bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF

step "tests marked cuda" 120 python -m pytest tests -m cuda -q -p no:cacheprovider -rs
step "fitter tests with a CUDA branch" 45 python -m pytest tests/test_bt.py -q -p no:cacheprovider

step "extractor throughput and MFU (bf16)" 150 python - <<'EOF'
import os, sys, time
import numpy as np
import torch
sys.path.insert(0, "benchmarks")
from bench_embed import matmul_peak, model_flops
from plural_kit.engine import ForwardEngine
from plural_kit.models import _resolve

# Rated dense bf16 tensor-core peaks from the vendors' datasheets, TFLOP/s (no sparsity).
RATED = {"H200": 989, "H100 SXM": 989, "H100 PCIe": 756, "H100 NVL": 835, "H100": 989, "A100": 312,
         "L40S": 362, "L4": 121, "A10G": 70, "A10": 125}
name = torch.cuda.get_device_name()
rated = next((v for k, v in RATED.items() if k in name), None)
dev, dtype = torch.device("cuda"), torch.bfloat16
peak = matmul_peak(dtype, dev, sizes=(4096, 8192), reps=5) / 1e3  # TFLOP/s
print(f"{name}: rated dense bf16 peak {rated or 'unknown'} TFLOP/s; best square matmul measured here "
      f"{peak:.0f} TFLOP/s", flush=True)
rng = np.random.default_rng(0)
words = "people value fairness care liberty loyalty authority purity differ often in what they want".split()
texts = [" ".join(rng.choice(words, int(n))) for n in rng.integers(8, 400, 2048)]

def bench(label, engine, texts):
    ids = engine.tokenize(texts)
    linear, attention = (f.sum() for f in model_flops(engine, ids, -2))
    engine.hidden_states(texts[:64], [-2])  # warm-up
    torch.cuda.synchronize(); start = time.perf_counter()
    engine.hidden_states(texts, [-2])
    torch.cuda.synchronize(); t = time.perf_counter() - start
    achieved = (linear + attention) / t / 1e12
    n_tok = sum(map(len, ids))
    of_rated = f"MFU {100 * achieved / rated:.1f}% of the rated peak, " if rated else ""
    print(f"  {label}: {len(texts)} texts, {n_tok} tokens in {t:.2f} s = {n_tok / t:,.0f} tok/s; "
          f"{achieved:.1f} TFLOP/s = {of_rated}{100 * achieved / peak:.1f}% of the measured matmul peak; "
          f"packed path: {engine.packed_decoder() is not None}", flush=True)

small = ForwardEngine("smollm2-135m-instruct", device="cuda", dtype="bfloat16", progress=False)
bench("SmolLM2-135M (bundled)", small, texts)
big = os.environ.get("GPU_CHECK_BIG_MODEL")
if big:
    engine = ForwardEngine(big, device="cuda", dtype="bfloat16", progress=False)
    label = f"{big} ({sum(p.numel() for p in engine.model.parameters()) / 1e9:.2f} B parameters)"
else:
    from transformers import LlamaConfig, LlamaForCausalLM
    tok = small.tokenizer
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                      num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096,
                      tie_word_embeddings=False, pad_token_id=tok.pad_token_id, architectures=["LlamaForCausalLM"])
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    engine = ForwardEngine(model, tok, device="cuda", dtype="bfloat16", progress=False)
    label = (f"random Llama-3.2-1B-like ({sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters, "
             "from a config)")
bench(label, engine, texts)
EOF

step "reward fitters on CUDA vs CPU" 90 python - <<'EOF'
import time
import numpy as np
from plural_kit.data.synthetic import make_ideal_point_preferences
from plural_kit.reward import PAL, VPL, BradleyTerry, MiCRo, MixtureBT

data = make_ideal_point_preferences(n_items=2000, n_features=32, n_groups=3, users_per_group=50, pairs_per_user=50,
                                    reward="linear", temperature=0.3, seed=0)
fitters = {"BradleyTerry": lambda d: BradleyTerry(device=d), "MixtureBT": lambda d: MixtureBT(n_components=3, device=d),
           "PAL": lambda d: PAL(n_prototypes=3, device=d), "VPL": lambda d: VPL(latent_dim=3, device=d),
           "MiCRo": lambda d: MiCRo(n_heads=3, device=d)}
for name, make in fitters.items():
    out = {}
    for device in ("cpu", "cuda"):
        start = time.perf_counter()
        model = make(device).fit(data.X_chosen, data.X_rejected, data.users)
        out[device] = (time.perf_counter() - start, model.score(data.X_chosen, data.X_rejected, data.users))
    print(f"  {name:12s} {len(data):,} pairs x 32: cpu {out['cpu'][0]:6.2f} s acc {out['cpu'][1]:.3f} | "
          f"cuda {out['cuda'][0]:6.2f} s acc {out['cuda'][1]:.3f} ({out['cpu'][0] / out['cuda'][0]:.1f}x)", flush=True)
EOF

step "vLLM against the in-process engine" 60 python - <<'EOF'
import importlib.util, sys
if importlib.util.find_spec("vllm") is None:
    print("  skipped: vLLM is not installed (pip install 'plural_kit[vllm]')"); sys.exit(0)
import numpy as np
from plural_kit.backends.vllm import VLLMEngine
from plural_kit.engine import ForwardEngine
from plural_kit.scoring import option_probs

local = ForwardEngine("smollm2-135m-instruct", device="cuda", dtype="float32", progress=False)
fast = VLLMEngine("smollm2-135m-instruct", dtype="float32", gpu_memory_utilization=0.3, enforce_eager=True)
prompts = local.apply_chat_template([f"Is it fair to break a promise to help a stranger? Case {i}.\nA. Yes\nB. No\n"
                                     "Answer with A or B." for i in range(16)])
diff = np.abs(option_probs(fast, prompts, ["A", "B"])[0] - option_probs(local, prompts, ["A", "B"])[0]).max()
print(f"  answer distributions, vLLM vs in-process (fp32): max |diff| {diff:.2e}")
same = sum(a == b for a, b in zip(fast.generate(prompts, 16), local.generate(prompts, 16)))
print(f"  greedy generations equal: {same} of {len(prompts)}")
EOF

echo
if [ ${#failed[@]} -eq 0 ]; then echo "gpu_check: all steps ran (${SECONDS} s)"
else echo "gpu_check: ${#failed[@]} step(s) FAILED: ${failed[*]} (${SECONDS} s)"; exit 1; fi
