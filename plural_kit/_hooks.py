"""Hook bookkeeping for :class:`plural_kit.engine.ForwardEngine`: points of the residual stream,
the edits of ``engine.hooks`` registered on the model (and remembered for the packed path),
capture hooks that read hidden states and stop the pass, and detection of hooks others registered.

A *point* is an int ``0..n_layers`` (the residual stream after block ``i``; 0 = the
embeddings, ``n_layers`` = after the last block, before the final norm) or :data:`FINAL_NORM`
(the output of the final norm: what Hugging Face calls the last hidden state).
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import nn

__all__ = ["FINAL_NORM", "HookRegistry", "StopForward", "capture_points", "check_hook_fns", "final_norm", "first_tensor",
           "replace_first_tensor"]

#: The point after the model's final norm (TransformerLens: ``ln_final.hook_normalized``).
FINAL_NORM = "ln_final.hook_normalized"

Point = int | str
HookFn = Callable[[torch.Tensor], torch.Tensor | None]

_FINAL_NORM_NAMES = ("norm", "ln_f", "final_layer_norm", "final_layernorm", "norm_f")


class StopForward(Exception):
    """Raised by a capture hook once the deepest needed point has run."""


def first_tensor(output) -> torch.Tensor:
    """The hidden-state tensor of a block's or model's output (tensor, tuple or ModelOutput)."""
    if isinstance(output, torch.Tensor):
        return output
    if hasattr(output, "last_hidden_state"):
        return output.last_hidden_state
    return output[0]


def replace_first_tensor(output, hidden: torch.Tensor):
    """``output`` with its hidden-state tensor replaced by ``hidden``."""
    if isinstance(output, torch.Tensor):
        return hidden
    if isinstance(output, tuple):
        return (hidden, *output[1:])
    if hasattr(output, "keys"):  # ModelOutput: replace its first field
        output[next(iter(output.keys()))] = hidden
    else:  # list
        output[0] = hidden
    return output


def final_norm(model: nn.Module) -> nn.Module | None:
    """The base model's final norm module (``norm``, ``ln_f``, ...), or ``None`` (e.g. BERT has none)."""
    for name in _FINAL_NORM_NAMES:
        module = getattr(model.base_model, name, None)
        if isinstance(module, nn.Module):
            return module
    return None


def _pre_hook(fn: HookFn):
    """A forward pre-hook on block 0 that applies ``fn`` to the hidden states it receives."""
    def pre(module, args, kwargs):
        if args:
            new = fn(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        new = fn(kwargs["hidden_states"])
        return None if new is None else (args, {**kwargs, "hidden_states": new})
    return pre


def _post_hook(fn: HookFn):
    """A forward hook that applies ``fn`` to a module's output hidden states."""
    def post(module, args, output):
        new = fn(first_tensor(output))
        return None if new is None else replace_first_tensor(output, new)
    return post


def _register(model: nn.Module, blocks: Sequence[nn.Module], point: Point, fn: HookFn):
    if point == 0:
        return blocks[0].register_forward_pre_hook(_pre_hook(fn), with_kwargs=True)
    if point == FINAL_NORM:
        norm = final_norm(model)
        if norm is None:
            raise ValueError(f"{type(model).__name__} has no final norm: its last hidden state is the output of the "
                             f"last block, hook it as layer {len(blocks)}")
        return norm.register_forward_hook(_post_hook(fn))
    return blocks[point - 1].register_forward_hook(_post_hook(fn))


class HookRegistry:
    """The residual-stream edits of one engine: registered on ``model`` while active, listed in
    :attr:`active` (``(point, fn)`` in order, for the packed path, which applies them itself),
    their handle ids in :attr:`own_ids` so they are not taken for other code's hooks."""

    def __init__(self, model: nn.Module, blocks: Sequence[nn.Module]):
        self.model, self.blocks = model, blocks
        self.active: list[tuple[Point, HookFn]] = []
        self.own_ids: set[int] = set()

    @contextlib.contextmanager
    def install(self, fns: Sequence[tuple[Point, HookFn]]) -> Iterator[None]:
        """Register ``(point, fn)`` edits for the ``with`` block; always removed after it."""
        handles = []
        added: list[tuple[Point, HookFn]] = []
        try:
            for point, fn in fns:
                handles.append(_register(self.model, self.blocks, point, fn))
                added.append((point, fn))
            self.own_ids.update(h.id for h in handles)
            self.active.extend(added)
            yield
        finally:
            for h in handles:
                h.remove()
                self.own_ids.discard(h.id)
            for item in added:
                if item in self.active:
                    self.active.remove(item)

    def foreign(self, count_dispatch: bool) -> bool:
        """Whether a forward hook other than these could change or read the model's pass
        (``count_dispatch``: count accelerate's device-dispatch hooks too). Transformers' own
        output-recording hooks (installed by ``output_hidden_states=True``, recording only
        inside such a call) do not count. Reads torch's hook dictionaries."""
        from torch.nn.modules import module as torch_module

        if torch_module._global_forward_hooks or torch_module._global_forward_pre_hooks:
            return True
        own = self.own_ids

        def foreign(hooks) -> bool:
            return any(i not in own and getattr(fn, "__module__", "") != "transformers.utils.output_capturing"
                       for i, fn in hooks.items())

        return any((count_dispatch and hasattr(m, "_hf_hook")) or foreign(m._forward_hooks)
                   or foreign(m._forward_pre_hooks) for m in self.model.modules())


@contextlib.contextmanager
def capture_points(blocks: Sequence[nn.Module], points: Sequence[Point],
                   record: Callable[[Point, torch.Tensor], None]) -> Iterator[None]:
    """Call ``record(point, hidden (batch, seq, d))`` as the forward pass reaches each int point
    and raise :class:`StopForward` after the deepest one, unless :data:`FINAL_NORM` is among
    ``points`` (the caller reads that from the model's output). Hooks are removed on exit."""
    ints = [p for p in points if p != FINAL_NORM]
    stop_at = None if FINAL_NORM in points or not ints else max(ints)

    def capture(point, hidden):
        record(point, hidden)
        if point == stop_at:
            raise StopForward

    handles = []
    try:
        for p in ints:
            if p == 0:
                handles.append(blocks[0].register_forward_pre_hook(
                    lambda m, args, kwargs: capture(0, args[0] if args else kwargs["hidden_states"]),
                    with_kwargs=True))
            else:
                handles.append(blocks[p - 1].register_forward_hook(
                    lambda m, args, out, _p=p: capture(_p, first_tensor(out))))
        yield
    finally:
        for h in handles:
            h.remove()


def check_hook_fns(fns) -> None:
    """``fns`` must be a non-empty ``{point: callable}`` mapping."""
    if not isinstance(fns, Mapping) or not fns:
        raise ValueError("hooks needs a non-empty {layer: fn} mapping")
    for layer, fn in fns.items():
        if not callable(fn):
            raise TypeError(f"hook for layer {layer} is not callable: {fn!r}")
