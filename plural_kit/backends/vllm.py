"""Generation and answer-option log-probabilities on vLLM, behind the engine contract.

:class:`VLLMEngine` wraps a ``vllm.LLM`` and provides the engine methods that generation-heavy
steps use: :meth:`~VLLMEngine.generate` (the judge, perspective diversity, open-ended probes),
:meth:`~VLLMEngine.next_token_logprobs` and :meth:`~VLLMEngine.continuation_logprobs`, so
:func:`plural_kit.scoring.option_probs` and the audits (``LogprobScorer(VLLMEngine(...))``) run on
it and return the same result objects. Texts are tokenised exactly as by
:class:`~plural_kit.engine.ForwardEngine` (special tokens, truncation from the left) and sent to
vLLM as token ids.

Log-probabilities are read from vLLM's ``prompt_logprobs``, which always include the actual
prompt token: the log-probability of token ``t`` after a text is that of the last prompt token
of ``text + t``. This is exact for any token (not only vLLM's top-k) and costs one request per
(text, token); vLLM's prefix cache shares the text's forward pass between them.

vLLM is imported when an engine is built: ``pip install 'plural_kit[vllm]'`` (it needs a GPU, or
a CPU build of vLLM where one installs). Hidden states and hooks are not available here.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from plural_kit.engine import chat_format, check_texts, continuation_ids, tokenize_texts

__all__ = ["VLLMEngine"]

INSTALL = "pip install 'plural_kit[vllm]'"


def _vllm():
    try:
        import vllm
    except ImportError as err:
        raise ImportError(f"the vLLM backend needs vLLM, which is not installed: {INSTALL} (vLLM needs a GPU, "
                          "or a CPU build of vLLM)") from err
    return vllm


class VLLMEngine:
    """Engine methods for generation and next-token log-probabilities on a ``vllm.LLM``.

    Parameters
    ----------
    model
        A model name (bundled names such as ``"smollm2-135m-instruct"`` resolve to their local
        folder), a folder or a hub id; ``vllm.LLM(model, ...)`` is built from it unless ``llm`` is given.
    llm
        An already built ``vllm.LLM`` (or an object with its ``generate`` and ``get_tokenizer``).
    dtype, seed, llm_kwargs
        Passed to ``vllm.LLM`` (e.g. ``gpu_memory_utilization=0.5``, ``tensor_parallel_size=2``).
    max_length
        Longer texts keep their last ``max_length`` tokens, as in :class:`ForwardEngine`.
    """

    is_causal = True

    def __init__(self, model: str | os.PathLike | None = None, *, llm=None, dtype: str = "auto", seed: int = 0,
                 max_length: int = 512, **llm_kwargs):
        if model is None and llm is None:
            raise TypeError("pass a model name or path, or a built vllm.LLM as llm=")
        if not (isinstance(max_length, int) and max_length >= 2):
            raise ValueError(f"max_length must be an int >= 2, got {max_length!r}")
        vllm = _vllm()
        self.model = None if model is None else str(model)
        if llm is None:
            from plural_kit.models import _resolve

            llm = vllm.LLM(model=str(_resolve(self.model)), dtype=dtype, seed=seed, trust_remote_code=False,
                           **llm_kwargs)
        self.llm = llm
        self.tokenizer = llm.get_tokenizer()
        self.max_length = max_length
        self._sampling = vllm.SamplingParams

    # ------------------------------------------------------------------ text preparation
    def apply_chat_template(self, prompts, system: str | None = None, add_generation_prompt: bool = True) -> list[str]:
        """Chat-format prompts with the model's template (:func:`plural_kit.engine.chat_format`)."""
        return chat_format(self.tokenizer, prompts, system=system, add_generation_prompt=add_generation_prompt,
                           model_name=self.model or "this vLLM model")

    def tokenize(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids as :class:`~plural_kit.engine.ForwardEngine` gives them (the same texts reach vLLM)."""
        return tokenize_texts(self.tokenizer, texts, max_length=self.max_length, is_causal=self.is_causal)

    def token_ids(self, tokens: Sequence[int | str]) -> list[int]:
        """Vocabulary ids for ints or single-token strings; ``ValueError`` otherwise."""
        vocab = len(self.tokenizer)
        out = []
        for t in tokens:
            if isinstance(t, str):
                enc = self.tokenizer(t, add_special_tokens=False)["input_ids"]
                if len(enc) != 1:
                    raise ValueError(f"{t!r} is {len(enc)} tokens, not one: {self.tokenizer.convert_ids_to_tokens(enc)}")
                t = enc[0]
            if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < vocab:
                raise ValueError(f"token id {t!r} is not an int in [0, {vocab})")
            out.append(int(t))
        return out

    # ------------------------------------------------------------------ log-probabilities
    def _prompt_logprobs(self, sequences: list[list[int]]) -> list:
        """vLLM's ``prompt_logprobs`` (one entry per prompt token, the first None) of each sequence."""
        params = self._sampling(max_tokens=1, temperature=0.0, prompt_logprobs=0)
        outs = self.llm.generate([{"prompt_token_ids": s} for s in sequences], params, use_tqdm=False)
        if len(outs) != len(sequences):
            raise RuntimeError(f"vLLM returned {len(outs)} outputs for {len(sequences)} requests")
        return [o.prompt_logprobs for o in outs]

    def next_token_logprobs(self, texts: Sequence[str], token_ids: Sequence[int | str] | None = None) -> np.ndarray:
        """Log-probability of each of ``token_ids`` as the token after each text: ``(n, K)`` float32."""
        texts = check_texts(texts)
        if token_ids is None:
            raise ValueError("the vLLM backend scores given tokens only: pass token_ids (the whole vocabulary "
                             "needs a ForwardEngine)")
        cols = self.token_ids(token_ids)
        ids = self.tokenize(texts)
        entries = self._prompt_logprobs([s + [t] for s in ids for t in cols])
        out = np.array([entry[-1][t].logprob for entry, t in zip(entries, cols * len(ids))], dtype=np.float32)
        return out.reshape(len(ids), len(cols))

    def continuation_logprobs(self, prompts: Sequence[str], continuations: Sequence[str],
                              reduce: str = "sum") -> np.ndarray:
        """Log-probability of each continuation after its prompt, ``(n,)`` float32 (see
        :meth:`ForwardEngine.continuation_logprobs`)."""
        seqs, conts = continuation_ids(self, prompts, continuations, reduce)
        out = []
        for entry, seq, c in zip(self._prompt_logprobs(seqs), seqs, conts):
            lp = [entry[j][seq[j]].logprob for j in range(len(seq) - len(c), len(seq))]
            out.append(sum(lp) / len(lp) if reduce == "mean" else sum(lp))
        return np.array(out, dtype=np.float32)

    # ------------------------------------------------------------------ generation
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 64, do_sample: bool = False,
                 temperature: float = 1.0, seed: int = 0, **sampling_kwargs) -> list[str]:
        """Continue each prompt: greedy by default, seeded sampling with ``do_sample=True``. Extra
        keyword arguments go to ``vllm.SamplingParams`` (e.g. ``top_p``). Returns the new text only."""
        prompts = check_texts(prompts, "prompts")
        if not (isinstance(max_new_tokens, int) and max_new_tokens >= 1):
            raise ValueError(f"max_new_tokens must be a positive int, got {max_new_tokens!r}")
        if do_sample and not temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature!r}")
        params = self._sampling(max_tokens=max_new_tokens, temperature=temperature if do_sample else 0.0,
                                seed=seed if do_sample else None, **sampling_kwargs)
        outs = self.llm.generate([{"prompt_token_ids": s} for s in self.tokenize(prompts)], params, use_tqdm=False)
        return [o.outputs[0].text for o in outs]

    # ------------------------------------------------------------------ not on vLLM
    def hidden_states(self, texts, layers=-2, pooling="last"):
        """Not available: vLLM does not expose hidden states (use a ForwardEngine or the Ray backend)."""
        raise TypeError("the vLLM backend has no hidden states; use ForwardEngine or RayEngine for embeddings")

    def hooks(self, fns):
        """Not available: vLLM runs its own kernels, not the Hugging Face modules hooks attach to."""
        raise TypeError("the vLLM backend cannot run hooks; use a ForwardEngine for steering and activation edits")

    def __repr__(self) -> str:
        return f"VLLMEngine({self.model!r})"
