"""Tiny randomly initialised Hugging Face models (fast, exact in fp32) with the bundled MiniLM
tokenizer, shared by the engine, embedding and packed-path tests."""
from __future__ import annotations

import torch
from transformers import (AutoTokenizer, BertConfig, BertModel, LlamaConfig, LlamaForCausalLM, MistralConfig,
                          MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM)

from plural_kit.models import _bundle_path

TEXTS = [
    "A much longer sentence about how the values and preferences of different people differ.",
    "Short.",
    "Hello there, how are you doing today?",
    "Yes",
    "Two words",
    "Preference data from many annotators disagrees more often than one might expect.",
]

_CAUSAL = {"llama": (LlamaForCausalLM, LlamaConfig), "mistral": (MistralForCausalLM, MistralConfig),
           "qwen2": (Qwen2ForCausalLM, Qwen2Config)}


def minilm_tokenizer():
    return AutoTokenizer.from_pretrained(_bundle_path("all-minilm-l6-v2"))


def tiny_causal_lm(tokenizer, kind: str = "llama", hidden_size: int = 32, intermediate_size: int = 64, **extra):
    """A 3-block decoder (4 heads, 2 key/value heads), seeded, in eval mode."""
    torch.manual_seed(0)
    cls, config = _CAUSAL[kind]
    cfg = config(vocab_size=tokenizer.vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                 num_hidden_layers=3, num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                 pad_token_id=tokenizer.pad_token_id, architectures=[cls.__name__], **extra)
    return cls(cfg).eval()


def tiny_bert(tokenizer):
    """A 3-block BERT encoder, seeded, in eval mode."""
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                     num_attention_heads=4, max_position_embeddings=256, architectures=["BertModel"])
    return BertModel(cfg).eval()
