"""The robustness protocol: every permutation really applied in the prompt text, answers mapped back."""
import re

import numpy as np
import pandas as pd
import pytest

from plural_kit.audit import (
    AnswerScorer,
    AuditInputError,
    MultipleChoiceItem,
    PromptDesign,
    answer_distributions,
    build_prompt,
    design_variants,
    factor_permutation_test,
    option_permutation,
    robustness_audit,
)

OPTION_LINE = re.compile(r"^([A-Z]|\d)\. (.+)$", re.M)
K = 5


def make_items(n=8):
    groups = ["care", "purity"]
    return [MultipleChoiceItem(f"q{i}", f"Statement number {i}.", tuple(f"option {i}-{j}" for j in range(K)),
                               values=(1, 2, 3, 4, 5), group=groups[i % 2]) for i in range(n)]


class FakeChat:
    def apply_chat_template(self, prompts, system=None):
        return [f"<system>{system}</system><user>{p}</user><assistant>" for p in prompts]


class PositionScorer(FakeChat, AnswerScorer):
    """Answers by position only: all mass on the displayed position ``position``."""

    def __init__(self, position=0):
        self.position = position

    def score(self, prompts, labels):
        p = np.zeros((len(prompts), len(labels[0])))
        p[:, self.position] = 1.0
        return p, np.ones(len(prompts))


class ContentScorer(FakeChat, AnswerScorer):
    """Reads the options from the prompt text; prefers option j of the original list with weight (j + 1 + shift)
    where shift depends on the item, so its answers depend on content only, never on position."""

    def __init__(self):
        self.seen = []

    def score(self, prompts, labels):
        out = []
        for text, labs in zip(prompts, labels):
            lines = OPTION_LINE.findall(text)
            assert [lab for lab, _ in lines] == list(labs)  # the labels shown are the labels scored
            self.seen.append([t for _, t in lines])
            w = []
            for _, opt in lines:
                i, j = map(int, re.fullmatch(r"option (\d+)-(\d+)", opt).groups())
                w.append((j + 1) ** (1 + i % 3))
            w = np.asarray(w, float)
            out.append(w / w.sum())
        return np.array(out), np.full(len(prompts), 0.5)


def displayed_options(prompt):
    return [t for _, t in OPTION_LINE.findall(prompt)]


@pytest.mark.parametrize("order", ["original", "reversed", "random0", "random1", "random7"])
@pytest.mark.parametrize("labels", ["letters", "numbers"])
@pytest.mark.parametrize("chat", [True, False])
def test_every_permutation_is_applied_in_the_prompt(order, labels, chat):
    items = make_items()
    design = PromptDesign(order=order, labels=labels, chat_template=chat, seed=3)
    for i, it in enumerate(items):
        text, display, labs = build_prompt(it, design, FakeChat(), item_index=i)
        assert sorted(display) == list(range(K))
        assert displayed_options(text) == [it.options[j] for j in display]
        assert [lab for lab, _ in OPTION_LINE.findall(text)] == (list("ABCDE") if labels == "letters" else
                                                                 ["1", "2", "3", "4", "5"])
        assert it.text in text
        assert text.startswith("<system>") == chat
    if order == "reversed":
        assert list(display) == [4, 3, 2, 1, 0]


def test_random_orders_are_seeded_and_differ():
    perms = [tuple(option_permutation(K, "random0", item_index=i, seed=0)) for i in range(20)]
    assert perms == [tuple(option_permutation(K, "random0", item_index=i, seed=0)) for i in range(20)]
    assert len(set(perms)) > 10  # a new permutation per item
    assert perms != [tuple(option_permutation(K, "random1", item_index=i, seed=0)) for i in range(20)]
    assert perms != [tuple(option_permutation(K, "random0", item_index=i, seed=1)) for i in range(20)]


@pytest.mark.parametrize("order", ["original", "reversed", "random0", "random2"])
def test_position_answers_are_mapped_back_to_the_original_option(order):
    items = make_items()
    res = answer_distributions(PositionScorer(position=1), items, PromptDesign(order=order))
    for i, it in enumerate(items):
        shown_second = displayed_options(res.prompts[i])[1]
        original_index = it.options.index(shown_second)
        expected = np.zeros(K)
        expected[original_index] = 1.0
        np.testing.assert_array_equal(res.probs[i], expected)
        np.testing.assert_array_equal(res.position_probs[i], np.eye(K)[1])
    assert res.to_frame()["top_position"].eq(1).all()


@pytest.mark.parametrize("order", ["original", "reversed", "random0", "random5"])
def test_content_answers_are_invariant_to_order(order):
    items = make_items()
    base = answer_distributions(ContentScorer(), items, PromptDesign())
    res = answer_distributions(ContentScorer(), items, PromptDesign(order=order, labels="numbers"))
    np.testing.assert_allclose(res.probs, base.probs)
    np.testing.assert_allclose(res.on_option_mass, 0.5)
    for i in range(len(items)):  # p(original j) ∝ (j+1)^(1 + i%3) whatever the order shown
        w = np.arange(1, K + 1) ** (1 + i % 3)
        np.testing.assert_allclose(res.probs[i], w / w.sum())


