"""The engine contract on a Ray cluster: Ray Data actors that each run a :class:`ForwardEngine`.

:class:`RayEngine` has the engine's batch methods (:meth:`~RayEngine.hidden_states`,
:meth:`~RayEngine.next_token_logprobs`, :meth:`~RayEngine.continuation_logprobs`,
:meth:`~RayEngine.generate`), so the answer-option scorer (:func:`plural_kit.scoring.option_probs`),
the audits (``LogprobScorer(RayEngine(...))``) and :class:`~plural_kit.embed.EmbeddingExtractor`
(``backend="ray"``) run on it unchanged. Each call is one Ray Data ``map_batches`` over an actor
pool: every actor loads the model once and runs today's engine on its batches (length sorting,
the packed path, layer choice and out-of-memory back-off all carry over), one GPU per actor when
the cluster has GPUs, CPU actors otherwise.

For runs too large to hold, :meth:`RayEngine.write_embeddings` and
:meth:`RayEngine.write_logprobs` stream the results to Parquet shards of ``shard_size`` input
rows (``shard-00000.parquet``: columns ``id``, ``row`` and the values) and a ``manifest.json``
written atomically after each shard, holding each shard's input digest and file sha256. A run
started again on the same folder skips the shards that are complete and verified, and
recomputes (with a :class:`ShardWarning`) those that are missing, damaged or were written for
other inputs; the driver holds only the shards in flight.

Model weights travel by name: each actor loads ``model`` (a bundled name, a folder every node
can read, or a hub id), so pass a name or path, not a loaded model.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plural_kit.engine import Layer, Pooling, check_pooling, check_texts
from plural_kit.io import atomic_write, atomic_write_text, file_sha256

logger = logging.getLogger(__name__)

__all__ = ["RayEngine", "ShardWarning", "ShardedOutput", "engine_digest", "read_shards"]

INSTALL = "pip install 'plural_kit[ray]'"
_FORMAT = 1
MANIFEST = "manifest.json"


class ShardWarning(UserWarning):
    """A Parquet shard of a run was missing, damaged or written for other inputs: it is computed again."""


def _ray():
    """The ``ray`` module (with Ray Data and pyarrow), or an ImportError saying how to install it."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise ImportError(f"the Ray backend needs ray[data] and pyarrow ({err.name} is missing): {INSTALL}") from err
    return ray


