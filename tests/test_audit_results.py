"""Every audit result follows the result protocol (plural_kit.results.check_result), with fake scorers."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np
import pandas as pd
import pytest

from plural_kit import audit, viz
from plural_kit.audit import PromptDesign
from plural_kit.data import FOUNDATIONS, country_foundation_distributions, load_mfq2_items, load_seegull
from plural_kit.results import check_result
from tests.test_audit_mfq import CountryPersona, FakeLM, FirstOption, Reader, keyword_encoder
from tests.test_audit_robustness import PositionScorer, make_items


@pytest.fixture(scope="module")
def human():
    return country_foundation_distributions()


@pytest.fixture(scope="module")
def items():
    return audit.mfq_items(load_mfq2_items(), 1)


def _profile(items, human):
    return audit.mfq_profile(FirstOption(), items, human)


def _robustness():
    designs = audit.design_variants(PromptDesign(), n_random_orders=1, responses=("label",), chat_template=(True,))
    ref = pd.DataFrame({"care": [2.0, 4.0, 3.0], "purity": [3.0, 3.5, 2.5]}, index=["X", "Y", "Z"])
    return audit.robustness_audit(PositionScorer(0), make_items(), designs, reference=ref, n_resamples=19)


def _steering(items):
    ref = pd.DataFrame([[5.0] * 6, [3.0] * 6, [1.0] * 6], index=["Testland", "Midland", "Lowland"],
                       columns=list(FOUNDATIONS))
    return audit.steering_audit(CountryPersona(), items, ["Testland", "Lowland"], ref, n_boot=50)


def _perspectives():
    persp = {"islamic": "Allah", "confucian": "ancestors", "western_secular": "reason"}
    det = audit.PerspectiveDetector(encoder=keyword_encoder, perspectives=persp, threshold=0.5).fit()
    return audit.perspective_audit(FakeLM(), det, ["Q1?", "Q2?"], agents=("islamic", "confucian"), n_boot=50)


def _opinions():
    its = [audit.MultipleChoiceItem("q0", "Is A good?", ("Yes", "No")),
           audit.MultipleChoiceItem("q1", "Pick a colour.", ("Red", "Green", "Blue"))]
    return audit.opinion_distributions(FirstOption(), its)


def _similarity():
    tidy = pd.DataFrame({"question_id": ["q0", "q0", "q1", "q1"], "country": ["X", "Y", "X", "Y"],
                         "distribution": [[0.5, 0.5], [0.9, 0.1], [0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]})
    return audit.country_similarity(_opinions(), tidy, n_boot=50)


BUILDERS = {
    "AnswerDistributions": lambda items, human: audit.answer_distributions(FirstOption(), items),
    "SignalCheck": lambda items, human: audit.signal_check(Reader(), n_boot=50),
    "MFQProfile": _profile,
    "CountryComparison": lambda items, human: _profile(items, human).compare(n_boot=50),
    "RobustnessResult": lambda items, human: _robustness(),
    "Verdict": lambda items, human: _robustness().verdict(True, n_boot=50),
    "SteeringResult": lambda items, human: _steering(items),
    "StereotypeResult": lambda items, human: audit.stereotype_audit(
        FirstOption(), audit.seegull_pairs(load_seegull("global"), 5, seed=0), n_boot=50),
    "PerspectiveResult": lambda items, human: _perspectives(),
    "OpinionDistributions": lambda items, human: _opinions(),
    "CountrySimilarity": lambda items, human: _similarity(),
}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_every_audit_result_follows_the_protocol(name, items, human):
    result = BUILDERS[name](items, human)
    assert type(result).__name__ == name
    check_result(result)
    frame = result.to_frame()
    assert not any(c in ("low", "high") for c in frame.columns)
    json.dumps(result.to_dict(), allow_nan=False)


def test_audit_exports_every_result_class():
    assert set(BUILDERS) <= set(audit.__all__)


def test_robustness_repr_is_short_and_to_dict_feeds_metrics():
    res = _robustness()
    assert len(repr(res)) < 200 and repr(res).startswith("<RobustnessResult: variants=")
    d = res.to_dict()
    assert d["variants"] == list(res.scores.index) and 0 <= d["design_share"] <= 1
    v = res.verdict(False, n_boot=50)
    assert v.to_dict()["survives"] == [] and "NOTHING" in str(v)


def test_profile_to_frame_and_position(items, human):
    prof = _profile(items, human)
    frame = prof.to_frame()
    assert list(frame.columns) == ["original", "reversed", "order_averaged", "human_mean_all"]
    np.testing.assert_allclose(frame["order_averaged"], (frame["original"] + frame["reversed"]) / 2)
    assert (frame["original"] == 1).all() and (frame["reversed"] == 5).all()  # the first option in each order
    pos = prof.position()
    assert pos.loc["original", "position 1"] == 1.0 and np.allclose(pos["on_option_mass"], 0.8)
    claims = prof.claims(n_boot=50)
    assert claims.outcomes()["answers_follow_position"] == "holds"
    assert set(claims.outcomes()) == {"answers_follow_position", "nearest_country_ahead"}


def test_viz_audit_figures_draw_what_they_are_given():
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [0.5, 2.5, 3.0], "ok": [True, False, False]},
                         index=["x", "y", "z"])
    ax = viz.arrows(frame, start="a", end="b", good="ok")
    assert len(ax.texts) == 3 and [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z"]
    plt.close(ax.figure)
    ax = viz.versus(frame, x="a", y="b", lims=(0, 4))
    assert ax.collections[0].get_offsets().shape == (3, 2) and ax.get_xlim() == (0, 4)
    plt.close(ax.figure)
    ax = viz.bars(frame[["a", "b"]], ylabel="share")
    assert len(ax.patches) == 6 and ax.get_ylabel() == "share"
    plt.close(ax.figure)
    long = pd.DataFrame({"g": ["x", "x", "y"], "v": [1.0, 2.0, 3.0], "h": ["p", "q", "p"]})
    ax = viz.strip(long, x="g", y="v", hue="h", bands={"x": (0.5, 2.5)})
    assert len(ax.patches) >= 1 and ax.patches[0].get_height() == pytest.approx(2.0)
    plt.close(ax.figure)
    ax = viz.boxes(long, x="g", y="v", points={"model": pd.Series({"x": 1.5, "y": 2.5})})
    assert "model" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(ax.figure)
