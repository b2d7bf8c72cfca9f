"""Issue 12, class 7: values that cross a public seam are validated where they enter.

A custom AnswerScorer's probabilities, an engine's log-probabilities, a perspective encoder's
embeddings, model scores on the MFQ-2 1-5 scale and the reference means of the steering audit:
each bad value raises AuditInputError (a ValueError) naming the problem and the offending values.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from plural_kit.audit import (
    AnswerDistributions,
    AnswerScorer,
    AuditInputError,
    LogprobScorer,
    MultipleChoiceItem,
    PerspectiveDetector,
    PromptDesign,
    answer_distributions,
    compare_with_countries,
    nearest_country_claim,
    steering_from_scores,
)
from plural_kit.data import FOUNDATIONS
from plural_kit import scoring
from plural_kit.scoring import option_probs
from tests.test_audit_claims import two_country_distributions
from tests.test_scoring import FakeEngine

ITEMS = [MultipleChoiceItem(f"q{i}", f"Statement {i}.", ("no", "maybe", "yes"), (1, 2, 3)) for i in range(3)]
PLAIN = PromptDesign(chat_template=False)


class Returns(AnswerScorer):
    """A scorer that returns what it is given, whatever the prompts."""

    def __init__(self, probs, mass=None):
        self.probs, self.mass = probs, mass

    def apply_chat_template(self, prompts, system=None):
        return list(prompts)

    def score(self, prompts, labels):
        mass = np.ones(len(prompts)) if self.mass is None else self.mass
        return np.asarray(self.probs, dtype=float), mass


GOOD = np.array([[0.2, 0.3, 0.5]] * 3)


def test_a_valid_scorer_still_works():
    res = answer_distributions(Returns(GOOD), ITEMS, PLAIN)
    assert res.expected() == pytest.approx([2.3] * 3)


@pytest.mark.parametrize("probs, match", [
    (np.array([[0.2, 0.3, 0.5], [-0.5, 1.0, 0.5], [0.2, 0.3, 0.5]]), r"negative probabilities: item 'q1'"),
    (np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5], [np.nan, 0.5, 0.5]]), r"NaN or infinite probabilities: item 'q2'"),
    (np.array([[0.2, 0.3, 0.5], [0.2, 0.3, 0.5], [np.inf, 0.5, 0.5]]), r"NaN or infinite"),
    (np.array([[2.0, 3.0, 5.0]] * 3), r"do not sum to 1 \(item 'q0' sums to 10; 3 of 3 rows\)"),
    (np.array([[0.1, 0.1, 0.1]] * 3), r"sums to 0.3"),
])
def test_bad_probabilities_from_a_scorer_are_refused(probs, match):
    with pytest.raises(AuditInputError, match=match):
        answer_distributions(Returns(probs), ITEMS, PLAIN)


@pytest.mark.parametrize("mass", [np.array([1.0, 1.5, 1.0]), np.array([1.0, -0.1, 1.0]),
                                  np.array([1.0, np.nan, 1.0])])
def test_bad_on_option_mass_is_refused(mass):
    with pytest.raises(AuditInputError, match=r"on_option_mass outside \[0, 1\]: item 'q1'"):
        answer_distributions(Returns(GOOD, mass), ITEMS, PLAIN)


def test_a_scorer_that_returns_the_wrong_thing():
    class OneArray(Returns):
        def score(self, prompts, labels):
            return GOOD

    class Words(Returns):
        def score(self, prompts, labels):
            return [["a", "b", "c"]] * 3, np.ones(3)

    with pytest.raises(AuditInputError, match=r"must return \(probs, on_option_mass\); got ndarray"):
        answer_distributions(OneArray(GOOD), ITEMS, PLAIN)
    with pytest.raises(AuditInputError, match="not numeric arrays"):
        answer_distributions(Words(GOOD), ITEMS, PLAIN)


def test_item_values_must_be_finite_numbers():
    with pytest.raises(AuditInputError, match="NaN or infinite values"):
        MultipleChoiceItem("x", "text", ("a", "b"), (1, float("nan")))
    with pytest.raises(AuditInputError, match="not numbers"):
        MultipleChoiceItem("x", "text", ("a", "b"), (1, "high"))


class LogitEngine(FakeEngine):
    """Returns what a careless engine might: logits (positive) or NaN instead of log-probabilities."""

    def __init__(self, kind):
        super().__init__()
        self.kind = kind

    def next_token_logprobs(self, texts, token_ids=None):
        n, k = len(texts), len(token_ids)
        if self.kind == "logits":
            return np.full((n, k), 3.0)
        if self.kind == "nan":
            return np.full((n, k), np.nan)
        if self.kind == "-inf":
            return np.full((n, k), -np.inf)
        if self.kind == "probs-as-logprobs":   # log of probabilities that sum above 1
            return np.log(np.full((n, k), 0.9))
        return np.zeros((n + 1, k))            # wrong shape


@pytest.mark.parametrize("kind, match", [("logits", "above 0"), ("nan", "NaN or \\+inf"),
                                         ("probs-as-logprobs", "sum above 1"), ("shape", "shape"),
                                         ("-inf", "probability 0 to every label")])
def test_engine_logprobs_are_checked(kind, match):
    with pytest.raises(ValueError, match=match) as err:
        option_probs(LogitEngine(kind), ["Pick:\n"], ["A", "B"])
    assert isinstance(err.value, scoring.EngineOutputError)
    # through an audit it is an AuditInputError
    with pytest.raises(AuditInputError, match=match):
        answer_distributions(LogprobScorer(LogitEngine(kind)), [MultipleChoiceItem("q", "t", ("a", "b"))], PLAIN)


def test_check_logprobs_accepts_minus_inf_and_rounding():
    out = scoring.check_logprobs([[-np.inf, 0.0], [-0.6931, -0.6931]], 2, 2)
    assert out.shape == (2, 2)


# ------------------------------------------------------------------ scores on the 1-5 scale
def test_a_score_off_the_scale_gets_no_nearest_country():
    human = two_country_distributions(1.0)
    ok = compare_with_countries(pd.Series({f: 3.0 for f in FOUNDATIONS}), human, n_boot=20)
    assert ok.nearest(1) == ["A"]
    with pytest.raises(AuditInputError, match=r"must lie on the 1-5 scale; outside it: care: 99"):
        compare_with_countries(pd.Series({**{f: 3.0 for f in FOUNDATIONS}, "care": 99.0}), human, n_boot=20)
    with pytest.raises(AuditInputError, match=r"outside it: .*: 0"):
        compare_with_countries(pd.Series({f: 0.0 for f in FOUNDATIONS}), human, n_boot=20)
    with pytest.raises(AuditInputError, match=r"NaN or infinite values: care: inf"):
        compare_with_countries(pd.Series({**{f: 3.0 for f in FOUNDATIONS}, "care": np.inf}), human, n_boot=20)
    with pytest.raises(AuditInputError, match=r"must be numbers; not numbers: care: 'high'"):
        compare_with_countries(pd.Series({**{f: 3.0 for f in FOUNDATIONS}, "care": "high"}), human, n_boot=20)
    # rounding at the ends of the scale is not an error
    edge = pd.Series({f: 5.0 + 1e-12 for f in FOUNDATIONS})
    assert compare_with_countries(edge, human, n_boot=20).nearest(1) == ["B"]
    # another scale is allowed when said
    assert compare_with_countries(pd.Series({f: 3.0 for f in FOUNDATIONS}), human, n_boot=20,
                                  scale=(0, 100)).nearest(1) == ["A"]


def test_nearest_country_claim_checks_the_item_scores():
    items = [MultipleChoiceItem(f"i{k}", "t", ("a", "b"), (10, 20), group=f) for k, f in enumerate(FOUNDATIONS)]
    n = len(items)
    p = np.tile([0.5, 0.5], (n, 1))
    runs = [AnswerDistributions(items, PromptDesign(), p, p, np.tile([0, 1], (n, 1)), np.ones(n), [""] * n)]
    with pytest.raises(AuditInputError, match=r"model item scores must lie on the 1-5 scale; outside it: i0: 15"):
        nearest_country_claim(runs, two_country_distributions(1.0), n_boot=20)


def test_steering_scores_and_reference_are_checked():
    groups = list(FOUNDATIONS) * 2
    ref = pd.DataFrame({f: [4.0, 2.0] for f in FOUNDATIONS}, index=["Highland", "Lowland"])
    scores = pd.DataFrame({"neutral": np.full(12, 3.0), "Highland": np.full(12, 3.5)},
                          index=[f"i{k}" for k in range(12)])
    assert steering_from_scores(scores, groups, ref, n_boot=20).table.loc["Highland", "delta"] > 0
    with pytest.raises(AuditInputError, match=r"item scores of 'Highland' must lie on the 1-5 scale; outside it: i3: 99"):
        steering_from_scores(scores.assign(Highland=[3.5] * 3 + [99.0] + [3.5] * 8), groups, ref, n_boot=20)
    with pytest.raises(AuditInputError, match=r"item scores of 'neutral' contain NaN"):
        steering_from_scores(scores.assign(neutral=np.nan), groups, ref, n_boot=20)
    bad_ref = ref.copy()
    bad_ref.loc["Lowland", "care"] = np.nan
    with pytest.raises(AuditInputError, match=r"reference human means of 'Lowland' contain NaN .*care: nan"):
        steering_from_scores(scores, groups, bad_ref, n_boot=20)
    with pytest.raises(AuditInputError, match=r"not in the reference"):
        steering_from_scores(scores.assign(Atlantis=3.0), groups, ref, n_boot=20)


# ------------------------------------------------------------------ a perspective encoder
def test_perspective_encoder_output_is_checked():
    persp = {"a": "alpha", "b": "beta"}
    with pytest.raises(AuditInputError, match="NaN or infinite embeddings"):
        PerspectiveDetector(lambda texts: np.full((len(texts), 4), np.nan), persp).fit()
    with pytest.raises(AuditInputError, match=r"shape \(1, 4\) for 2 texts"):
        PerspectiveDetector(lambda texts: np.ones((1, 4)), persp).fit()
    with pytest.raises(AuditInputError, match="all-zero embedding"):
        PerspectiveDetector(lambda texts: np.zeros((len(texts), 4)), persp).fit()
    det = PerspectiveDetector(lambda texts: np.ones((len(texts), 4)), persp).fit()
    det._encoder = lambda texts: np.ones((len(texts), 3))
    with pytest.raises(AuditInputError, match="width 3"):
        det.transform(["A sentence that is long enough."])