def engine_digest(engine) -> str:
    """sha256 hex of what decides a :class:`ForwardEngine`'s numbers: the model's weights, the
    tokenizer, dtype, device type, max_length, padding side and whether it packs."""
    from plural_kit.embed import model_fingerprint, tokenizer_fingerprint

    key = {"model": model_fingerprint(engine.model), "tokenizer": tokenizer_fingerprint(engine.tokenizer),
           "dtype": str(engine.dtype), "device": engine.device.type, "max_length": engine.max_length,
           "padding_side": engine.padding_side, "packed": engine.packs()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


class _EngineActor:
    """A Ray Data actor: builds one ForwardEngine in ``__init__`` and runs ``method`` on each batch."""

    def __init__(self, model: str, engine_kwargs: dict, method: str, kwargs: dict, digest: bool):
        from plural_kit.engine import ForwardEngine

        self.engine = ForwardEngine(model, progress=False, **engine_kwargs)
        self.method, self.kwargs = method, kwargs
        self.digest = engine_digest(self.engine) if digest else ""

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.perf_counter()
        texts = [str(t) for t in batch["text"]]
        out = {"row": np.asarray(batch["row"], dtype=np.int64), "engine": np.array([self.digest] * len(texts))}
        eng, kw = self.engine, self.kwargs
        if self.method == "hidden_states":
            got = eng.hidden_states(texts, kw["layers"], kw["pooling"])
            out.update({f"v{i}": got[lay] for i, lay in enumerate(kw["layers"])})
        elif self.method == "next_token_logprobs":
            out["v0"] = eng.next_token_logprobs(texts, kw["token_ids"])
        elif self.method == "continuation_logprobs":
            out["v0"] = eng.continuation_logprobs(texts, [str(t) for t in batch["text2"]], kw["reduce"])
        elif self.method == "generate":
            out["v0"] = np.array(eng.generate(texts, **kw), dtype=object)
        else:
            raise ValueError(f"unknown engine method {self.method!r}")
        out["seconds"] = np.full(len(texts), (time.perf_counter() - start) / len(texts))
        return out


def _inputs_digest(ids: Sequence, texts: Sequence[str]) -> str:
    """sha256 hex of a shard's inputs: each row's id and text."""
    h = hashlib.sha256(b"plural_kit shard inputs v1")
    for i, t in zip(ids, texts):
        h.update(f"\0{json.dumps(i)}\0".encode())
        h.update(t.encode("utf-8"))
    return h.hexdigest()


def _check_ids(ids, n: int) -> list:
    """``ids`` as a list of n distinct ints or n distinct strings (``None``: ``0..n-1``)."""
    if ids is None:
        return list(range(n))
    if isinstance(ids, str):
        raise TypeError("ids must be a list of ints or strings, not one string")
    ids = [i.item() if isinstance(i, np.generic) else i for i in ids]
    if len(ids) != n:
        raise ValueError(f"ids has {len(ids)} entries for {n} texts")
    kinds = {type(i) for i in ids}
    if not (kinds <= {int} or kinds <= {str}) or bool in kinds:
        raise ValueError(f"ids must be all ints or all strings (they join the results back), got types "
                         f"{sorted(k.__name__ for k in kinds)}")
    if len(set(ids)) != n:
        raise ValueError(f"ids must be distinct: {n - len(set(ids))} repeat")
    return ids


@dataclass(frozen=True, repr=False)
class ShardedOutput:
    """A run's Parquet shards in ``path`` and its manifest.

    ``computed`` / ``reused``: the shard numbers computed by the call that returned this object
    and those it found complete and verified. Read with :meth:`read` (everything) or
    :meth:`iter_shards` (one shard at a time); each file's sha256 is checked as it is read.
    """

    path: Path
    manifest: dict
    computed: tuple[int, ...] = ()
    reused: tuple[int, ...] = ()

    @property
    def n_rows(self) -> int:
        return self.manifest["request"]["n_rows"]

    @property
    def column(self) -> str:
        return self.manifest["request"]["column"]

    def iter_shards(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(ids (m,), values (m, k) float32)`` shard by shard, in row order; ``ValueError``
        when a shard is missing or its sha256 does not match the manifest."""
        import pyarrow.parquet as pq

        shards = self.manifest["shards"]
        n_shards = math.ceil(self.n_rows / self.manifest["request"]["shard_size"])
        for k in range(n_shards):
            entry = shards.get(str(k))
            file = self.path / (entry["file"] if entry else _shard_name(k))
            if entry is None or not file.is_file() or file_sha256(file) != entry["sha256"]:
                raise ValueError(f"shard {file} is missing, incomplete or damaged; run the same write_* call on "
                                 f"{self.path} again to compute it")
            table = pq.read_table(file)
            values = table.column(self.column).combine_chunks()
            width = values.type.list_size
            yield (table.column("id").to_numpy(zero_copy_only=False),
                   values.flatten().to_numpy().reshape(-1, width).astype(np.float32, copy=False))

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids (n,), values (n, k) float32)`` of all shards, in input order."""
        parts = list(self.iter_shards())
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def __repr__(self) -> str:
        return (f"ShardedOutput({str(self.path)!r}, {self.column}, rows={self.n_rows}, "
                f"shards={len(self.manifest['shards'])}, computed={len(self.computed)}, reused={len(self.reused)})")


def _shard_name(k: int) -> str:
    return f"shard-{k:05d}.parquet"


def _read_manifest(path: Path) -> dict | None:
    file = path / MANIFEST
    if not file.exists():
        return None
    try:
        manifest = json.loads(file.read_text())
        if manifest.get("format") != _FORMAT or not {"request", "shards"} <= set(manifest):
            raise ValueError(f"not a plural_kit shard manifest of format {_FORMAT}")
    except (ValueError, OSError) as err:
        raise ValueError(f"{file} cannot be read ({err}); remove it (the shards will be computed again) "
                         "or use another output_dir") from None
    return manifest


def read_shards(output_dir: str | os.PathLike) -> ShardedOutput:
    """The :class:`ShardedOutput` of a finished (or interrupted) run in ``output_dir``."""
    path = Path(output_dir)
    manifest = _read_manifest(path)
    if manifest is None:
        raise FileNotFoundError(f"{path / MANIFEST} does not exist: {path} holds no plural_kit run")
    return ShardedOutput(path, manifest, reused=tuple(sorted(int(k) for k in manifest["shards"])))


class RayEngine:
    """The engine contract run by a pool of Ray Data actors, each holding a :class:`ForwardEngine`.

    Parameters
    ----------
    model
        A model name or path that every actor can load (:func:`plural_kit.models.load_model`).
    address
        The Ray cluster (``"auto"``, ``"ray://host:10001"``); ``None``: a local cluster started on
        first use. An already connected Ray session is used as it is.
    num_actors
        Actors in the pool; ``None``: the cluster's GPUs / ``num_gpus`` when actors use GPUs,
        otherwise its CPUs / ``num_cpus``.
    num_cpus, num_gpus
        Resources of each actor; ``num_gpus="auto"``: 1 when the cluster has GPUs, else 0.
    rows_per_batch
        Texts per Ray batch (one actor call); the engine batches them again by length.
    device, dtype, batch_size, max_length, compile
        Passed to each actor's :class:`ForwardEngine` (``"auto"`` resolves on the actor: CUDA and
        bf16 on a GPU actor).
    progress
        Show Ray Data's progress bars.
    """

    def __init__(self, model: str | os.PathLike, *, address: str | None = None, num_actors: int | None = None,
                 num_cpus: float = 1, num_gpus: float | str = "auto", rows_per_batch: int = 256,
                 device: str = "auto", dtype: str = "auto", batch_size: int | str = "auto", max_length: int = 512,
                 compile: bool = False, progress: bool = False):
        if not isinstance(model, (str, os.PathLike)):
            raise TypeError(f"the Ray backend needs a model name or path that each actor loads, got a "
                            f"{type(model).__name__}; save a loaded model with save_pretrained() and pass its folder")
        if num_actors is not None and not (isinstance(num_actors, int) and num_actors >= 1):
            raise ValueError(f"num_actors must be None or a positive int, got {num_actors!r}")
        if not (isinstance(rows_per_batch, int) and rows_per_batch >= 1):
            raise ValueError(f"rows_per_batch must be a positive int, got {rows_per_batch!r}")
        if not (num_gpus == "auto" or (isinstance(num_gpus, (int, float)) and num_gpus >= 0)):
            raise ValueError(f"num_gpus must be 'auto' or a number >= 0, got {num_gpus!r}")
        self.model = str(model)
        self.address = address
        self.num_actors = num_actors
        self.num_cpus = num_cpus
        self.num_gpus = num_gpus
        self.rows_per_batch = rows_per_batch
        self.engine_kwargs = {"device": device, "dtype": dtype, "batch_size": batch_size, "max_length": max_length,
                              "compile": compile}
        self.progress = progress
        self._tokenizer = None
        self._config = None
        #: seconds the actors spent inside the engine during the last call, summed over actors
        #: (the call's wall time less this is the cost of starting actors, loading models and moving data)
        self.engine_seconds = 0.0

    # ------------------------------------------------------------------ what the driver knows locally
    @property
    def device(self) -> str:
        """The device asked of each actor (``"auto"``: each actor resolves it on its own hardware)."""
        return str(self.engine_kwargs["device"])

    @property
    def dtype(self) -> str:
        """The dtype asked of each actor (``"auto"``: resolved by each actor, as ``ForwardEngine`` does)."""
        return str(self.engine_kwargs["dtype"])

    @property
    def tokenizer(self):
        """The model's tokenizer, loaded in this process (the scorer resolves label tokens with it)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from plural_kit.models import _resolve

            self._tokenizer = AutoTokenizer.from_pretrained(_resolve(self.model), trust_remote_code=False)
        return self._tokenizer

    @property
    def config(self):
        """The model's Hugging Face config (read in this process; no weights are loaded here)."""
        if self._config is None:
            from transformers import AutoConfig

            from plural_kit.models import _resolve

            self._config = AutoConfig.from_pretrained(_resolve(self.model), trust_remote_code=False)
        return self._config

    @property
    def n_layers(self) -> int:
        return int(self.config.num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.config.hidden_size)

    def resolve_layer(self, layer: int) -> int:
        """A layer index as ``0..n_layers`` (see :meth:`ForwardEngine.resolve_layer`)."""
        n = self.n_layers
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -(n + 1) <= layer <= n:
            raise ValueError(f"layer {layer!r} is out of range: {self.model} has {n} blocks, so layers outside "
                             f"0..{n} (0 = embeddings) or -{n + 1}..-1 do not exist")
        return int(layer) % (n + 1)

    def apply_chat_template(self, prompts, system: str | None = None, add_generation_prompt: bool = True) -> list[str]:
        """Chat-format prompts with the model's template (:func:`plural_kit.engine.chat_format`)."""
        from plural_kit.engine import chat_format

        return chat_format(self.tokenizer, prompts, system=system, add_generation_prompt=add_generation_prompt,
                           model_name=self.model)

    def hooks(self, fns):
        """Not available: hooks edit a model inside one process, and the actors' models live in others."""
        raise TypeError("the Ray backend cannot run hooks (they edit a model inside one process); use a "
                        "ForwardEngine for steering and activation edits")

    # ------------------------------------------------------------------ running on the cluster
    def _connect(self):
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, logging_level=logging.WARNING)
        return ray

    def _pool(self, ray) -> tuple[int, float]:
        """``(actors, GPUs per actor)`` for this cluster."""
        resources = ray.cluster_resources()
        gpus = (1.0 if resources.get("GPU", 0) >= 1 else 0.0) if self.num_gpus == "auto" else float(self.num_gpus)
        if self.num_actors is not None:
            return self.num_actors, gpus
        if gpus > 0:
            return max(1, int(resources.get("GPU", 0) // gpus)), gpus
        return max(1, int(resources.get("CPU", 1) // self.num_cpus)), gpus

    def _run(self, method: str, kwargs: dict, rows: np.ndarray, columns: dict[str, Sequence[str]],
             blocks: list[np.ndarray] | None = None, digest: bool = False) -> Iterator[dict[str, np.ndarray]]:
        """Run ``method`` on the rows ``rows`` of ``columns`` (one Ray Data pass); yield the actors'
        output batches (``row``, ``engine``, ``v0``...) as they arrive, in any order. ``blocks``:
        row positions of each input block (default: ``rows_per_batch`` consecutive rows)."""
        ray = self._connect()
        import pyarrow as pa

        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = self.progress
        ctx.print_on_execution_start = self.progress
        if blocks is None:
            blocks = [rows[i: i + self.rows_per_batch] for i in range(0, len(rows), self.rows_per_batch)]
        tables = [pa.table({"row": b, **{name: [col[i] for i in b] for name, col in columns.items()}})
                  for b in blocks if len(b)]
        if not tables:
            return
        actors, gpus = self._pool(ray)
        n_blocks = len(tables)
        ds = ray.data.from_arrow(tables)
        del tables  # the object store holds them now
        ds = ds.map_batches(
            _EngineActor, batch_size=None, batch_format="numpy",
            fn_constructor_kwargs={"model": self.model, "engine_kwargs": self.engine_kwargs, "method": method,
                                   "kwargs": kwargs, "digest": digest},
            compute=ray.data.ActorPoolStrategy(size=min(actors, n_blocks)), num_cpus=self.num_cpus, num_gpus=gpus)
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")

    def _collect(self, method: str, kwargs: dict, columns: dict[str, Sequence[str]], n: int,
                 out: dict[str, np.ndarray]) -> None:
        """Run ``method`` on all n rows and scatter output column ``v{i}`` into ``out[v{i}]`` by row."""
        seen = np.zeros(n, dtype=bool)
        self.engine_seconds = 0.0
        for batch in self._run(method, kwargs, np.arange(n), columns):
            self.engine_seconds += float(batch["seconds"].sum())
            rows = batch["row"]
            for key, arr in out.items():
                arr[rows] = batch[key]
            seen[rows] = True
        if not seen.all():
            raise RuntimeError(f"the Ray backend returned {int(seen.sum())} of {n} rows")

    def hidden_states(self, texts: Sequence[str], layers: Sequence[Layer] | Layer = -2,
                      pooling: Pooling = "last") -> dict[Layer, np.ndarray]:
        """Pooled hidden states ``{layer: (n, d) float32}`` (see :meth:`ForwardEngine.hidden_states`)."""
        texts = check_texts(texts)
        check_pooling(pooling)
        layers = [layers] if isinstance(layers, (int, np.integer, str)) else list(layers)
        if not layers:
            raise ValueError("layers is empty")
        for lay in layers:
            if not isinstance(lay, str):
                self.resolve_layer(lay)
        out = {f"v{i}": np.empty((len(texts), self.hidden_size), dtype=np.float32) for i in range(len(layers))}
        self._collect("hidden_states", {"layers": layers, "pooling": pooling}, {"text": texts}, len(texts), out)
        return {lay: out[f"v{i}"] for i, lay in enumerate(layers)}

    def next_token_logprobs(self, texts: Sequence[str], token_ids: Sequence[int | str] | None = None) -> np.ndarray:
        """Next-token log-probabilities ``(n, len(token_ids))`` or ``(n, vocab)`` float32."""
        texts = check_texts(texts)
        width = self.config.vocab_size if token_ids is None else len(token_ids)
        out = {"v0": np.empty((len(texts), width), dtype=np.float32)}
        ids = None if token_ids is None else list(token_ids)
        self._collect("next_token_logprobs", {"token_ids": ids}, {"text": texts}, len(texts), out)
        return out["v0"]

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str],
                              reduce: str = "sum") -> np.ndarray:
        """Log-probability of each continuation after its prompt, ``(n,)`` float32."""
        prompts = check_texts(prompts, "prompts")
        continuations = check_texts(continuations, "continuations")
        if len(prompts) != len(continuations):
            raise ValueError(f"prompts and continuations differ in length: {len(prompts)} vs {len(continuations)}")
        out = {"v0": np.empty(len(prompts), dtype=np.float32)}
        self._collect("continuation_logprobs", {"reduce": reduce}, {"text": prompts, "text2": continuations},
                      len(prompts), out)
        return out["v0"]

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 64, do_sample: bool = False,
                 temperature: float = 1.0, seed: int = 0, **generate_kwargs) -> list[str]:
        """Continue each prompt (see :meth:`ForwardEngine.generate`). Greedy decoding gives the
        in-process texts; sampled texts are seeded per Ray batch, so they differ from in-process ones."""
        prompts = check_texts(prompts, "prompts")
        out = {"v0": np.empty(len(prompts), dtype=object)}
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, temperature=temperature, seed=seed,
                      **generate_kwargs)
        self._collect("generate", kwargs, {"text": prompts}, len(prompts), out)
        return [str(t) for t in out["v0"]]

    # ------------------------------------------------------------------ resumable runs to Parquet
    def write_embeddings(self, texts: Sequence[str], output_dir: str | os.PathLike, *, ids=None, layer: Layer = -2,
                         pooling: Pooling = "last", shard_size: int = 4096) -> ShardedOutput:
        """Pooled hidden states of ``layer`` for each text, streamed to Parquet shards (column
        ``embedding``) in ``output_dir``; resumes a run already there. ``ids``: distinct ints or
        strings kept beside each row (default: the row positions)."""
        check_pooling(pooling)
        if not isinstance(layer, str):
            self.resolve_layer(layer)
        return self._write("hidden_states", {"layers": [layer], "pooling": pooling}, "embedding", texts,
                           output_dir, ids, shard_size)

    def write_logprobs(self, texts: Sequence[str], output_dir: str | os.PathLike, token_ids: Sequence[int | str], *,
                       ids=None, shard_size: int = 4096) -> ShardedOutput:
        """Next-token log-probabilities of ``token_ids`` after each text, streamed to Parquet shards
        (column ``logprobs``, one value per token id) in ``output_dir``; resumes a run already there."""
        if isinstance(token_ids, str) or not len(token_ids):
            raise ValueError(f"token_ids must be a non-empty list of ids or single-token strings, got {token_ids!r}")
        return self._write("next_token_logprobs", {"token_ids": list(token_ids)}, "logprobs", texts, output_dir,
                           ids, shard_size)

    def _write(self, method: str, kwargs: dict, column: str, texts, output_dir, ids, shard_size: int) -> ShardedOutput:
        import pyarrow as pa
        import pyarrow.parquet as pq

        texts = check_texts(texts)
        if not (isinstance(shard_size, int) and shard_size >= 1):
            raise ValueError(f"shard_size must be a positive int, got {shard_size!r}")
        ids = _check_ids(ids, len(texts))
        path = Path(output_dir)
        path.mkdir(parents=True, exist_ok=True)
        request = {"method": method, "kwargs": kwargs, "column": column, "model": self.model,
                   "dtype": str(self.engine_kwargs["dtype"]), "max_length": self.engine_kwargs["max_length"],
                   "n_rows": len(texts), "shard_size": shard_size}
        manifest = _read_manifest(path)
        if manifest is None:
            manifest = {"format": _FORMAT, "request": request, "engine": None, "shards": {}}
        elif manifest["request"] != request:
            diff = sorted(k for k in request if manifest["request"].get(k) != request[k])
            raise ValueError(f"{path} holds a run with another configuration (differs in {', '.join(diff)}); "
                             "pass another output_dir, or remove that folder to start again")
        n_shards = math.ceil(len(texts) / shard_size)
        spans = [range(k * shard_size, min(len(texts), (k + 1) * shard_size)) for k in range(n_shards)]
        digests = [_inputs_digest([ids[i] for i in s], [texts[i] for i in s]) for s in spans]
        todo, reused = [], []
        for k, digest in enumerate(digests):
            entry = manifest["shards"].get(str(k))
            file = path / _shard_name(k)
            if entry is None:
                problem = "is not in the manifest (an interrupted run)" if file.exists() else None
            elif entry["inputs_sha256"] != digest:
                problem = "was written for other inputs"
            elif not file.is_file():
                problem = "is missing"
            elif file_sha256(file) != entry["sha256"]:
                problem = "does not match its sha256 in the manifest (damaged or edited)"
            else:
                reused.append(k)
                continue
            if problem is not None:
                warnings.warn(f"shard {file} {problem}: computing it again", ShardWarning, stacklevel=3)
            file.unlink(missing_ok=True)
            manifest["shards"].pop(str(k), None)
            todo.append(k)
        atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=1))
        blocks = [np.asarray(spans[k][i: i + self.rows_per_batch], dtype=np.int64)
                  for k in todo for i in range(0, len(spans[k]), self.rows_per_batch)]
        pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        computed = []
        rows = np.concatenate(blocks) if blocks else np.empty(0, dtype=np.int64)
        self.engine_seconds = 0.0
        for batch in self._run(method, kwargs, rows, {"text": texts}, blocks=blocks, digest=True):
            self.engine_seconds += float(batch["seconds"].sum())
            for digest in set(batch["engine"].tolist()):
                if manifest["engine"] is None:
                    manifest["engine"] = digest
                elif digest != manifest["engine"]:
                    raise ValueError(f"an actor's model, tokenizer or dtype differs from the one this run in {path} "
                                     "started with (mixed GPU and CPU actors, or changed weights); pass another "
                                     "output_dir, or remove that folder to start again")
            shard_of = batch["row"] // shard_size
            for k in np.unique(shard_of).tolist():
                sel = shard_of == k
                pending.setdefault(k, []).append((batch["row"][sel], np.asarray(batch["v0"][sel], dtype=np.float32)))
                if sum(len(r) for r, _ in pending[k]) < len(spans[k]):
                    continue
                got = pending.pop(k)
                order_rows = np.concatenate([r for r, _ in got])
                values = np.concatenate([v for _, v in got])[np.argsort(order_rows)]
                order_rows = np.sort(order_rows)
                table = pa.table({"id": pa.array([ids[i] for i in order_rows]), "row": pa.array(order_rows),
                                  column: pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])})
                file = path / _shard_name(k)
                atomic_write(file, lambda fh, t=table: pq.write_table(t, fh))
                manifest["shards"][str(k)] = {"file": file.name, "rows": len(order_rows),
                                              "inputs_sha256": digests[k], "sha256": file_sha256(file)}
                atomic_write_text(path / MANIFEST, json.dumps(manifest, indent=1))
                computed.append(k)
        if len(computed) != len(todo):
            raise RuntimeError(f"the Ray backend completed {len(computed)} of {len(todo)} shards")
        return ShardedOutput(path, manifest, computed=tuple(sorted(computed)), reused=tuple(reused))
