"""Fixtures shared by the unit tests (the data-home setup is in the repository's conftest.py)."""
import pytest
from tiny_models import minilm_tokenizer


@pytest.fixture(scope="session")
def tokenizer():
    """The bundled MiniLM tokenizer, which the tiny test models use."""
    return minilm_tokenizer()
