"""Hidden-state embeddings of texts (and prompt + response pairs), with a resumable disk cache.

PAL-style reward models are small heads on a frozen model's hidden states: by default the
penultimate layer at the last non-pad token. :class:`EmbeddingExtractor` computes them with
:class:`~plural_kit.engine.ForwardEngine` and caches them on disk (``.npz`` chunks, no
pickle, each written atomically) so an interrupted run recomputes only the missing texts.

Every cache entry is verified when it is read: a chunk holds, beside its text digests and
values, the digest of the cache configuration it was written for (model fingerprint, layer,
pooling, ...) and a sha256 of all of it. A chunk that cannot be read (truncated, emptied, a
flipped byte), whose checksum does not match its contents (values rewritten), or that was
written for another configuration (copied from another folder) is removed with a
:class:`CacheEntryWarning` naming it, and its rows are computed again.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from plural_kit.engine import ForwardEngine, Pooling, check_pooling, check_texts
from plural_kit.io import atomic_write, atomic_write_text
from plural_kit.models import cache_home

logger = logging.getLogger(__name__)

__all__ = ["CacheEntryWarning", "EmbeddingExtractor", "model_fingerprint"]

_CACHE_FORMAT = 2  # 2: chunks carry their configuration digest and a sha256 of their contents
_CHUNK_TAG = b"plural_kit embedding cache chunk v2"
_MAX_CHUNKS = 64  # cache files per folder before they are merged


class CacheEntryWarning(UserWarning):
    """An embedding-cache file was damaged or foreign: it was removed and its rows are recomputed
    (or the cache could not be written: the embeddings are computed without it)."""


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    """All bytes of a tensor (its elements in row-major order), as a CPU buffer."""
    flat = t.detach().reshape(-1)
    if flat.device.type != "cpu":
        flat = flat.cpu()
    return memoryview(flat.contiguous().view(torch.uint8).numpy())


def _tensor_digest(t: torch.Tensor) -> bytes:
    if t.is_meta:
        return b"meta"
    return hashlib.sha256(_tensor_bytes(t)).digest()


def model_fingerprint(model: torch.nn.Module) -> str:
    """A sha256 hex digest of a model's class, config and every byte of every weight.

    Covers each tensor of the model's ``state_dict`` (parameters and persistent buffers): its
    name, dtype, shape and all of its bytes, so any change to any weight (fine-tuning, an edited
    row, another dtype) gives another fingerprint. Tied weights are hashed once. Each tensor is
    hashed in full (sha256, tensors on several threads), once per :meth:`EmbeddingExtractor.encode`:
    measured on 2 CPU cores, 0.2 s for SmolLM2-135M in bf16 (269 MB), 0.4 s in fp32 (538 MB) and
    0.09 s for MiniLM-L6 in fp32 (91 MB).
    """
    h = hashlib.sha256(b"plural_kit model fingerprint v2\0" + type(model).__name__.encode())
    config = getattr(model, "config", None)
    cfg = {} if config is None else {k: v for k, v in config.to_dict().items()
                                     if k not in ("_name_or_path", "dtype", "torch_dtype", "transformers_version")}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    tensors: list[tuple[str, torch.Tensor]] = []
    first_name: dict[tuple, str] = {}
    aliases: dict[str, str] = {}
    for name, t in model.state_dict(keep_vars=True).items():
        if not isinstance(t, torch.Tensor):
            continue
        same = (t.device, t.data_ptr(), t.dtype, tuple(t.shape), t.stride()) if t.numel() and not t.is_meta else None
        if same is not None and same in first_name:
            aliases[name] = first_name[same]
            continue
        if same is not None:
            first_name[same] = name
        tensors.append((name, t))
    total = sum(t.numel() * t.element_size() for _, t in tensors)
    with torch.no_grad():
        if total > 32 * 2**20 and len(tensors) > 1:  # hashlib releases the GIL: hash tensors in parallel
            with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
                digests = list(pool.map(lambda nt: _tensor_digest(nt[1]), tensors))
        else:
            digests = [_tensor_digest(t) for _, t in tensors]
    for (name, t), d in zip(tensors, digests):
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(d)
    for name, target in aliases.items():
        h.update(f"\0{name}\0alias of\0{target}\0".encode())
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


def _chunk_checksum(entry: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(32,) uint8 sha256 of a chunk: its configuration digest, keys and values (dtypes, shapes, bytes)."""
    h = hashlib.sha256(_CHUNK_TAG)
    for a in (entry, keys, values):
        h.update(f"\0{a.dtype.str}\0{a.shape}\0".encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return np.frombuffer(h.digest(), dtype=np.uint8)


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
    backend, ray_address
        ``"local"``: the engine runs in this process. ``"ray"``: on a pool of Ray Data actors
        (:class:`~plural_kit.backends.ray.RayEngine`; ``model`` must then be a name or path each
        actor loads, and ``ray_address`` is the cluster, ``None`` for a local one), returning the
        same array in the same order; the disk cache is not used then (for resumable runs over
        many texts use :meth:`RayEngine.write_embeddings <plural_kit.backends.ray.RayEngine.write_embeddings>`).

    The model is loaded on first use; :attr:`engine` exposes the engine.
    """

    def __init__(self, model, tokenizer=None, layer: int = -2, pooling: Pooling = "last",
                 device: str | torch.device = "auto", dtype: str | torch.dtype = "auto",
                 batch_size: int | str = "auto", max_length: int = 512,
                 cache_dir: str | os.PathLike | None = "auto", progress: bool = True, chunk_size: int = 1024,
                 compile: bool = False, backend: str = "local", ray_address: str | None = None):
        check_pooling(pooling)
        if backend not in ("local", "ray"):
            raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}")
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer must be an int, got {layer!r}")
        if isinstance(chunk_size, bool) or not (isinstance(chunk_size, (int, np.integer)) and chunk_size >= 1):
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
        self.chunk_size = int(chunk_size)
        self.compile = compile
        self.backend = backend
        self.ray_address = ray_address
        self._engine: ForwardEngine | None = model if isinstance(model, ForwardEngine) else None
        if backend == "ray":
            from plural_kit.backends.ray import RayEngine

            self._engine = RayEngine(model, address=ray_address, device=device, dtype=dtype, batch_size=batch_size,
                                     max_length=max_length, compile=compile, progress=progress)

    def get_params(self, deep: bool = False) -> dict:
        """The constructor arguments (scikit-learn convention)."""
        return {k: getattr(self, k) for k in ("model", "tokenizer", "layer", "pooling", "device", "dtype",
                                               "batch_size", "max_length", "cache_dir", "progress", "chunk_size",
                                               "compile", "backend", "ray_address")}

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
    def _cache_key(self) -> tuple[dict, str]:
        """This configuration's cache key and its full sha256 hex digest."""
        eng = self.engine
        key = {"format": _CACHE_FORMAT, "model": model_fingerprint(eng.model), "layer": eng.resolve_layer(self.layer),
               "pooling": self.pooling, "dtype": str(eng.dtype), "max_length": eng.max_length,
               "tokenizer": tokenizer_fingerprint(eng.tokenizer), "padding_side": eng.padding_side,
               "packed": eng.packs()}
        return key, hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def cache_path(self) -> Path | None:
        """This configuration's cache folder (``None`` when the cache is off); its name follows the
        model's current weights, so a fine-tuned model gets a fresh folder.

        Raises ``OSError`` naming the folder when a ``cache_dir`` that was given cannot be used
        (with the default ``"auto"`` a warning is given instead and the cache is off).
        """
        found = self._cache_location()
        return None if found is None else found[0]

    def _cache_location(self) -> tuple[Path, np.ndarray] | None:
        """``(folder, configuration digest as (32,) uint8)``, or None when the cache is off."""
        if self.cache_dir is None or self.backend == "ray":
            return None
        root = cache_home() / "embeddings" if self.cache_dir == "auto" else Path(self.cache_dir).expanduser()
        key, digest = self._cache_key()
        eng = self.engine
        name = getattr(eng.model, "plural_kit_name", None) or getattr(eng.model.config, "_name_or_path", None) or "model"
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(str(name)).name)[:60] or "model"
        path = root / f"{slug}-{digest[:20]}"
        try:
            path.mkdir(parents=True, exist_ok=True)
            if not (path / "key.json").exists():
                atomic_write_text(path / "key.json", json.dumps({**key, "name": str(name)}, indent=1))
        except OSError as err:
            problem = (f"cannot use {path} as the embedding cache folder "
                       f"({err.strerror or type(err).__name__}{': ' + str(err.filename) if err.filename else ''})")
            if self.cache_dir != "auto":
                raise OSError(f"{problem}; pass another cache_dir=, or cache_dir=None to compute without "
                              f"a cache") from None
            warnings.warn(f"{problem}: computing without the cache (set PLURAL_KIT_CACHE to a writable folder)",
                          CacheEntryWarning, stacklevel=3)
            return None
        return path, np.frombuffer(bytes.fromhex(digest), dtype=np.uint8)

    def _read_chunk(self, f: Path, entry: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """A chunk's ``(keys, values)`` after checking it, or None: a damaged or foreign chunk is
        removed with a :class:`CacheEntryWarning`; a chunk removed meanwhile (by another process
        merging the folder) is skipped."""
        problem = None
        try:
            with open(f, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # our handle: closed on any error
                names = set(z.files)
                if not {"keys", "values", "entry", "checksum"} <= names:
                    missing = sorted({"keys", "values", "entry", "checksum"} - names)
                    problem = f"not a plural_kit cache chunk of format {_CACHE_FORMAT} (no {', '.join(missing)})"
                else:
                    keys, vals, own, checksum = z["keys"], z["values"], z["entry"], z["checksum"]
        except FileNotFoundError:
            return None
        except Exception as err:  # zipfile, zlib, numpy's header parser and EOF all raise their own types
            problem = f"unreadable: {type(err).__name__}: {err}"
        if problem is None:
            if keys.dtype != np.uint8 or keys.ndim != 2 or keys.shape[1] != 32:
                problem = f"text digests of dtype {keys.dtype} and shape {keys.shape}, not uint8 (n, 32)"
            elif vals.dtype != np.float32 or vals.ndim != 2 or vals.shape != (len(keys), self.dim):
                problem = (f"values of dtype {vals.dtype} and shape {vals.shape}, not float32 "
                           f"({len(keys)}, {self.dim})")
            elif own.dtype != np.uint8 or own.shape != (32,) or checksum.dtype != np.uint8 or checksum.shape != (32,):
                problem = "a malformed configuration digest or checksum"
            elif not np.array_equal(checksum, _chunk_checksum(own, keys, vals)):
                problem = "its sha256 does not match its contents (damaged or edited)"
            elif not np.array_equal(own, entry):
                problem = "written for another model or configuration (a foreign entry)"
        if problem is None:
            return keys, vals
        try:
            f.unlink(missing_ok=True)
            action = "removed it"
        except OSError as err:
            action = f"could not remove it ({err.strerror}), ignoring it"
        warnings.warn(f"embedding cache file {f} cannot be used ({problem}): {action}; its rows are computed again",
                      CacheEntryWarning, stacklevel=4)
        return None

    def _load_cache(self, path: Path, entry: np.ndarray) -> tuple[dict[bytes, tuple[int, int]], list[np.ndarray]]:
        """Index every valid chunk: ``{text digest: (chunk, row)}`` and the chunks' values. More than
        ``_MAX_CHUNKS`` files are merged into one (written first, then the old ones removed)."""
        index: dict[bytes, tuple[int, int]] = {}
        values = []
        files = sorted(path.glob("chunk-*.npz"))
        for f in files:
            chunk = self._read_chunk(f, entry)
            if chunk is None:
                continue
            keys, vals = chunk
            j = len(values)
            values.append(vals)
            for row, k in enumerate(keys):
                index[k.tobytes()] = (j, row)
        if len(files) > _MAX_CHUNKS and index:
            keys = np.frombuffer(b"".join(index), dtype=np.uint8).reshape(len(index), 32)
            merged = np.stack([values[j][row] for j, row in index.values()])
            if self._write_chunk(path, entry, keys, merged):
                for f in files:
                    f.unlink(missing_ok=True)
                index = {k: (0, row) for row, k in enumerate(index)}
                values = [merged]
        return index, values

    @staticmethod
    def _write_chunk(path: Path, entry: np.ndarray, keys: np.ndarray, values: np.ndarray) -> bool:
        """Write one chunk atomically; on a write error (disk full, read-only folder) warn and return False."""
        keys = np.ascontiguousarray(keys, dtype=np.uint8)
        values = np.ascontiguousarray(values, dtype=np.float32)
        checksum = _chunk_checksum(entry, keys, values)
        try:
            atomic_write(path / f"chunk-{os.urandom(8).hex()}.npz",
                         lambda fh: np.savez(fh, keys=keys, values=values, entry=entry, checksum=checksum))
        except OSError as err:
            warnings.warn(f"could not write to the embedding cache {path} ({err.strerror or err}): the embeddings "
                          f"are returned but not cached", CacheEntryWarning, stacklevel=3)
            return False
        return True

    # ------------------------------------------------------------------ encoding
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts``: ``(n, d)`` float32, in input order.

        Cached texts are read from disk; the rest are computed (each distinct text once,
        longest first) and saved every ``chunk_size`` rows. While hooks are registered on the
        model (e.g. inside ``engine.hooks``) the cache is neither read nor written.
        """
        texts = check_texts(texts)
        eng = self.engine
        if self.backend == "ray":
            return eng.hidden_states(texts, [self.layer], self.pooling)[self.layer]
        out = np.empty((len(texts), eng.hidden_size), dtype=np.float32)
        keys = _digests(texts)
        if self.cache_dir is not None and eng.has_hooks():
            logger.warning("hooks are registered on the model, so its outputs may be edited: "
                           "computing without the embedding cache")
            found = None
        else:
            found = self._cache_location()
        path, entry = found if found is not None else (None, None)
        todo: dict[bytes, list[int]] = {}
        if path is not None:
            index, values = self._load_cache(path, entry)
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
                    if not self._write_chunk(path, entry, np.concatenate(buf_keys), np.concatenate(buf_vals)):
                        path = None  # warned once: stop writing
                    buf_keys, buf_vals = [], []
        if path is not None and buf_keys:
            self._write_chunk(path, entry, np.concatenate(buf_keys), np.concatenate(buf_vals))
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

    def describe(self, embeddings: np.ndarray) -> str:
        """One line on what :meth:`encode` returned (``embeddings``: (n_texts, d)): this extractor,
        the shape, and the engine's device and dtype."""
        n, d = np.shape(embeddings)
        return f"{self}: {n} texts -> {d}-d hidden states on {self.engine.device} in {self.engine.dtype}"

    def __repr__(self) -> str:
        name = self.model if isinstance(self.model, (str, os.PathLike)) else type(self.model).__name__
        return f"EmbeddingExtractor({name!r}, layer={self.layer}, pooling={self.pooling!r})"
