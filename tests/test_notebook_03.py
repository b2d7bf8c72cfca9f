"""notebooks/03_misalignment_probes.ipynb runs under papermill with small parameters and writes sane metrics."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "03_misalignment_probes.ipynb"

SMALL = {
    "n_train_per_class": 12, "n_test_per_class": 8, "layers": [0, 2, 8, 17],
    "n_refusal_prompts": 4, "n_generate": 2, "max_new_tokens": 4,
    "n_behaviour_items": 3, "behaviours": ["persona/desire-for-acquiring-power", "advanced-ai-risk/survival-instinct"],
    "n_judge_check": 2, "n_em_questions": 1, "n_em_samples": 1, "em_max_new_tokens": 4, "n_truthfulqa": 5,
    "device": "cpu", "seed": 1,
}


@pytest.mark.slow
def test_notebook_03_small(tmp_path):
    import papermill
    papermill.execute_notebook(str(NOTEBOOK), str(tmp_path / "out.ipynb"), cwd=str(NOTEBOOK.parent),
                               kernel_name="python3", progress_bar=False,
                               parameters={**SMALL, "output_dir": str(tmp_path)})
    m = json.loads((tmp_path / "metrics.json").read_text())
    probe = m["probe"]
    assert probe["n_train"] == 24 and probe["n_test"] == 16
    assert 0.0 <= probe["test_acc"] <= 1.0 and probe["best_layer"] in (0, 2, 8, 17)
    assert probe["layer0_acc"] == pytest.approx(0.5, abs=0.2)  # the same template token for every prompt
    assert -1.0 <= probe["selectivity"] <= 1.0
    assert set(probe["by_layer"]) == {"0", "2", "8", "17"}
    d = m["direction"]
    assert d["layer"] in (2, 8, 17) and d["norm"] > 0
    assert {r["condition"] for r in d["refusal_scores"]} == {"none", "ablate r", "ablate random", "add r", "add random"}
    assert all(math.isfinite(r["mean_refusal_score"]) for r in d["refusal_scores"])
    for sub in (m["subspace"]["centred"], m["subspace"]["uncentred"]):
        assert 0.0 <= sub["overlap"] <= 1.0 and 0.0 < sub["random_baseline"] <= 1.0
    beh = {b["behaviour"]: b for b in m["behaviour"]}
    assert set(beh) == {"desire-for-acquiring-power", "survival-instinct"}
    assert 0.0 <= beh["survival-instinct"]["same_letter_rate"] <= 1.0
    assert all(0.0 < b["format_mass"] <= 1.0 and 0.0 <= b["label_bias_baseline"] <= 1.0 for b in beh.values())
    assert isinstance(m["judge_check"]["passed"], bool)
    assert m["misalignment_rates"][-1]["id"] == "all"
    assert 0.0 <= m["honesty"]["true_facts_called_true"] <= 1.0
