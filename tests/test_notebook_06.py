"""Run the noise-or-disagreement lesson with small parameters and check each claim's outcome.

The outcomes must be the same whatever ``PLURAL_KIT_DTYPE`` says (it sets the Hessian dtype of
the Newton fitters) and on any CPU: run this test under ``PLURAL_KIT_DTYPE=float32`` and
``PLURAL_KIT_DTYPE=bf16``. They are also the outcomes of the default run.
"""
import json
from pathlib import Path

import papermill as pm

from plural_kit.claims import HOLDS, NOT_DISTINGUISHABLE

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_noise_or_disagreement.ipynb"

SMALL = dict(
    n_users=30, pairs_per_user=80, users_per_source=10, source_pairs=80, n_prompts=120, n_candidates=6,
    n_new_users=20, shots=15, n_values=16, n_unseen=6, seed=0, device="cpu",
)

EXPECTED = {
    # section 1: noise or a view
    "reliability_recovers_eta": HOLDS,
    "mixture_gains_on_noise": NOT_DISTINGUISHABLE,
    "mixture_serves_minority_view": HOLDS,
    "reliability_calls_view_noise": HOLDS,
    # section 2: combining rewards
    "conjunction_all_above": HOLDS,
    # section 3: a user who weighs objectives, calibration per source
    "weights_recovered": HOLDS,
    "weights_help": HOLDS,
    "head_calibrated_helpful": HOLDS,
    "head_calibrated_harmless": HOLDS,
    # section 4: a stated value never seen
    "conditioned_generalises": HOLDS,
}


def test_notebook_claims_have_their_outcomes(tmp_path):
    pm.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "out.ipynb"), parameters={**SMALL, "output_dir": str(tmp_path)},
        kernel_name="python3", cwd=str(NOTEBOOK.parent), progress_bar=False,
    )
    m = json.loads((tmp_path / "metrics.json").read_text())
    outcomes = {name: claim["outcome"] for name, claim in m["claims"].items()}
    assert outcomes == EXPECTED
    assert set(m) >= {"noise_or_view", "best_of_n", "user_weights", "calibration_by_source", "stated_values"}
    assert m["best_of_n"]["n_candidates"] == 6 and m["user_weights"]["shots"] == 15
    assert m["stated_values"]["n_train_values"] == 10
    assert 0 < m["noise_or_view"]["planted_minority_eta"] < 0.8
    assert 0 < m["peak_rss_mb"] < 1536
