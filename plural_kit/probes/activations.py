"""Residual-stream activations of a chat model for a batch of prompts (a thin layer over
:meth:`plural_kit.engine.ForwardEngine.hidden_states`, which batches, pads, stops the forward at the
deepest layer asked for and always removes its hooks).

Not cached: :class:`plural_kit.embed.EmbeddingExtractor`'s disk cache holds one layer per
configuration (one forward pass per layer), while a probe wants many layers from one pass.
"""
from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from plural_kit.engine import Engine


def resolve_layers(engine: Engine, layers: Iterable[int] | str) -> list[int]:
    """Layer indices in HF ``hidden_states`` numbering (0 = embeddings, i = output of block i).

    ``layers`` may be a list (negative counts from the end), ``"all"`` (0..n) or ``"every:k"``
    (0, k, 2k, ... and the last block).
    """
    n = engine.n_layers
    if isinstance(layers, str):
        if layers == "all":
            return list(range(n + 1))
        if layers.startswith("every:"):
            step = int(layers.split(":", 1)[1])
            if step < 1:
                raise ValueError(f"step in {layers!r} must be >= 1")
            return sorted(set(range(0, n + 1, step)) | {n})
        raise ValueError(f"layers must be a list of ints, 'all' or 'every:k'; got {layers!r}")
    out = [engine.resolve_layer(layer) for layer in layers]
    if not out:
        raise ValueError("no layers asked for")
    return sorted(set(out))


def collect_activations(engine: Engine, prompts: Sequence[str], layers: Iterable[int] | str, *,
                        position: str | int = "last", system: str | None = None,
                        chat_template: bool = True) -> dict[int, np.ndarray]:
    """Residual stream ``{layer: array (n_prompts, d) float32}`` at the chosen token position.

    prompts: user messages; with ``chat_template`` they are wrapped by the model's chat template
    with the generation prompt, so ``position="last"`` is the last token before the answer.
    position: ``"last"``, ``"mean"`` (over non-pad tokens) or an int offset from the end (-1 = last).
    """
    if isinstance(prompts, str):
        raise TypeError("prompts must be a list of strings, not one string")
    prompts = list(prompts)
    if not prompts:
        raise ValueError("no prompts given")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"prompts at positions {bad[:5]} are empty or not strings")
    texts = engine.apply_chat_template(prompts, system=system) if chat_template else prompts
    hs = engine.hidden_states(texts, layers=resolve_layers(engine, layers), pooling=position)
    return {int(k): np.asarray(v, dtype=np.float32) for k, v in hs.items()}
