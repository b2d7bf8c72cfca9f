"""One batched forward engine for every pass through a model: embeddings, audits, probes.

Texts are tokenised once (:meth:`ForwardEngine.tokenize`), sorted by length (longest first)
and cut into batches under a token budget so padding stays small (:mod:`plural_kit._batching`);
padding (left or right) and position ids are made in one place (:meth:`ForwardEngine._collate`);
the forward pass stops after the deepest point that is asked for (the LM head is never
computed for hidden states); everything runs under ``torch.inference_mode``; an
out-of-memory error halves the batch and retries.

Points of the residual stream (read by :meth:`ForwardEngine.hidden_states`, edited by
:meth:`ForwardEngine.hooks`), as ints in Hugging Face ``output_hidden_states`` numbering or
by TransformerLens-style names (blocks counted from 0 in the names):

* ``0`` or ``"blocks.0.hook_resid_pre"``: the embeddings, the input of the first block;
* ``i`` (1..n_layers-1) or ``"blocks.{i-1}.hook_resid_post"``: the output of block ``i``;
* ``"blocks.{n_layers-1}.hook_resid_post"``: the output of the last block, *before* the final norm;
* ``"ln_final.hook_normalized"`` (:data:`FINAL_NORM`): the output of the final norm, the
  model's last hidden state.

The int ``n_layers`` (= -1) keeps each method's convention: :meth:`~ForwardEngine.hidden_states`
reads it after the final norm (Hugging Face's last hidden state, :data:`FINAL_NORM`),
:meth:`~ForwardEngine.hooks` edits it before (the last block's ``hook_resid_post``, so that a
hook at every layer edits every block's output). Name the point where the difference
matters. Negative ints count from the end (-1 = ``n_layers``, -2 = output of the penultimate block).
Models without a final norm (BERT) have the same tensor at both.
"""
from __future__ import annotations

import contextlib
import inspect
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from plural_kit._batching import OutOfMemoryBackoff, length_sorted_batches, token_budget
from plural_kit._hooks import (
    FINAL_NORM,
    HookFn,
    HookRegistry,
    Point,
    StopForward,
    capture_points,
    check_hook_fns,
    first_tensor,
)
from plural_kit.device import get_device, get_dtype
from plural_kit.models import is_causal_lm, load_model
from plural_kit.packed import PackedDecoder, packed_support

logger = logging.getLogger(__name__)

__all__ = ["FINAL_NORM", "Engine", "ForwardEngine", "chat_format", "check_pooling", "check_texts", "decoder_blocks",
           "tokenize_texts"]

Pooling = str | int
#: A point of the residual stream as callers name it: an int layer or a TransformerLens-style name.
Layer = int | str

_POINT_NAME = re.compile(r"^blocks\.(\d+)\.hook_resid_(pre|post)$")

#: ``packed="auto"`` packs only when the fused weight copies of the packed path take at most this
#: many bytes (memory: the copies come on top of the model's own weights).
PACKED_AUTO_MAX_BYTES = 2**28


