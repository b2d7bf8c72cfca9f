"""Answer distributions from the real bundled SmolLM2 equal a direct forward pass through the model."""
import numpy as np
import pytest
import torch

from plural_kit.audit import MultipleChoiceItem, PromptDesign, answer_distributions, resolve_label_tokens

pytestmark = pytest.mark.slow

ITEMS = [
    MultipleChoiceItem("care", "Caring for people who have suffered is an important virtue.",
                       ("Does not describe me at all", "Slightly describes me", "Moderately describes me",
                        "Describes me fairly well", "Describes me extremely well"), values=(1, 2, 3, 4, 5)),
    MultipleChoiceItem("purity", "I believe chastity is an important virtue.",
                       ("Does not describe me at all", "Slightly describes me", "Moderately describes me",
                        "Describes me fairly well", "Describes me extremely well"), values=(1, 2, 3, 4, 5)),
    MultipleChoiceItem("short", "Is the sky blue?", ("No", "Yes", "Not sure", "Sometimes", "Never")),
]


@pytest.fixture(scope="module")
def engine():
    from plural_kit.engine import ForwardEngine
    from plural_kit.models import load_model

    model, tok = load_model("smollm2-135m-instruct", device="cpu", dtype="float32")
    return ForwardEngine(model, tok, device="cpu", dtype="float32", progress=False)


def direct_probs(engine, text, token_ids):
    """One unbatched, unpadded forward pass with plain transformers."""
    ids = engine.tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits = engine.model(input_ids=ids).logits[0, -1].float()
    p = torch.softmax(logits, -1)[token_ids].numpy()
    return p / p.sum(), p.sum()


def test_label_tokens_follow_the_prompt(engine):
    tok = engine.tokenizer
    chat = engine.apply_chat_template(["Pick one.\nA. x\nB. y"])[0]
    assert chat.endswith("assistant\n")
    text, ids = resolve_label_tokens(tok, chat, ["A", "B"])
    assert text == chat and ids == tok.convert_tokens_to_ids(["A", "B"])  # no leading space after the turn start
    text, ids = resolve_label_tokens(tok, "Pick one.\nAnswer:", ["A", "B"])
    assert text.endswith("Answer:") and ids == [tok.encode(" A")[0], tok.encode(" B")[0]]
    assert tok.convert_ids_to_tokens(ids) == ["ĠA", "ĠB"]
    # " 1" is a space token then "1" for this tokenizer: the space moves into the prompt
    assert len(tok.encode(" 1", add_special_tokens=False)) == 2
    text, ids = resolve_label_tokens(tok, "Pick one.\nAnswer:", ["1", "2"])
    assert text == "Pick one.\nAnswer: " and ids == tok.convert_tokens_to_ids(["1", "2"])


@pytest.mark.parametrize("design", [
    PromptDesign(),
    PromptDesign(order="reversed", system="You are a person."),
    PromptDesign(order="random0", chat_template=False, response="answer_prefix"),
    PromptDesign(labels="numbers", chat_template=False, response="answer_prefix"),
    PromptDesign(labels="numbers", order="reversed"),
], ids=lambda d: d.name)
def test_equals_direct_forward_pass(engine, design):
    res = answer_distributions(engine, ITEMS, design)
    tok = engine.tokenizer
    for i, it in enumerate(ITEMS):
        text = res.prompts[i]
        labels = list("ABCDE") if design.labels == "letters" else list("12345")
        if design.response == "answer_prefix" and design.labels == "letters":
            ids = [tok.encode(" " + lab, add_special_tokens=False)[0] for lab in labels]
        else:
            if design.response == "answer_prefix":
                text += " "  # digits follow a separate space token
            ids = tok.convert_tokens_to_ids(labels)
        p, mass = direct_probs(engine, text, ids)
        np.testing.assert_allclose(res.position_probs[i], p, atol=2e-3)
        assert res.on_option_mass[i] == pytest.approx(mass, abs=2e-3)
        assert 0 < res.on_option_mass[i] <= 1
        # back in the original option order
        np.testing.assert_allclose(res.probs[i][res.display[i]], p, atol=2e-3)
        np.testing.assert_allclose(res.probs[i].sum(), 1.0, atol=1e-6)
        shown = [line.split(". ", 1)[1] for line in text.splitlines() if line[:2] in {f"{x}." for x in labels}]
        assert shown == [it.options[j] for j in res.display[i]]


def test_chat_letters_put_most_mass_on_the_options(engine):
    res = answer_distributions(engine, ITEMS[:2], PromptDesign())
    assert res.on_option_mass.min() > 0.5  # measured ~0.8: the model answers with a letter
    frame = res.to_frame()
    assert list(frame.columns[:2]) == ["item", "group"] and len(frame) == 2
    assert np.all((frame["expected"] >= 1) & (frame["expected"] <= 5))
