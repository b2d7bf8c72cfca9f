"""Run notebooks/02_cultural_bias_audit.ipynb with papermill and small parameters; check metrics.json."""
import json
import math
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "02_cultural_bias_audit.ipynb"
SMALL = {
    "n_items_per_foundation": 1,
    "n_control_pairs": 3,
    "steer_countries": ["Japan"],
    "n_variants": 3,
    "n_permutations": 49,
    "n_seegull_pairs": 4,
    "n_questions": 1,
    "max_new_tokens": 8,
    "n_boot": 100,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def metrics(tmp_path_factory, plural_kit_data_home):
    import papermill
    out = tmp_path_factory.mktemp("nb02")
    papermill.execute_notebook(str(NOTEBOOK), str(out / "out.ipynb"), parameters={**SMALL, "output_dir": str(out)},
                               kernel_name="python3", cwd=str(out), progress_bar=False)
    return json.loads((out / "metrics.json").read_text())


def test_signal_check_and_profile(metrics):
    sc = metrics["signal_check"]
    assert isinstance(sc["passed"], bool)
    assert -4 <= sc["difference"][0] <= 4 and 0 <= sc["share_correct"] <= 1 and 0 <= sc["position_0"] <= 1
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
    assert mfq["inconclusive"] == (not sc["passed"])


def test_steering_robustness_seegull_perspectives(metrics):
    st = metrics["steering"]
    assert st["countries"] == ["Japan"] and 0 <= st["n_moved"] <= 1
    row = st["table"]["Japan"]
    assert row["delta"] == pytest.approx(row["d_neutral"] - row["d_steered"], abs=1e-3)
    rob = metrics["robustness"]
    assert len(rob["variants"]) == 3 and len(rob["scores"]) == 3
    assert 0 <= rob["design_share"] <= 1 and 0 <= rob["item_share"] <= 1
    assert all(0 < p <= 1 for p in rob["permutation_p"].values())
    assert rob["order_correlation"] is None or -1 <= rob["order_correlation"] <= 1
    if not metrics["signal_check"]["passed"]:
        assert rob["survives"] == []
    sg = metrics["seegull"]
    assert sg["n_pairs"] == 4 and 0 <= sg["sim_in"] <= 1 and 0 <= sg["sim_out"] <= 1
    assert sg["sides_with"] in {"in_region", "out_of_region", "neither"}
    ent = metrics["perspectives"]["entropy"]
    assert set(ent) == {"plain", "multiplex", "multi_agent"}
    assert all(0 <= e["normalized_entropy"] <= 1 for e in ent.values())
    assert math.isfinite(metrics["timing_s"]["total"])
