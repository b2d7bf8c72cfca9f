"""Run notebooks/02_cultural_bias_audit.ipynb with papermill and small parameters; check metrics.json.

Every claim's outcome is asserted exactly: it is decided by its interval, so it is the same under
PLURAL_KIT_DTYPE=float32 and bf16 (run this file under both).
"""
import math

import pytest
from lessons import check_intervals, outcomes, run_lesson

pytestmark = pytest.mark.slow

NOTEBOOK = "02_cultural_bias_audit"
SMALL = {
    "n_items_per_foundation": 1,
    "n_control_pairs": 3,
    "steer_countries": ["United States of America", "Egypt", "Japan"],  # the pooled claim needs several
    "n_variants": 3,
    "n_permutations": 49,
    "n_seegull_pairs": 4,
    "n_questions": 1,
    "max_new_tokens": 8,
    "n_boot": 100,
    "device": "cpu",
}
OUTCOMES = {
    # the 135M model does not tell obvious statements from their opposites ...
    "signal_check_passes": "does not hold",
    # ... because it answers by position
    "answers_follow_position": "holds",
    "nearest_country_ahead": "not distinguishable",
    "steering_moves_toward_country": "not distinguishable",
    "design_moves_more_than_countries": "holds",
    "design_explains_more_than_items": "holds",
    "sides_with_in_region": "not distinguishable",
    # one question: no interval
    "multiplex_more_diverse": "not distinguishable",
    "multi_agent_more_diverse": "not distinguishable",
}


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    out = tmp_path_factory.mktemp("nb02")
    return run_lesson(NOTEBOOK, SMALL, out, cwd=out)


def test_claim_outcomes(metrics):
    assert outcomes(metrics) == OUTCOMES
    check_intervals(metrics)


def test_what_survives_follows_the_signal_check(metrics):
    assert metrics["robustness"]["survives"] == []  # the signal check does not hold: nothing survives
    assert metrics["mfq"]["inconclusive"] is True


def test_signal_check_and_profile(metrics):
    sc = metrics["signal_check"]
    assert isinstance(sc["passed"], bool)
    assert -4 <= sc["difference"]["estimate"] <= 4 and 0 <= sc["share_correct"] <= 1 and 0 <= sc["position_0"] <= 1
    mfq = metrics["mfq"]
    assert mfq["n_items"] == 6
    prof = mfq["profile"]
    for f, v in prof["order_averaged"].items():
        assert 1 <= v <= 5
        assert v == pytest.approx((prof["original"][f] + prof["reversed"][f]) / 2, abs=1e-3)
    for order, row in mfq["position_probs"].items():
        assert sum(row[f"position {j}"] for j in range(1, 6)) == pytest.approx(1, abs=1e-3)
        assert 0 < row["on_option_mass"] <= 1
    assert len(mfq["distance"]) == 21 and all(d >= 0 for d in mfq["distance"].values())
    assert mfq["nearest"][0] == min(mfq["distance"], key=mfq["distance"].get)
    assert metrics["claims"]["nearest_country_ahead"]["details"]["nearest"] == mfq["nearest"][0]


def test_steering_robustness_seegull_perspectives(metrics):
    st = metrics["steering"]
    assert st["countries"] == SMALL["steer_countries"] and 0 <= st["n_moved"] <= 3
    for row in st["table"].values():
        assert row["delta"] == pytest.approx(row["d_neutral"] - row["d_steered"], abs=1e-3)
    mean_delta = sum(r["delta"] for r in st["table"].values()) / 3
    assert metrics["claims"]["steering_moves_toward_country"]["estimate"] == pytest.approx(mean_delta, abs=1e-3)
    rob = metrics["robustness"]
    assert len(rob["variants"]) == 3 and len(rob["scores"]) == 3
    assert 0 <= rob["design_share"] <= 1 and 0 <= rob["item_share"] <= 1
    assert metrics["claims"]["design_explains_more_than_items"]["estimate"] == pytest.approx(
        rob["design_share"] - rob["item_share"], abs=1e-6)
    assert all(0 < p <= 1 for p in rob["permutation_p"].values())
    assert rob["order_correlation"] is None or -1 <= rob["order_correlation"] <= 1
    sg = metrics["seegull"]
    assert sg["n_pairs"] == 4 and 0 <= sg["sim_in"] <= 1 and 0 <= sg["sim_out"] <= 1
    ent = metrics["perspectives"]["entropy"]
    assert set(ent) == {"plain", "multiplex", "multi_agent"}
    assert all(0 <= e["normalized_entropy"] <= 1 for e in ent.values())
    assert math.isfinite(metrics["timing_s"]["total"])
    assert 0 < metrics["peak_rss_mb"] < 1536