def test_design_variants():
    base = PromptDesign()
    ds = design_variants(base, n_random_orders=2, instructions={"para": "Q: {text}"})
    names = [d.name for d in ds]
    assert len(names) == len(set(names)) == 3 + 1 + 1 + 1 + 1 + 1
    assert [d.order for d in ds[:4]] == ["original", "reversed", "random0", "random1"]
    assert {d.labels for d in ds} == {"letters", "numbers"}
    assert {d.instruction_name for d in ds} == {"default", "para"}
    crossed = design_variants(base, cross_orders=True, responses=("label",), chat_template=(True,))
    assert {(d.order, d.labels) for d in crossed} == {(o, l) for o in ("original", "reversed")
                                                     for l in ("letters", "numbers")}
    assert len(design_variants(base, n_random_orders=3, max_variants=4)) == 4


def test_bad_designs_raise():
    with pytest.raises(AuditInputError, match="order"):
        PromptDesign(order="shuffled")
    with pytest.raises(AuditInputError, match="label"):
        PromptDesign(labels="roman")
    with pytest.raises(AuditInputError, match="placeholder"):
        PromptDesign(instruction="no placeholder")
    with pytest.raises(AuditInputError, match="unique"):
        robustness_audit(PositionScorer(), make_items(), [PromptDesign(), PromptDesign()])
    with pytest.raises(AuditInputError, match="at least two options"):
        MultipleChoiceItem("x", "text", ("only one",))


def test_position_scorer_is_all_design():
    items = make_items()
    designs = design_variants(PromptDesign(), n_random_orders=1, labels=("letters",), responses=("label",),
                              chat_template=(True, False))
    ref = pd.DataFrame({"care": [2.0, 4.0], "purity": [3.0, 3.5]}, index=["X", "Y"])
    res = robustness_audit(PositionScorer(0), items, designs, reference=ref, n_resamples=199)
    # first position = option 0 (rating 1) in the original order, option 4 (rating 5) reversed
    assert res.scores.loc["original|letters|label|chat|default"].tolist() == [1.0, 1.0]
    assert res.scores.loc["reversed|letters|label|chat|default"].tolist() == [5.0, 5.0]
    assert res.permutation.loc["order", "p_value"] < 0.05
    assert res.design_share() > 0.8  # the rest: random orders differ per item
    assert res.anova.loc["C(item)", "share"] < 0.1
    assert res.anova.loc["C(chat_template)", "share"] < 1e-9  # position-only answers ignore the template
    assert (res.position["pos_0"] == 1.0).all()
    assert (res.spread["ratio"] > 1).all()
    frame = res.to_frame()
    assert {"order", "chat_template", "care", "purity", "pos_0", "nearest_country"} <= set(frame.columns)
    assert "design" in res.summary()


def test_plot_all_draws_scores_above_positions():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = pd.DataFrame({"care": [2.0, 4.0], "purity": [3.0, 3.5]}, index=["X", "Y"])
    designs = design_variants(PromptDesign(), responses=("label",), chat_template=(True,))
    res = robustness_audit(PositionScorer(0), make_items(), designs, reference=ref, n_resamples=19)
    top, bottom = res.plot_all(ylim=(1, 5))
    assert top.figure is bottom.figure and top.get_ylim() == (1, 5)
    assert top.get_title().startswith("Model score per design variant")
    assert bottom.get_title() == "Mean probability by displayed position" and bottom.get_xlabel() == "position"
    assert [t.get_text() for t in bottom.get_yticklabels()] == list(res.position.index)
    plt.close(top.figure)


def test_content_scorer_is_all_item():
    items = make_items(12)
    designs = design_variants(PromptDesign(), n_random_orders=2, responses=("label",))
    res = robustness_audit(ContentScorer(), items, designs, n_resamples=199)
    np.testing.assert_allclose(res.spread["variant_range"], 0.0, atol=1e-12)
    assert res.order_correlation == pytest.approx(1.0)
    assert res.design_share() < 1e-6
    assert (res.permutation["p_value"] > 0.5).all()


def test_factor_permutation_test_detects_and_ignores():
    rng = np.random.default_rng(0)
    items = np.repeat(np.arange(30), 2)
    factor = np.tile(["a", "b"], 30)
    noise = rng.normal(size=60)
    df = pd.DataFrame({"item": items, "f": factor, "expected": noise})
    _, p_null = factor_permutation_test(df, "f", strata=["item"], n_resamples=499)
    df["expected"] = noise + (factor == "b") * 1.0
    _, p_effect = factor_permutation_test(df, "f", strata=["item"], n_resamples=499)
    assert p_effect < 0.01 < p_null
