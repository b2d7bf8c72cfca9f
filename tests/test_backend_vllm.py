"""The vLLM adapter against a fake ``vllm`` module whose LLM returns vLLM's output shapes.

The fake LLM runs a tiny Hugging Face model: ``generate`` takes ``{"prompt_token_ids": ...}``
prompts and a ``SamplingParams`` and returns objects shaped like vLLM's ``RequestOutput``
(``prompt_logprobs``: a list with None first, then ``{token id: Logprob}`` holding at least the
actual prompt token; ``outputs[0].text``), so the adapter's numbers can be checked against the
in-process engine on the same model.
"""
from __future__ import annotations

import sys
import types
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from plural_kit.engine import ForwardEngine
from plural_kit.scoring import option_probs
from tiny_models import tiny_causal_lm

PROMPTS = ["Which value matters most here?", "Is it fair to", "Yes", "People who disagree about care and fairness"]


@dataclass
class Logprob:  # vllm.logprobs.Logprob
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class SamplingParams:  # the fields of vllm.SamplingParams the adapter sets
    def __init__(self, max_tokens=16, temperature=1.0, seed=None, prompt_logprobs=None, logprobs=None, **kwargs):
        self.max_tokens, self.temperature, self.seed = max_tokens, temperature, seed
        self.prompt_logprobs, self.logprobs, self.extra = prompt_logprobs, logprobs, kwargs


class FakeLLM:
    """vllm.LLM's generate / get_tokenizer on a tiny HF model (greedy only)."""

    def __init__(self, model, tokenizer):
        self.model, self.tokenizer, self.calls = model, tokenizer, []

    def get_tokenizer(self):
        return self.tokenizer

    @torch.inference_mode()
    def generate(self, prompts, sampling_params, use_tqdm=True):
        assert sampling_params.temperature == 0.0, "the fake decodes greedily only"
        self.calls.append((len(prompts), sampling_params))
        outs = []
        for p in prompts:
            ids = torch.tensor([p["prompt_token_ids"]])
            prompt_lp = None
            if sampling_params.prompt_logprobs is not None:
                logp = torch.log_softmax(self.model(ids).logits[0].float(), -1)
                prompt_lp = [None] + [{int(t): Logprob(float(logp[j, t]), int((logp[j] > logp[j, t]).sum()) + 1)}
                                      for j, t in enumerate(ids[0, 1:].tolist())]
            new = self.model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                      max_new_tokens=sampling_params.max_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id)[0, ids.shape[1]:]
            completion = types.SimpleNamespace(text=self.tokenizer.decode(new, skip_special_tokens=True),
                                               token_ids=new.tolist(), logprobs=None)
            outs.append(types.SimpleNamespace(prompt=None, prompt_token_ids=p["prompt_token_ids"],
                                              prompt_logprobs=prompt_lp, outputs=[completion]))
        return outs


@pytest.fixture()
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    module.SamplingParams = SamplingParams
    module.LLM = lambda **kwargs: pytest.fail(f"the adapter built an LLM although one was given: {kwargs}")
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


@pytest.fixture(scope="module")
def tiny(tokenizer):
    model = tiny_causal_lm(tokenizer, hidden_size=24, intermediate_size=48)
    return model, ForwardEngine(model, tokenizer, device="cpu", dtype="float32", progress=False)


def test_logprobs_match_the_in_process_engine(fake_vllm, tiny, tokenizer):
    from plural_kit.backends.vllm import VLLMEngine

    model, local = tiny
    eng = VLLMEngine(llm=FakeLLM(model, tokenizer))
    tokens = ["yes", "no", 1012]
    got = eng.next_token_logprobs(PROMPTS, tokens)
    assert got.shape == (4, 3) and got.dtype == np.float32
    np.testing.assert_allclose(got, local.next_token_logprobs(PROMPTS, tokens), atol=1e-5)
    conts = [" care", " fairness matters", " no", " they differ"]
    for reduce in ("sum", "mean"):
        np.testing.assert_allclose(eng.continuation_logprobs(PROMPTS, conts, reduce),
                                   local.continuation_logprobs(PROMPTS, conts, reduce), atol=1e-5)


def test_answer_distributions_match_the_in_process_engine(fake_vllm, tiny, tokenizer):
    from plural_kit.backends.vllm import VLLMEngine

    model, local = tiny
    eng = VLLMEngine(llm=FakeLLM(model, tokenizer))
    prompts = [p + "\nA. yes\nB. no\nAnswer:" for p in PROMPTS]
    want, want_mass = option_probs(local, prompts, ["A", "B"])
    got, got_mass = option_probs(eng, prompts, ["A", "B"])
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got_mass, want_mass, atol=1e-6)


def test_greedy_generation_matches_the_in_process_engine(fake_vllm, tiny, tokenizer):
    from plural_kit.backends.vllm import VLLMEngine

    model, local = tiny
    fake = FakeLLM(model, tokenizer)
    eng = VLLMEngine(llm=fake)
    assert eng.generate(PROMPTS, max_new_tokens=5) == local.generate(PROMPTS, max_new_tokens=5)
    n, params = fake.calls[-1]
    assert n == len(PROMPTS) and params.max_tokens == 5 and params.seed is None


def test_sampling_is_passed_on_seeded(fake_vllm, tokenizer):
    from plural_kit.backends.vllm import VLLMEngine

    seen = []

    class Recording(FakeLLM):
        def generate(self, prompts, sampling_params, use_tqdm=True):
            seen.append(sampling_params)
            return [types.SimpleNamespace(outputs=[types.SimpleNamespace(text="ok")]) for _ in prompts]

    eng = VLLMEngine(llm=Recording(None, tokenizer))
    assert eng.generate(["a", "b"], do_sample=True, temperature=0.7, seed=3, top_p=0.9) == ["ok", "ok"]
    assert (seen[0].temperature, seen[0].seed, seen[0].extra) == (0.7, 3, {"top_p": 0.9})
    with pytest.raises(ValueError, match="temperature must be > 0"):
        eng.generate(["a"], do_sample=True, temperature=0)


def test_what_vllm_cannot_do_is_named(fake_vllm, tokenizer):
    from plural_kit.backends.vllm import VLLMEngine

    eng = VLLMEngine(llm=FakeLLM(None, tokenizer))
    with pytest.raises(ValueError, match="pass token_ids"):
        eng.next_token_logprobs(["a"])
    with pytest.raises(ValueError, match="is 2 tokens, not one"):
        eng.next_token_logprobs(["a"], ["yes no"])
    with pytest.raises(TypeError, match="no hidden states"):
        eng.hidden_states(["a"])
    with pytest.raises(TypeError, match="cannot run hooks"):
        eng.hooks({})
    with pytest.raises(ValueError, match="no chat template"):
        eng.apply_chat_template(["hi"])


def test_missing_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    from plural_kit.backends.vllm import VLLMEngine

    with pytest.raises(ImportError, match=r"pip install 'plural_kit\[vllm\]'"):
        VLLMEngine("smollm2-135m-instruct")
