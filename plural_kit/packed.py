"""A padding-free forward pass through Llama-family decoder blocks, for hidden states.

The engine's general path runs the Hugging Face model on padded batches with an attention
mask. For decoders built like Llama (Llama, Mistral, Qwen2; SmolLM2 is one) this module runs
the same blocks with the same weights, faster, because on a CPU a small model spends as long
in the small element-wise kernels and in padding as in its matrix products:

* **packed tokens** — the texts of a batch are concatenated, so the projections and the MLP
  never see padding. Only attention puts them in a right-padded ``(batch, heads, width,
  head_dim)`` tensor, where causal masking already hides the padding from every real token:
  no mask is built and the flash-attention kernel skips the masked half;
* **fused projections** — q, k and v in one matrix product, gate and up in another (larger
  products run nearer the matmul peak); the fused copies cost memory equal to those weights;
* **fewer element-wise passes** — RMSNorm weights folded into the fused projections, the
  norm itself one reduction and one product; rotary embedding on q and k at once;
  residual adds done by the matrix products (``addmm``);
* **optional** ``torch.compile`` of the one block function that every block shares (dynamic
  shapes, so a new batch shape does not recompile), which fuses the norms, rotary embedding,
  SiLU and residual adds into a few loops. It needs a C++ compiler on CPU; if compiling fails
  the pass falls back to eager with a warning.

Outputs equal the Hugging Face forward up to floating-point rounding (tested on tiny random
Llama, Mistral and Qwen2 models). Points are those of :mod:`plural_kit._hooks`: ints ``0..n_layers``
(0 = embeddings, ``i`` = output of block ``i``, ``n_layers`` = after the last block, before the
final norm) and :data:`~plural_kit._hooks.FINAL_NORM` (after the final norm).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from plural_kit._hooks import FINAL_NORM, Point
from plural_kit.device import is_out_of_memory

__all__ = ["PackedDecoder", "packed_support"]

SUPPORTED_BLOCKS = ("LlamaDecoderLayer", "MistralDecoderLayer", "Qwen2DecoderLayer")
_LINEARS = {"self_attn": ("q_proj", "k_proj", "v_proj", "o_proj"), "mlp": ("gate_proj", "up_proj", "down_proj")}


def packed_support(model: nn.Module, blocks: Sequence[nn.Module], max_length: int) -> str | None:
    """``None`` when :class:`PackedDecoder` computes exactly what ``model`` computes for texts up to
    ``max_length`` tokens; otherwise the reason it does not (the engine then uses the model itself)."""
    cfg = model.config
    names = {type(b).__name__ for b in blocks}
    if not names <= set(SUPPORTED_BLOCKS):
        return f"blocks are {sorted(names)}, not one of {SUPPORTED_BLOCKS}"
    if not all(type(b).__module__.startswith("transformers.models.") for b in blocks):
        return "the blocks are not transformers' own classes"
    base = model.base_model
    for attr in ("embed_tokens", "rotary_emb", "norm"):
        if not hasattr(base, attr):
            return f"the base model has no {attr!r}"
    if getattr(cfg, "hidden_act", "silu") != "silu":
        return f"hidden_act is {cfg.hidden_act!r}, not 'silu'"
    if getattr(cfg, "pretraining_tp", 1) != 1:
        return "pretraining_tp > 1"
    window = getattr(cfg, "sliding_window", None)
    layer_types = set(getattr(cfg, "layer_types", None) or ["full_attention"])
    uses_window = window is not None or layer_types != {"full_attention"}
    if names == {"Qwen2DecoderLayer"}:  # Qwen2 alone switches its window with use_sliding_window
        uses_window = uses_window and getattr(cfg, "use_sliding_window", False)
    if uses_window and (window is None or window < max_length):
        return f"sliding-window attention (window {window}) shorter than max_length {max_length}"
    for b in blocks:
        for part, linears in _LINEARS.items():
            module = getattr(b, part, None)
            if module is None or not all(type(getattr(module, n, None)) is nn.Linear for n in linears):
                return f"a block's {part} lacks plain nn.Linear layers {linears} (adapters, quantised layers?)"
        attn = b.self_attn
        if hasattr(attn, "q_norm") or hasattr(attn, "k_norm"):
            return "attention has q/k norms"
        head_dim = attn.head_dim
        if abs(getattr(attn, "scaling", head_dim ** -0.5) - head_dim ** -0.5) > 1e-12:
            return "attention scaling is not head_dim ** -0.5"
        for norm in (b.input_layernorm, b.post_attention_layernorm):
            if not hasattr(norm, "variance_epsilon") or getattr(norm, "weight", None) is None:
                return f"{type(norm).__name__} is not a weighted RMSNorm"
    return None


def _fuse(linears: Sequence[nn.Linear], norm_weight: torch.Tensor) -> torch.Tensor:
    """The linears' weights stacked, with the preceding RMSNorm's weight folded in:
    W @ (g * x) = (W * g) @ x."""
    return torch.cat([lin.weight for lin in linears]) * norm_weight


def _cat_bias(linears: Sequence[nn.Linear]) -> torch.Tensor | None:
    if all(m.bias is None for m in linears):
        return None
    return torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_features) for m in linears])


def _make_block(n_heads: int, n_kv_heads: int, head_dim: int):
    """The forward of one block on packed tokens; weights come in as arguments, so all blocks
    share it (and one ``torch.compile`` serves them all). The RMSNorm weights are folded into
    the fused projections that follow them (see :class:`PackedDecoder`)."""

    def rms_scale(x: torch.Tensor, eps: float) -> torch.Tensor:
        """x / rms(x), the RMSNorm without its weight."""
        scale = torch.linalg.vector_norm(x, dim=-1, keepdim=True, dtype=torch.float32)
        return x * (scale.square() / x.shape[-1] + eps).rsqrt().to(x.dtype)

    def residual_linear(x, h, weight, bias):
        """x + h @ weight.T (+ bias), the residual add done by the matmul."""
        out = torch.addmm(x, h, weight.t())
        return out if bias is None else out + bias

    def block(x, eps_in, w_qkv, b_qkv, w_o, b_o, eps_post, w_gu, b_gu, w_down, b_down,
              cos, sin_signed, slot, n_texts: int, width: int):
        n = x.shape[0]
        qkv = F.linear(rms_scale(x, eps_in), w_qkv, b_qkv).view(n, -1, head_dim)
        qk = qkv[:, : n_heads + n_kv_heads]  # rotary embedding on q and k at once:
        half1, half2 = qk.chunk(2, dim=-1)  # sin_signed = [-sin, sin]
        qk = qk * cos + torch.cat((half2, half1), dim=-1) * sin_signed
        padded = qkv.new_zeros(n_texts * width, qkv.shape[1], head_dim)
        padded[slot] = torch.cat((qk, qkv[:, n_heads + n_kv_heads:]), dim=1)
        q, k, v = padded.view(n_texts, width, -1, head_dim).transpose(1, 2).split(
            [n_heads, n_kv_heads, n_kv_heads], dim=1)
        # right padding + causal mask: no real token sees a pad token, so no attention mask
        attn = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=n_heads != n_kv_heads)
        attn = attn.transpose(1, 2).reshape(n_texts * width, n_heads * head_dim)[slot]
        x = residual_linear(x, attn, w_o, b_o)
        gate, up = F.linear(rms_scale(x, eps_post), w_gu, b_gu).chunk(2, dim=-1)
        return residual_linear(x, F.silu(gate).mul_(up), w_down, b_down)

    return block


class PackedDecoder:
    """Hidden states of a Llama-family decoder, computed on packed (padding-free) tokens.

    Check :func:`packed_support` first. The fused q/k/v and gate/up weights are copies made
    here (memory equal to those weights); rebuild the decoder after changing the model's weights.

    Parameters
    ----------
    model
        A loaded ``*ForCausalLM`` (or its base model) whose blocks :func:`packed_support` accepts.
    blocks
        Its decoder blocks (``plural_kit.engine.decoder_blocks(model)``).
    compile
        Compile the block function with ``torch.compile(dynamic=True)`` (a one-off cost of
        ~10-15 s on the bundled SmolLM2, cached on disk by PyTorch across processes).
    """

    def __init__(self, model: nn.Module, blocks: Sequence[nn.Module], compile: bool = False):
        self.base = model.base_model
        attn = blocks[0].self_attn
        cfg = model.config
        n_heads = cfg.num_attention_heads
        n_kv_heads = getattr(cfg, "num_key_value_heads", None) or n_heads
        self.hidden_size = cfg.hidden_size
        self.n_layers = len(blocks)
        with torch.no_grad():
            self.weights = []
            for b in blocks:
                a, m = b.self_attn, b.mlp
                qkv, gu = (a.q_proj, a.k_proj, a.v_proj), (m.gate_proj, m.up_proj)
                norm_in, norm_post = b.input_layernorm, b.post_attention_layernorm
                self.weights.append((
                    norm_in.variance_epsilon, _fuse(qkv, norm_in.weight), _cat_bias(qkv), a.o_proj.weight,
                    a.o_proj.bias, norm_post.variance_epsilon, _fuse(gu, norm_post.weight), _cat_bias(gu),
                    m.down_proj.weight, m.down_proj.bias))
        self._eager = _make_block(n_heads, n_kv_heads, attn.head_dim)
        self._block = torch.compile(self._eager, dynamic=True) if compile else self._eager
        self.compiled = compile

    def _run_block(self, i: int, x: torch.Tensor, *args) -> torch.Tensor:
        if self._block is self._eager:
            return self._eager(x, *self.weights[i], *args)
        try:
            return self._block(x, *self.weights[i], *args)
        except Exception as err:  # a missing C++ compiler, an unsupported op, ...
            if is_out_of_memory(err):
                raise  # the engine halves the batch
            warnings.warn(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); "
                          "continuing without compiling", RuntimeWarning, stacklevel=3)
            self._block, self.compiled = self._eager, False
            return self._eager(x, *self.weights[i], *args)

    @torch.inference_mode()
    def hidden_states(self, seqs: Sequence[Sequence[int]], layers: Sequence[Point],
                      hooks: Sequence[tuple[Point, Callable]] = (), padding_side: str = "right"
                      ) -> tuple[dict[Point, torch.Tensor], torch.Tensor]:
        """Hidden states at the points ``layers`` (ints in ``0..n_layers``, ``n_layers`` before the
        final norm, or :data:`~plural_kit._hooks.FINAL_NORM`) for token-id sequences (no padding).

        ``hooks``: ``(point, fn)`` edits of the residual stream as in
        :meth:`~plural_kit.engine.ForwardEngine.hooks`, applied in order; ``fn`` sees the same
        padded ``(batch, seq, d)`` layout as the output and may return a new tensor or edit it in
        place. Returns ``({point: (batch, seq, d)} in the model's dtype, zeros at the padding on
        ``padding_side``}, attention mask (batch, seq))`` on the model's device; stops after the
        deepest point asked for.
        """
        device = self.base.embed_tokens.weight.device
        lens = torch.tensor([len(s) for s in seqs], device=device)
        n_texts, width = len(seqs), int(lens.max())
        starts = lens.cumsum(0) - lens
        text_of_token = torch.repeat_interleave(torch.arange(n_texts, device=device), lens)
        positions = torch.arange(int(lens.sum()), device=device) - starts[text_of_token]
        slot = text_of_token * width + positions  # each token's row in the right-padded layout
        out_slot = slot + (width - lens)[text_of_token] if padding_side == "left" else slot
        mask = torch.zeros(n_texts * width, dtype=torch.long, device=device)
        mask[out_slot] = 1

        def padded(h):
            full = h.new_zeros(n_texts * width, h.shape[-1])
            full[out_slot] = h
            return full.view(n_texts, width, -1)

        edits: dict[int, list[Callable]] = {}
        for layer, fn in hooks:
            edits.setdefault(layer, []).append(fn)

        def edit(layer, h):
            for fn in edits.get(layer, ()):
                full = padded(h)
                new = fn(full)
                h = (full if new is None else new).reshape(n_texts * width, -1)[out_slot].to(h.dtype)
            return h

        x = self.base.embed_tokens(torch.tensor([t for s in seqs for t in s], device=device))
        cos, sin = self.base.rotary_emb(x, positions.unsqueeze(0))  # (1, tokens, head_dim)
        half = sin.shape[-1] // 2
        sin = torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)
        cos, sin = cos[0].unsqueeze(1).to(x.dtype), sin[0].unsqueeze(1).to(x.dtype)  # (tokens, 1, head_dim)
        wanted = set(layers)
        deepest = self.n_layers if FINAL_NORM in wanted else max(wanted)
        x = edit(0, x)
        out = {0: padded(x)} if 0 in wanted else {}
        for i in range(deepest):
            x = edit(i + 1, self._run_block(i, x, cos, sin, slot, n_texts, width))
            if i + 1 in wanted:
                out[i + 1] = padded(x)
        if FINAL_NORM in wanted:
            # .forward: the engine's own hook on the norm is applied by edit(), not twice
            out[FINAL_NORM] = padded(edit(FINAL_NORM, self.base.norm.forward(x)))
        return out, mask.view(n_texts, width)
