"""Regenerate ``registry.json`` (relative path -> canonical URL + sha256) from a data mirror.

Run from the repository root, with a mirror laid out like ``shared/data``::

    python -m plural_kit.data._registry_build ../shared/data

Every registered file is hashed as it lies in the mirror (the mirror keeps the files exactly as
published). The canonical URL is the file in its public repository at a pinned commit; a source
marked ``packaged`` has no URL and is shipped in ``plural_kit/data/packaged/`` instead (its copy
there must be byte-identical to the mirror's).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pooch

from plural_kit.io import atomic_write_text

_RAW = "https://raw.githubusercontent.com"
_PACKAGED = Path(__file__).with_name("packaged")

# folder in the mirror -> where its files live upstream. ``files`` maps a glob inside the
# folder to the path prefix inside the repository (None: registered without a public URL).
SOURCES: dict[str, dict] = {
    "anthropic_evals": {
        "repo": "anthropics/evals",
        "commit": "84fcc677e52e1902d696c32cd1a6b663e70d3993",
        "base_url": f"{_RAW}/anthropics/evals/84fcc677e52e1902d696c32cd1a6b663e70d3993/",
        "license": "CC BY 4.0",
        "files": {
            "persona/*.jsonl": "persona/",
            "advanced-ai-risk/human_generated_evals/*.jsonl": "advanced-ai-risk/human_generated_evals/",
        },
    },
    "hh_rlhf": {
        "repo": "anthropics/hh-rlhf",
        "commit": "354e5c3cb8960630860dd5774a6ac2a58313bf4d",
        # the .jsonl.gz files are Git LFS objects: raw.githubusercontent.com serves the pointer,
        # media.githubusercontent.com the content.
        "base_url": "https://media.githubusercontent.com/media/anthropics/hh-rlhf/"
        "354e5c3cb8960630860dd5774a6ac2a58313bf4d/",
        "license": "MIT",
        "files": {"harmless-base/test.jsonl.gz": "harmless-base/"},
    },
    "d3code": {
        "repo": "google-research-datasets/D3code",
        "commit": "d3c12e9599b1f1ba7fc1e80a42079d6be6c6b6e9",
        "base_url": f"{_RAW}/google-research-datasets/D3code/d3c12e9599b1f1ba7fc1e80a42079d6be6c6b6e9/",
        "license": "CC BY 4.0",
        "files": {"d3-raters.csv": "dataset/", "d3-items.csv": "dataset/"},
    },
    "seegull": {
        "repo": "google-research-datasets/seegull",
        "commit": "0dc4db9f69217aff072375e20e72609b9707a873",
        "base_url": f"{_RAW}/google-research-datasets/seegull/0dc4db9f69217aff072375e20e72609b9707a873/",
        "license": "CC BY 4.0",
        "files": {"stereotypes_*.csv": "dataset/"},
    },
    "mfq2": {
        "repo": None,
        "commit": None,
        "base_url": None,
        # shipped inside the package (plural_kit/data/packaged/mfq2/): no download needed
        "packaged": True,
        "license": "cite Atari et al. (2023); research use",
        "note": "transcribed from the published questionnaire (Atari et al. 2023, JPSP 125(5)); "
        "no public machine-readable copy is known, so plural_kit ships it",
        "files": {"items.csv": None},
    },
    "refusal_direction_prompts": {
        "repo": "andyrdt/refusal_direction",
        "commit": "9d852fae1a9121c78b29142de733cb1340770cc3",
        "base_url": f"{_RAW}/andyrdt/refusal_direction/9d852fae1a9121c78b29142de733cb1340770cc3/",
        "license": "Apache-2.0 (repo); AdvBench/JBB/HarmBench MIT; Alpaca CC BY-NC 4.0",
        "files": {
            "raw/*.csv": "dataset/raw/",
            "processed/*.json": "dataset/processed/",
            "splits/*.json": "dataset/splits/",
        },
    },
    "emergent_misalignment_eval": {
        # verbatim vendored copy of emergent-misalignment/emergent-misalignment evaluation/
        "repo": "jacobcd52/finetune_diffing",
        "commit": "a6bcc8b178553ddedc4355282b66c13fd18fc66a",
        "base_url": f"{_RAW}/jacobcd52/finetune_diffing/a6bcc8b178553ddedc4355282b66c13fd18fc66a/",
        "license": "MIT",
        "files": {"*.yaml": "evaluation/"},
    },
    "truthfulqa": {
        # copy of sylinrl/TruthfulQA TruthfulQA.csv (v1 release)
        "repo": "benedictflorance/truthfulqa_experiments",
        "commit": "6fdfd38288e86296582a584694df5cf43d1f634a",
        "base_url": f"{_RAW}/benedictflorance/truthfulqa_experiments/6fdfd38288e86296582a584694df5cf43d1f634a/",
        "license": "Apache-2.0",
        "files": {"TruthfulQA.csv": "datasets/"},
    },
    "repeng_true_facts": {
        "repo": "vgel/repeng",
        "commit": "0ba7196d81f7c5de28b1159c9d1732440afd97ce",
        "base_url": f"{_RAW}/vgel/repeng/0ba7196d81f7c5de28b1159c9d1732440afd97ce/",
        "license": "MIT",
        "files": {"true_facts.json": "notebooks/data/"},
    },
    "papi": {
        "repo": "zhu-minjun/PAlign",
        "commit": "18e1e3404951acc864f30f323a0e47a0840b474a",
        "base_url": f"{_RAW}/zhu-minjun/PAlign/18e1e3404951acc864f30f323a0e47a0840b474a/",
        "license": "IPIP items public domain (IPIP_Permission.pdf); responses from Johnson's IPIP-NEO data, research use",
        "files": {"Test-set.json": "PAPI/", "mpi_*.csv": "PAPI/", "IPIP_Permission.pdf": ""},
    },
}


def build_registry(mirror: str | Path) -> dict:
    """Registry dict for every file of :data:`SOURCES` found in ``mirror``."""
    mirror = Path(mirror)
    files: dict[str, dict] = {}
    for folder, src in SOURCES.items():
        for pattern, prefix in src["files"].items():
            matches = sorted((mirror / folder).glob(pattern))
            if not matches:
                raise FileNotFoundError(f"no file matches {folder}/{pattern} in {mirror}")
            for path in matches:
                rel = path.relative_to(mirror / folder).as_posix()
                sha256 = pooch.file_hash(str(path), alg="sha256")
                if src.get("packaged"):
                    copy = _PACKAGED / folder / rel
                    if not copy.is_file() or pooch.file_hash(str(copy), alg="sha256") != sha256:
                        raise ValueError(f"{copy} must be a byte-identical copy of {path}")
                files[f"{folder}/{rel}"] = {
                    "source": folder,
                    "path": None if prefix is None else prefix + path.name,
                    "sha256": sha256,
                    "size": path.stat().st_size,
                }
    sources = {k: {kk: vv for kk, vv in v.items() if kk != "files"} for k, v in SOURCES.items()}
    return {"version": 1, "sources": sources, "files": files}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        raise SystemExit("usage: python -m plural_kit.data._registry_build MIRROR_DIR")
    reg = build_registry(argv[0])
    out = Path(__file__).with_name("registry.json")
    atomic_write_text(out, json.dumps(reg, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