def check_texts(texts, name: str = "texts") -> list[str]:
    """Return ``texts`` as a non-empty list of strings or raise a ``TypeError``/``ValueError`` naming the problem."""
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of strings, got a single string; wrap it: [{texts[:40]!r}]")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise ValueError(f"{name} is empty: pass at least one string")
    bad = [(i, type(t).__name__) for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise TypeError(f"{name} must all be strings; {len(bad)} are not, first at index {bad[0][0]} "
                        f"({bad[0][1]})")
    return texts


def chat_format(tokenizer, prompts, *, system: str | None = None, add_generation_prompt: bool = True,
                model_name: str = "this model") -> list[str]:
    """Format user prompts (strings) or whole conversations (lists of ``{"role", "content"}``) as chat text
    with ``tokenizer``'s template (every engine formats prompts here).

    ``system`` is prepended as a system message when given (otherwise the template's default, if
    any). Returns one string per prompt, ready for an engine's other methods; ``model_name`` names
    the model in the error for a tokenizer without a template.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"the tokenizer of {model_name} has no chat template; pass plain text")
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings or of message lists, got a single string")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("prompts is empty")
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            messages = [{"role": "user", "content": p}]
        elif isinstance(p, Sequence) and all(isinstance(m, Mapping) and {"role", "content"} <= set(m) for m in p):
            messages = list(p)
        else:
            raise TypeError(f"prompts[{i}] must be a string or a list of {{'role', 'content'}} dicts, "
                            f"got {p!r:.80}")
        if system is not None:
            messages = [{"role": "system", "content": system}, *messages]
        out.append(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt))
    return out


def tokenize_texts(tokenizer, texts: Sequence[str], *, max_length: int, is_causal: bool = True) -> list[list[int]]:
    """Token ids of each text (special tokens as ``tokenizer`` adds them, unless the text already
    starts with the BOS token, e.g. chat-formatted text), truncated to ``max_length`` (a causal
    model keeps the end, an encoder the start and its last token). Every engine tokenises here."""
    texts = check_texts(texts)
    bos = getattr(tokenizer, "bos_token", None)
    ids: list[list[int] | None] = [None] * len(texts)
    for add in (True, False):
        sel = [i for i, t in enumerate(texts) if (not add) == bool(bos and t.startswith(bos))]
        if sel:
            enc = tokenizer([texts[i] for i in sel], add_special_tokens=add, truncation=False)["input_ids"]
            for i, e in zip(sel, enc):
                ids[i] = list(e)
    n_long = 0
    for i, e in enumerate(ids):
        if len(e) > max_length:
            n_long += 1
            ids[i] = e[-max_length:] if is_causal else e[: max_length - 1] + e[-1:]
        elif not e:
            raise ValueError(f"texts[{i}] is empty after tokenisation; pass non-empty text")
    if n_long:
        logger.warning("%d of %d texts are longer than max_length=%d tokens and were truncated (kept the %s)",
                       n_long, len(ids), max_length, "end" if is_causal else "start")
    return ids  # type: ignore[return-value]


def continuation_ids(engine, prompts, continuations, reduce: str) -> tuple[list[list[int]], list[list[int]]]:
    """Checked ``(prompt + continuation, continuation)`` token ids of ``continuation_logprobs``, for
    any engine with ``tokenizer``, ``tokenize`` and ``max_length``: the continuation is tokenised on
    its own (no special tokens), appended to the prompt's tokens and the whole cut from the left."""
    prompts = check_texts(prompts, "prompts")
    continuations = check_texts(continuations, "continuations")
    if len(prompts) != len(continuations):
        raise ValueError(f"prompts and continuations differ in length: {len(prompts)} vs {len(continuations)}")
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    conts = [list(c) for c in engine.tokenizer(continuations, add_special_tokens=False)["input_ids"]]
    for i, c in enumerate(conts):
        if not c or len(c) >= engine.max_length:
            raise ValueError(f"continuations[{i}] has {len(c)} tokens; it needs 1..{engine.max_length - 1}")
    return [(p + c)[-engine.max_length:] for p, c in zip(engine.tokenize(prompts), conts)], conts


def check_pooling(pooling) -> None:
    """Raise ``ValueError`` unless ``pooling`` is ``"last"``, ``"mean"`` or an int token offset."""
    is_int = isinstance(pooling, (int, np.integer)) and not isinstance(pooling, bool)
    if not (is_int or pooling in ("last", "mean")):
        raise ValueError(f"pooling must be 'last', 'mean' or an int token offset (-1 = last), got {pooling!r}")


def decoder_blocks(model: nn.Module) -> nn.ModuleList:
    """The model's list of transformer blocks (the ``nn.ModuleList`` of ``config.num_hidden_layers`` modules)."""
    n = model.config.num_hidden_layers
    for _, module in model.base_model.named_modules():
        if isinstance(module, nn.ModuleList) and len(module) == n:
            return module
    raise ValueError(f"could not find the {n} transformer blocks of {type(model).__name__}")


@runtime_checkable
class Engine(Protocol):
    """The engine contract that audits, probes and embeddings accept (as ``engine``).

    :class:`ForwardEngine` runs it in-process; a cluster or serving backend, or a fake in a
    test, is another implementation of the same methods, not a second engine. ``isinstance``
    checks that the attributes and methods exist (not their signatures). Layers and hook points
    are named as in the module docstring; ``tokenizer`` needs ``encode(text,
    add_special_tokens=False)`` (the answer-option scorer, :mod:`plural_kit.scoring`, resolves
    label tokens with it).
    """

    n_layers: int
    hidden_size: int
    tokenizer: object

    def resolve_layer(self, layer: int) -> int: ...

    def apply_chat_template(self, prompts, system: str | None = None,
                            add_generation_prompt: bool = True) -> list[str]: ...

    def hidden_states(self, texts: Sequence[str], layers: Sequence[Layer] | Layer = -2,
                      pooling: Pooling = "last") -> dict[Layer, np.ndarray]: ...

    def next_token_logprobs(self, texts: Sequence[str],
                            token_ids: Sequence[int | str] | None = None) -> np.ndarray: ...

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str]) -> np.ndarray: ...

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 64, do_sample: bool = False,
                 **kwargs) -> list[str]: ...

    def hooks(self, fns: Mapping[Layer, HookFn]) -> contextlib.AbstractContextManager: ...


