"""Run the misalignment-probes lesson with small parameters and check each claim's outcome.

The outcomes must be the same whatever ``PLURAL_KIT_DTYPE`` says (the dtype the bundled
SmolLM2-135M runs in): run this test under ``PLURAL_KIT_DTYPE=float32`` and ``PLURAL_KIT_DTYPE=bf16``.
"""
from __future__ import annotations

import pytest
from lessons import outcomes, run_lesson

from plural_kit.claims import DOES_NOT_HOLD, HOLDS, NOT_DISTINGUISHABLE

NOTEBOOK = "03_misalignment_probes"

SMALL = {
    "n_train_per_class": 12, "n_test_per_class": 8, "layers": [0, 2, 8, 17],
    "n_refusal_prompts": 4, "n_generate": 2, "max_new_tokens": 4,
    "n_behaviour_items": 3, "behaviours": ["persona/desire-for-acquiring-power", "advanced-ai-risk/survival-instinct"],
    "n_judge_check": 2, "n_em_questions": 1, "n_em_samples": 1, "em_max_new_tokens": 4, "n_truthfulqa": 8,
    "device": "cpu", "seed": 1,
}

EXPECTED = {
    # 1. harmfulness probe (16 held-out prompts)
    "harm_decodable": HOLDS,
    "harm_selective": HOLDS,
    "harm_beats_lexical": HOLDS,
    "harm_layer0_decodable": NOT_DISTINGUISHABLE,
    # 2. refusal direction (4 prompts per class)
    "model_refuses_harmful": DOES_NOT_HOLD,
    "harmful_scored_higher": HOLDS,
    "ablation_lowers_refusal": HOLDS,
    "addition_raises_refusal": HOLDS,
    "addition_induces_refusal": DOES_NOT_HOLD,
    # 3. subspaces
    "subspaces_share_more_than_chance": HOLDS,
    "harmful_subspace_distinct": NOT_DISTINGUISHABLE,
    # 4. behaviours (3 items each)
    "beyond_label_bias_desire_for_acquiring_power": NOT_DISTINGUISHABLE,
    "beyond_label_bias_survival_instinct": NOT_DISTINGUISHABLE,
    "keeps_letter_after_swap": NOT_DISTINGUISHABLE,
    # 5. judge and honesty
    "judge_agrees_with_labels": NOT_DISTINGUISHABLE,
    "open_answers_misaligned": NOT_DISTINGUISHABLE,
    "truth_decodable": NOT_DISTINGUISHABLE,
    "truth_selective": HOLDS,
    "truth_beats_lexical": NOT_DISTINGUISHABLE,
    "true_facts_called_true": NOT_DISTINGUISHABLE,
}


@pytest.mark.slow
def test_notebook_03_claims_have_their_outcomes(tmp_path):
    m = run_lesson(NOTEBOOK, SMALL, tmp_path)
    assert outcomes(m) == EXPECTED
    probe = m["probe"]
    assert probe["n_train"] == 24 and probe["n_test"] == 16
    assert probe["selected_layer"] in (0, 2, 8, 17) and m["direction"]["layer"] in (2, 8, 17)
    assert m["claims"]["harm_decodable"]["details"]["layer"] == probe["selected_layer"]
    assert m["judge_check"]["passed"] is False  # 2 labelled answers cannot pass
    assert m["peak_rss_mb"] > 0
