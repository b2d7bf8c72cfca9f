"""Hidden-state embeddings of texts (and prompt + response pairs), with a resumable disk cache.

PAL-style reward models are small heads on a frozen model's hidden states: by default the
penultimate layer at the last non-pad token. :class:`EmbeddingExtractor` computes them with
:class:`~plural_kit.engine.ForwardEngine` and caches them on disk (``.npz`` chunks, no
pickle, each written atomically) so an interrupted run recomputes only the missing texts.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from plural_kit.engine import ForwardEngine, Pooling, check_pooling, check_texts
from plural_kit.io import atomic_write, atomic_write_text
from plural_kit.models import cache_home

logger = logging.getLogger(__name__)

__all__ = ["EmbeddingExtractor", "model_fingerprint"]

_CACHE_FORMAT = 1
_MAX_CHUNKS = 64  # cache files per folder before they are merged


def model_fingerprint(model: torch.nn.Module) -> str:
    """A sha256 hex digest of a model's class, config and a strided sample of every weight.

    Changes when the weights (or their dtype) change, e.g. after fine-tuning; cheap
    (≤1,024 values per tensor).
    """
    h = hashlib.sha256(type(model).__name__.encode())
    cfg = {k: v for k, v in model.config.to_dict().items()
           if k not in ("_name_or_path", "dtype", "torch_dtype", "transformers_version")}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, p in model.named_parameters():
            flat = p.detach().reshape(-1)
            sample = flat[:: max(1, flat.numel() // 1024)][:1024]
            h.update(name.encode())
            h.update(str(p.dtype).encode())
            h.update(sample.float().cpu().numpy().tobytes())
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer) -> str:
    """A sha256 hex digest of what decides a tokenizer's ids: class, vocabulary size, special
    tokens, BOS handling and chat template (same weights + another tokenizer = another cache)."""
    parts = {
        "class": type(tokenizer).__name__,
        "vocab": len(tokenizer),
        "special": {k: str(v) for k, v in sorted(tokenizer.special_tokens_map.items())},
        "add_bos": getattr(tokenizer, "add_bos_token", None),
        "chat_template": getattr(tokenizer, "chat_template", None),
        "sample": tokenizer("plural_kit tokenizer fingerprint: Ünïcödé 123")["input_ids"],
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _digests(texts: Sequence[str]) -> np.ndarray:
    """(n, 32) uint8 sha256 of each text."""
    return np.frombuffer(b"".join(hashlib.sha256(t.encode("utf-8")).digest() for t in texts),
                         dtype=np.uint8).reshape(len(texts), 32)


class EmbeddingExtractor:
    """Embed texts as the pooled hidden state of one layer of a model.

    Parameters
    ----------
    model
        A model name or path (loaded with :func:`plural_kit.models.load_model`, e.g.
        ``"smollm2-135m-instruct"``), a loaded Hugging Face model (then pass ``tokenizer``),
        or a :class:`~plural_kit.engine.ForwardEngine`.
    layer
        Hidden-state index as in Hugging Face ``output_hidden_states`` (-2: output of the
        penultimate block, what PAL uses).
    pooling
        ``"last"`` (last non-pad token, right for left and right padding), ``"mean"`` or an int
        token position (see :meth:`ForwardEngine.hidden_states`).
    device, dtype, batch_size, max_length, progress
        Passed to the engine (``dtype="auto"``: bf16 on CPUs with bf16 matrix units and on GPUs).
    cache_dir
        ``"auto"``: ``$PLURAL_KIT_CACHE/embeddings`` (default ``~/.cache/plural_kit/embeddings``);
        a folder; or ``None`` for no cache. Entries are keyed by the model's fingerprint,
        layer, pooling, dtype, max_length and the sha256 of each text.
    chunk_size
        Rows per cache file: an interrupted run loses at most this many computed rows.
    compile
        ``torch.compile`` the engine's packed forward for Llama-family models on CPU (see
        :class:`~plural_kit.engine.ForwardEngine`): ~1.3x faster after a one-off ~10-15 s, so
        worth it from ~100k tokens. Like ``device`` and ``dtype``, ignored when ``model`` is
        already an engine.

    The model is loaded on first use; :attr:`engine` exposes the engine.
    """

    def __init__(self, model, tokenizer=None, layer: int = -2, pooling: Pooling = "last",
                 device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
                 batch_size: int | str = "auto", max_length: int = 512,
                 cache_dir: str | os.PathLike | None = "auto", progress: bool = True, chunk_size: int = 1024,
                 compile: bool = False):
        check_pooling(pooling)
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {layer!r}")
        if not (isinstance(chunk_size, int) and chunk_size >= 1):
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.layer = int(layer)
        self.pooling = pooling
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.max_length = max_length
        self.cache_dir = cache_dir
        self.progress = progress
        self.chunk_size = chunk_size
        self.compile = compile
        self._engine: ForwardEngine | None = model if isinstance(model, ForwardEngine) else None

    def get_params(self, deep: bool = False) -> dict:
        """The constructor arguments (scikit-learn convention)."""
        return {k: getattr(self, k) for k in ("model", "tokenizer", "layer", "pooling", "device", "dtype",
                                               "batch_size", "max_length", "cache_dir", "progress", "chunk_size",
                                               "compile")}

    @property
    def engine(self) -> ForwardEngine:
        """The :class:`ForwardEngine` (loads the model on first access)."""
        if self._engine is None:
            self._engine = ForwardEngine(self.model, self.tokenizer, device=self.device, dtype=self.dtype,
                                         batch_size=self.batch_size, max_length=self.max_length,
                                         progress=self.progress, compile=self.compile)
            self._engine.resolve_layer(self.layer)  # fail early on a layer the model lacks
        return self._engine

    @property
    def dim(self) -> int:
        """Embedding size ``d``."""
        return self.engine.hidden_size

    # ------------------------------------------------------------------ cache
    def cache_path(self) -> Path | None:
        """This configuration's cache folder (``None`` when the cache is off); its name follows the
        model's current weights, so a fine-tuned model gets a fresh folder."""
        if self.cache_dir is None:
            return None
        root = cache_home() / "embeddings" if self.cache_dir == "auto" else Path(self.cache_dir).expanduser()
        eng = self.engine
        key = {"format": _CACHE_FORMAT, "model": model_fingerprint(eng.model), "layer": eng.resolve_layer(self.layer),
               "pooling": self.pooling, "dtype": str(eng.dtype), "max_length": eng.max_length,
               "tokenizer": tokenizer_fingerprint(eng.tokenizer), "padding_side": eng.padding_side,
               "packed": eng.packs()}
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
        name = getattr(eng.model, "plural_kit_name", None) or eng.model.config._name_or_path or "model"
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(name)).name)[:60]
        path = root / f"{slug}-{digest}"
        path.mkdir(parents=True, exist_ok=True)
        if not (path / "key.json").exists():
            atomic_write_text(path / "key.json", json.dumps({**key, "name": str(name)}, indent=1))
        return path

    def _load_cache(self, path: Path) -> tuple[dict[bytes, tuple[int, int]], list[np.ndarray]]:
        """Index every chunk: ``{text digest: (chunk, row)}`` and the chunks' values. More than
        ``_MAX_CHUNKS`` files are merged into one (written first, then the old ones removed)."""
        index: dict[bytes, tuple[int, int]] = {}
        values = []
        files = sorted(path.glob("chunk-*.npz"))
        for f in files:
            try:
                with np.load(f, allow_pickle=False) as z:
                    keys, vals = z["keys"], z["values"]
            except (OSError, ValueError, KeyError) as err:
                logger.warning("ignoring unreadable cache file %s: %s", f, err)
                continue
            if vals.ndim != 2 or vals.shape[1] != self.dim or len(keys) != len(vals):
                logger.warning("ignoring cache file %s with unexpected shapes %s, %s", f, keys.shape, vals.shape)
                continue
            j = len(values)
            values.append(vals)
            for row, k in enumerate(keys):
                index[k.tobytes()] = (j, row)
        if len(files) > _MAX_CHUNKS and index:
            keys = np.frombuffer(b"".join(index), dtype=np.uint8).reshape(len(index), 32)
            merged = np.stack([values[j][row] for j, row in index.values()])
            self._write_chunk(path, keys, merged)
            for f in files:
                f.unlink(missing_ok=True)
            index = {k: (0, row) for row, k in enumerate(index)}
            values = [merged]
        return index, values

    @staticmethod
    def _write_chunk(path: Path, keys: np.ndarray, values: np.ndarray) -> None:
        atomic_write(path / f"chunk-{os.urandom(8).hex()}.npz", lambda fh: np.savez(fh, keys=keys, values=values))

    # ------------------------------------------------------------------ encoding
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``: ``(n, d)`` float32, in input order.

        Cached texts are read from disk; the rest are computed (each distinct text once,
        longest first) and saved every ``chunk_size`` rows. While hooks are registered on the
        model (e.g. inside ``engine.hooks``) the cache is neither read nor written.
        """
        texts = check_texts(texts)
        eng = self.engine
        out = np.empty((len(texts), eng.hidden_size), dtype=np.float32)
        keys = _digests(texts)
        if self.cache_dir is not None and eng.has_hooks():
            logger.warning("hooks are registered on the model, so its outputs may be edited: "
                           "computing without the embedding cache")
            path = None
        else:
            path = self.cache_path()
        todo: dict[bytes, list[int]] = {}
        if path is not None:
            index, values = self._load_cache(path)
            for i, k in enumerate(keys):
                hit = index.get(k.tobytes())
                if hit is None:
                    todo.setdefault(k.tobytes(), []).append(i)
                else:
                    out[i] = values[hit[0]][hit[1]]
        else:
            for i, k in enumerate(keys):
                todo.setdefault(k.tobytes(), []).append(i)
        if not todo:
            return out
        first = [rows[0] for rows in todo.values()]
        new_texts = [texts[i] for i in first]
        buf_keys, buf_vals = [], []
        for idx, res in eng.iter_hidden_states(new_texts, [self.layer], self.pooling, progress=self.progress):
            vals = res[self.layer]
            for j, v in zip(idx, vals):
                out[todo[keys[first[j]].tobytes()]] = v
            if path is not None:
                buf_keys.append(keys[[first[j] for j in idx]])
                buf_vals.append(vals)
                if sum(len(b) for b in buf_keys) >= self.chunk_size:
                    self._write_chunk(path, np.concatenate(buf_keys), np.concatenate(buf_vals))
                    buf_keys, buf_vals = [], []
        if path is not None and buf_keys:
            self._write_chunk(path, np.concatenate(buf_keys), np.concatenate(buf_vals))
        return out

    def format_pairs(self, prompts: Sequence[str], responses: Sequence[str]) -> list[str]:
        """The texts :meth:`encode_pairs` embeds: a user turn and an assistant turn in the model's
        chat template (trailing whitespace removed, so last-token pooling reads the end-of-turn
        token), or ``prompt + "\\n\\n" + response`` for models without one."""
        prompts = check_texts(prompts, "prompts")
        responses = check_texts(responses, "responses")
        if len(prompts) != len(responses):
            raise ValueError(f"prompts and responses differ in length: {len(prompts)} vs {len(responses)}")
        eng = self.engine
        if getattr(eng.tokenizer, "chat_template", None):
            convs = [[{"role": "user", "content": p}, {"role": "assistant", "content": r}]
                     for p, r in zip(prompts, responses)]
            return [t.rstrip() for t in eng.apply_chat_template(convs, add_generation_prompt=False)]
        return [f"{p}\n\n{r}" for p, r in zip(prompts, responses)]

    def encode_pairs(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Embeddings of prompt + response pairs, ``(n, d)`` float32 (see :meth:`format_pairs`)."""
        return self.encode(self.format_pairs(prompts, responses))

    def __repr__(self) -> str:
        name = self.model if isinstance(self.model, (str, os.PathLike)) else type(self.model).__name__
        return f"EmbeddingExtractor({name!r}, layer={self.layer}, pooling={self.pooling!r})"