class ForwardEngine:
    """Batched, length-sorted forward passes through one model.

    Parameters
    ----------
    model, tokenizer
        A loaded Hugging Face model and its tokenizer, or a model name/path (then
        ``tokenizer=None`` and the model is loaded with :func:`plural_kit.models.load_model`).
        A loaded model is moved to ``device`` and cast to ``dtype`` in place.
    device, dtype
        ``"auto"``: see :func:`plural_kit.device.get_device` / :func:`~plural_kit.device.get_dtype`
        (bf16 on CPUs with bf16 matrix units and on GPUs).
    batch_size
        ``"auto"``: batches under a token budget (padded tokens per batch) sized to the device;
        an int: that many texts per batch. Halved on out-of-memory.
    max_length
        Longer texts are truncated: causal LMs keep the last ``max_length`` tokens (the end is
        what the next token and last-token pooling read), encoders keep the first ones.
    padding_side
        ``None``: the tokenizer's. Only :meth:`hidden_states` uses it (pooling is right for
        both); log-probs and generation always pad on the left.
    progress
        Show a ``tqdm.auto`` bar.
    packed
        Hidden states of Llama-family decoders (Llama, Mistral, Qwen2, SmolLM2) on packed,
        padding-free tokens with fused projections (:mod:`plural_kit.packed`): same values up to
        rounding, ~1.3-1.5x faster on CPU. ``"auto"``: on CPU, when the model is supported, no
        hooks but this engine's are registered on it and the fused weight copies take at most
        :data:`PACKED_AUTO_MAX_BYTES` (256 MiB: the copies are about half the model's weights,
        0.15 GiB for SmolLM2-135M in bf16 but 0.29 GiB in fp32, which a 2 GB Binder cannot
        spare) (on GPUs the model's own forward is used: the packed path is untested there);
        ``True``: on any device (an unsupported model raises ``ValueError``); ``False``: never.
    compile
        ``torch.compile`` the packed block function: ~1.3x faster on CPU after a one-off
        ~10-15 s (cached on disk across processes), so worth it from ~100k tokens; falls back
        to eager with a warning if compiling fails (e.g. no C++ compiler).
    """

    def __init__(self, model, tokenizer=None, *, device: str | torch.device = "auto",
                 dtype: str | torch.dtype = "auto", batch_size: int | str = "auto", max_length: int = 512,
                 padding_side: str | None = None, progress: bool = True, packed: bool | str = "auto",
                 compile: bool = False):
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            name = str(model)
            model, loaded_tok = load_model(name, device=device, dtype=dtype)
            tokenizer = tokenizer or loaded_tok
        if tokenizer is None:
            raise TypeError("a loaded model needs its tokenizer: ForwardEngine(model, tokenizer)")
        if not (batch_size == "auto" or (isinstance(batch_size, int) and batch_size >= 1)):
            raise ValueError(f"batch_size must be 'auto' or a positive int, got {batch_size!r}")
        if not (isinstance(max_length, int) and max_length >= 1):
            raise ValueError(f"max_length must be a positive int, got {max_length!r}")
        if padding_side not in (None, "left", "right"):
            raise ValueError(f"padding_side must be None, 'left' or 'right', got {padding_side!r}")
        if packed not in ("auto", True, False):
            raise ValueError(f"packed must be 'auto', True or False, got {packed!r}")
        self.device = get_device(device)
        self.dtype = get_dtype(dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        max_pos = getattr(model.config, "max_position_embeddings", None)
        self.max_length = min(max_length, max_pos) if isinstance(max_pos, int) and max_pos > 0 else max_length
        self.padding_side = padding_side or getattr(tokenizer, "padding_side", "right") or "right"
        self.progress = progress
        self.is_causal = is_causal_lm(model.config)
        self.blocks = decoder_blocks(model)
        self.n_layers = len(self.blocks)
        self.hidden_size = model.config.hidden_size
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = int(pad if pad is not None else 0)
        base_params = inspect.signature(model.base_model.forward).parameters
        self._pass_position_ids = "position_ids" in base_params
        # Positions count real tokens only (left padding then matches no padding). RoBERTa-style
        # encoders (RoBERTa, XLM-R, CamemBERT, MPNet) number them from padding_idx + 1.
        embeddings = getattr(model.base_model, "embeddings", None)
        pad_idx = getattr(embeddings, "padding_idx", None) if not self.is_causal else None
        self._position_offset = 0 if pad_idx is None else int(pad_idx) + 1
        self._logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._backoff = OutOfMemoryBackoff()  # the batch-size cap that out-of-memory errors set
        self.packed, self.compile = packed, bool(compile)
        if packed is True and (reason := self._packed_reason()):
            raise ValueError(f"packed=True, but {type(model).__name__} is not supported: {reason}")
        self._packed_decoder: PackedDecoder | None = None
        self._packed_key: tuple | None = None
        self._hooks = HookRegistry(self.model, self.blocks)  # the edits of the active :meth:`hooks`

    # ------------------------------------------------------------------ text preparation
    def apply_chat_template(self, prompts, system: str | None = None, add_generation_prompt: bool = True) -> list[str]:
        """Format user prompts (strings) or whole conversations (lists of ``{"role", "content"}``) as chat text
        (:func:`chat_format` with this engine's tokenizer)."""
        return chat_format(self.tokenizer, prompts, system=system, add_generation_prompt=add_generation_prompt,
                           model_name=type(self.model).__name__)

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, truncated to ``max_length`` (:func:`tokenize_texts`)."""
        return tokenize_texts(self.tokenizer, texts, max_length=self.max_length, is_causal=self.is_causal)

    # ------------------------------------------------------------------ batching
    def _token_budget(self, packed: bool = False) -> tuple[float, int]:
        """(max padded tokens, max texts) per batch (``packed``: for the packed path), under the
        out-of-memory cap; see :func:`plural_kit._batching.token_budget`."""
        inter = getattr(self.model.config, "intermediate_size", 4 * self.hidden_size)
        budget, limit = token_budget(self.batch_size, self.device, self.dtype, self.hidden_size, inter, packed)
        return budget, self._backoff.limit(limit)

    def _collate(self, seqs: list[list[int]], side: str) -> dict[str, torch.Tensor]:
        """Pad ``seqs`` on ``side``; return input_ids, attention_mask and (where the model takes them)
        position_ids counting non-pad tokens only, so left padding gives the same positions as none."""
        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            span = slice(width - len(s), width) if side == "left" else slice(0, len(s))
            ids[row, span] = torch.as_tensor(s, dtype=torch.long)
            mask[row, span] = 1
        batch = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        if self._pass_position_ids:
            batch["position_ids"] = ((mask.cumsum(1) - 1).clamp(min=0) + self._position_offset).to(self.device)
        return batch

    def _batches(self, ids: list[list[int]], step: Callable[[dict, np.ndarray], object], side: str, desc: str,
                 extra_tokens: int = 0, progress: bool | None = None, packed: bool = False
                 ) -> Iterator[tuple[np.ndarray, object]]:
        """Run ``step(batch, indices)`` over length-sorted batches; yield ``(indices into ids, step output)``.

        ``batch`` is the padded tensors of :meth:`_collate`, or for the ``packed`` path the list of
        token-id lists (with its own token budget). Out-of-memory halves the batch (down to one
        text) and retries (:func:`plural_kit._batching.length_sorted_batches`).
        """
        collate = (lambda seqs: seqs) if packed else (lambda seqs: self._collate(seqs, side))
        return length_sorted_batches(ids, step, collate=collate, budget=lambda: self._token_budget(packed),
                                     backoff=self._backoff, device=self.device, desc=desc,
                                     extra_tokens=extra_tokens, progress=self.progress if progress is None else progress)

    # ------------------------------------------------------------------ hidden states
    def _foreign_hooks(self, count_dispatch: bool) -> bool:
        """Whether a hook other than this engine's :meth:`hooks` could change or read this model's
        pass (see :meth:`plural_kit._hooks.HookRegistry.foreign`)."""
        return self._hooks.foreign(count_dispatch)

    def has_hooks(self) -> bool:
        """Whether any hook that may edit the model's hidden states is registered on it (this
        engine's :meth:`hooks` or another's)."""
        return bool(self._hooks.active) or self._foreign_hooks(count_dispatch=False)

    def _packed_reason(self) -> str | None:
        """Why the packed path cannot reproduce this model now (``None``: it can)."""
        if not self.is_causal:
            return "an encoder, not a decoder"
        return packed_support(self.model, self.blocks, self.max_length)

    def packs(self) -> bool:
        """Whether :meth:`hidden_states` takes the packed path for this model and device, hooks and
        memory aside (see the ``packed`` parameter)."""
        if self.packed is False or self._packed_reason() is not None:
            return False
        return self.packed is True or self.device.type == "cpu"

    def weights_key(self) -> tuple:
        """Changes when any parameter of the model is replaced, moved, cast or changed in place
        (not through ``.data``): a cheap test for "are these still the same weights"."""
        return tuple((id(p), p.data_ptr(), p._version, p.dtype, p.device) for p in self.model.parameters())

    def packed_decoder(self) -> PackedDecoder | None:
        """The :class:`~plural_kit.packed.PackedDecoder` that :meth:`hidden_states` uses now, or
        ``None`` when it uses the model itself (see the ``packed`` parameter; hooks registered on
        the model by anything but :meth:`hooks` also turn it off). Rebuilt when
        :meth:`weights_key` changes (edits through ``.data`` are not seen: build a new engine
        after those)."""
        if not self.packs() or self._foreign_hooks(count_dispatch=True):
            return None
        key = self.weights_key()  # a swapped-in layer type is caught by packs() above
        if key != self._packed_key:
            self._packed_decoder, self._packed_key = None, key  # a "too big" decision is kept too
            fused = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
            extra = sum(lin.weight.nbytes for b in self.blocks for part in (b.self_attn, b.mlp)
                        for name, lin in part.named_children() if name in fused)
            if self.packed == "auto" and extra > PACKED_AUTO_MAX_BYTES:
                logger.info("not packing: the fused weights would take %.0f MiB (limit %.0f MiB)", extra / 2**20,
                            PACKED_AUTO_MAX_BYTES / 2**20)
                return None
            self._packed_decoder = PackedDecoder(self.model, self.blocks, compile=self.compile)
        return self._packed_decoder

    def resolve_layer(self, layer: int) -> int:
        """A layer index (negative counts from the end) as ``0..n_layers``; ``ValueError`` outside that."""
        n = self.n_layers
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not -(n + 1) <= layer <= n:
            raise ValueError(f"layer {layer!r} is out of range: {type(self.model).__name__} has {n} blocks, "
                             f"so layers outside 0..{n} (0 = embeddings) or -{n + 1}..-1 do not exist")
        return int(layer) % (n + 1)

    def resolve_point(self, layer: Layer, *, hook: bool = False) -> Point:
        """The point of the residual stream that ``layer`` names: an int ``0..n_layers`` (after
        block i, before any final norm) or :data:`FINAL_NORM`. The int ``n_layers`` (-1) is
        :data:`FINAL_NORM` for :meth:`hidden_states` and the last block's output for
        :meth:`hooks` (``hook=True``); see the module docstring."""
        if isinstance(layer, str):
            if layer == FINAL_NORM:
                return FINAL_NORM
            m = _POINT_NAME.match(layer)
            if m is None or int(m.group(1)) >= self.n_layers:
                raise ValueError(f"unknown point {layer!r}: use an int layer, 'blocks.{{i}}.hook_resid_pre' or "
                                 f"'blocks.{{i}}.hook_resid_post' with i in 0..{self.n_layers - 1}, "
                                 f"or {FINAL_NORM!r}")
            return int(m.group(1)) + (m.group(2) == "post")
        lay = self.resolve_layer(layer)
        return FINAL_NORM if lay == self.n_layers and not hook else lay

    @staticmethod
    def _pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: Pooling) -> torch.Tensor:
        """(batch, seq, d) -> (batch, d) float32, reading only non-pad tokens (either padding side)."""
        if pooling == "mean":
            m = mask.unsqueeze(-1).to(hidden.dtype)
            return ((hidden * m).float().sum(1) / mask.sum(1, keepdim=True).float())
        offset = -1 if pooling == "last" else int(pooling)
        lens = mask.sum(1)
        rank = mask.cumsum(1)  # 1..len at the non-pad tokens
        target = (lens + offset + 1) if offset < 0 else torch.full_like(lens, offset + 1)
        target = torch.minimum(target.clamp(min=1), lens)
        pos = ((rank == target.unsqueeze(1)) & (mask == 1)).int().argmax(1)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), pos].float()

    def iter_hidden_states(self, texts: Sequence[str], layers: Sequence[Layer] | Layer, pooling: Pooling = "last",
                           progress: bool | None = None) -> Iterator[tuple[np.ndarray, dict[Layer, np.ndarray]]]:
        """Like :meth:`hidden_states`, batch by batch (longest texts first): yields
        ``(indices into texts, {layer: (batch, d) float32})``. Lets callers save partial results."""
        texts = check_texts(texts)
        check_pooling(pooling)
        layers = [layers] if isinstance(layers, (int, np.integer, str)) else list(layers)
        if not layers:
            raise ValueError("layers is empty")
        resolved = {lay: self.resolve_point(lay) for lay in layers}
        wanted = list(dict.fromkeys(resolved.values()))
        ids = self.tokenize(texts)
        packed = self.packed_decoder()
        if packed is not None:
            def packed_step(seqs, idx):
                hidden, mask = packed.hidden_states(seqs, wanted, hooks=self._hooks.active,
                                                    padding_side=self.padding_side)
                got = {point: self._pool(h, mask, pooling) for point, h in hidden.items()}
                return {lay: got[r].cpu().numpy() for lay, r in resolved.items()}

            yield from self._batches(ids, packed_step, self.padding_side, desc="hidden states",
                                     progress=progress, packed=True)
            return

        @torch.inference_mode()
        def step(batch, idx):
            mask = batch["attention_mask"]
            got: dict[Point, torch.Tensor] = {}

            def record(point, hidden):
                got[point] = self._pool(hidden, mask, pooling)

            with capture_points(self.blocks, wanted, record):
                try:
                    out = self.model.base_model(**batch, use_cache=False) if self.is_causal else \
                        self.model.base_model(**batch)
                    record(FINAL_NORM, first_tensor(out))  # only reached when the final norm is wanted
                except StopForward:
                    pass
            return {lay: got[r].cpu().numpy() for lay, r in resolved.items()}

        yield from self._batches(ids, step, self.padding_side, desc="hidden states", progress=progress)

    def hidden_states(self, texts: Sequence[str], layers: Sequence[Layer] | Layer = -2,
                      pooling: Pooling = "last") -> dict[Layer, np.ndarray]:
        """Pooled hidden states: ``{layer: (n_texts, d) float32}`` keyed by the layers as given.

        ``layers``: ints (0 = embeddings, i = output of block i, ``n_layers`` or -1 = after the
        final norm) or point names (``"blocks.{i}.hook_resid_post"``, :data:`FINAL_NORM`; see
        the module docstring).

        ``pooling``: ``"last"`` (last non-pad token), ``"mean"`` (over non-pad tokens), or an
        int token position among the non-pad tokens: negative from the end (-1 = last),
        non-negative from the start (0 = first, e.g. BERT's [CLS]); clamped to the text.
        The forward pass stops at the deepest layer asked for.
        """
        texts = check_texts(texts)
        layers = [layers] if isinstance(layers, (int, np.integer, str)) else list(layers)
        out = {lay: np.empty((len(texts), self.hidden_size), dtype=np.float32) for lay in layers}
        for idx, res in self.iter_hidden_states(texts, layers, pooling):
            for lay in layers:
                out[lay][idx] = res[lay]
        return out

    # ------------------------------------------------------------------ next-token log-probs, generation
    def _require_causal(self, what: str) -> None:
        if not self.is_causal:
            raise TypeError(f"{what} needs a causal language model; {type(self.model).__name__} is an encoder")

    def token_ids(self, tokens: Sequence[int | str]) -> list[int]:
        """Vocabulary ids for ints or single-token strings (e.g. ``[" A", " B"]``); a string that
        is not exactly one token raises ``ValueError``."""
        out = []
        vocab = self.model.config.vocab_size
        for t in tokens:
            if isinstance(t, str):
                enc = self.tokenizer(t, add_special_tokens=False)["input_ids"]
                if len(enc) != 1:
                    pieces = self.tokenizer.convert_ids_to_tokens(enc)
                    raise ValueError(f"{t!r} is {len(enc)} tokens, not one: {pieces}")
                t = enc[0]
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < vocab:
                raise ValueError(f"token id {t!r} is not an int in [0, {vocab})")
            out.append(int(t))
        return out

    def next_token_logprobs(self, texts: Sequence[str], token_ids: Sequence[int | str] | None = None) -> np.ndarray:
        """Log-softmax over the vocabulary of the token after each text, float32.

        Returns ``(n, len(token_ids))`` (ids or single-token strings) or ``(n, vocab)``.
        Only the last position goes through the LM head.
        """
        self._require_causal("next_token_logprobs")
        texts = check_texts(texts)
        cols = None if token_ids is None else torch.as_tensor(self.token_ids(token_ids), dtype=torch.long)
        ids = self.tokenize(texts)

        @torch.inference_mode()
        def step(batch, idx):
            if self._logits_to_keep:
                logits = self.model(**batch, use_cache=False, logits_to_keep=1).logits[:, -1]
            else:
                logits = self.model(**batch, use_cache=False).logits[:, -1]
            logp = torch.log_softmax(logits.float(), dim=-1)
            return (logp if cols is None else logp[:, cols.to(logp.device)]).cpu().numpy()

        width = self.model.config.vocab_size if cols is None else len(cols)
        out = np.empty((len(texts), width), dtype=np.float32)
        for idx, res in self._batches(ids, step, "left", desc="next-token log-probs"):
            out[idx] = res[:, :width]
        return out

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str],
                              reduce: str = "sum") -> np.ndarray:
        """Log-probability of each continuation after its prompt: ``(n,)`` float32.

        The continuation is tokenised on its own (no special tokens) and appended to the
        prompt's tokens, so put any leading space in the continuation (``" Paris"``).
        ``reduce``: ``"sum"`` (total log-prob) or ``"mean"`` (per token). Prompts are cut from
        the left to fit ``max_length``; the LM head runs on the continuation positions only.
        """
        self._require_causal("continuation_logprobs")
        ids, conts = continuation_ids(self, prompts, continuations, reduce)
        n_cont = np.array([len(c) for c in conts])

        @torch.inference_mode()
        def step(batch, idx):
            k = int(n_cont[idx].max())
            kwargs = {"logits_to_keep": k + 1} if self._logits_to_keep else {}
            logits = self.model(**batch, use_cache=False, **kwargs).logits[:, -(k + 1):-1].float()
            logp = torch.log_softmax(logits, dim=-1)  # (batch, k, vocab): row r predicts tokens -k..-1
            targets = batch["input_ids"][:, -k:]
            tok_lp = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            lens = torch.as_tensor(n_cont[idx], device=tok_lp.device)
            keep = torch.arange(k, device=tok_lp.device).unsqueeze(0) >= (k - lens).unsqueeze(1)
            total = (tok_lp * keep).sum(1)
            return (total / lens if reduce == "mean" else total).cpu().numpy()

        out = np.empty(len(prompts), dtype=np.float32)
        for idx, res in self._batches(ids, step, "left", desc="continuation log-probs"):
            out[idx] = res
        return out

    def generate(self, prompts: Sequence[str], max_new_tokens: int = 64, do_sample: bool = False,
                 temperature: float = 1.0, seed: int = 0, **generate_kwargs) -> list[str]:
        """Continue each prompt (already chat-formatted if wanted, see :meth:`apply_chat_template`).

        Batched with left padding; sampling is seeded (``seed``) without touching the global
        RNG. Extra keyword arguments go to ``model.generate`` (e.g. ``top_p``). Returns the
        new text only, special tokens removed.
        """
        self._require_causal("generate")
        prompts = check_texts(prompts, "prompts")
        if not (isinstance(max_new_tokens, int) and max_new_tokens >= 1):
            raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        ids = self.tokenize(prompts)
        kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample, pad_token_id=self.pad_token_id,
                      **generate_kwargs)
        if do_sample:
            if not temperature > 0:
                raise ValueError(f"temperature must be > 0 when sampling, got {temperature!r}")
            kwargs["temperature"] = temperature

        @torch.inference_mode()
        def step(batch, idx):
            batch.pop("position_ids", None)  # generate derives them from the attention mask
            out = self.model.generate(**batch, **kwargs)
            return self.tokenizer.batch_decode(out[:, batch["input_ids"].shape[1]:], skip_special_tokens=True)

        texts: list[str] = [""] * len(prompts)
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for idx, res in self._batches(ids, step, "left", desc="generate", extra_tokens=max_new_tokens):
                for i, t in zip(idx, res):
                    texts[i] = t
        return texts

    # ------------------------------------------------------------------ hooks
    @contextlib.contextmanager
    def hooks(self, fns: Mapping[Layer, HookFn]):
        """Edit the residual stream: ``{layer: fn}`` with ``fn(hidden (batch, seq, d)) -> Tensor | None``.

        ``layer`` indexes like :meth:`hidden_states` (0 = embeddings, i = output of block i), but
        the int ``n_layers`` (-1) is the last block's output *before* the final norm (the point
        ``"blocks.{n_layers-1}.hook_resid_post"``); to edit after the final norm name
        :data:`FINAL_NORM`. A returned tensor replaces the hidden state; ``None`` leaves it (e.g.
        to record it). The hooks apply to every forward pass inside the ``with`` block and are
        always removed.
        """
        check_hook_fns(fns)
        points = [(self.resolve_point(layer, hook=True), fn) for layer, fn in fns.items()]
        with self._hooks.install(points):
            yield self
