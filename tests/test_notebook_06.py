"""Run the noise-or-disagreement lesson with small parameters and check each claim's outcome.

Section 2 embeds persona statements with the bundled SmolLM2 (slow). The outcomes must be the
same whatever ``PLURAL_KIT_DTYPE`` says (the embedding dtype, and the Hessian dtype of the Newton
fitters) and on any CPU: run this test under ``PLURAL_KIT_DTYPE=float32`` and
``PLURAL_KIT_DTYPE=bf16``. They are also the outcomes of the default run.
"""

import pytest
from lessons import outcomes, run_lesson

from plural_kit.claims import DOES_NOT_HOLD, HOLDS, NOT_DISTINGUISHABLE

NOTEBOOK = "06_noise_or_disagreement"

SMALL = dict(
    n_users=30, pairs_per_user=80, trait_pairs=150, held_out_pairs=60, n_prompts=120, n_candidates=8,
    users_per_source=10, source_pairs=80,
    n_new_users=20, shots=15, n_values=16, n_unseen=6, seed=0, device="cpu",
)

EXPECTED = {
    # section 1: noise or a view
    "reliability_recovers_eta": HOLDS,
    "mixture_gains_on_noise": NOT_DISTINGUISHABLE,
    "mixture_serves_minority_view": HOLDS,
    "reliability_calls_view_noise": HOLDS,
    # section 2: combining rewards on persona statements (the heads agree: the raw sum does better)
    "wide_head_ranks_other_trait": HOLDS,
    "conjunction_all_above": DOES_NOT_HOLD,
    # section 3: a user who weighs objectives, calibration per source
    "weights_recovered": HOLDS,
    "weights_help": HOLDS,
    "head_calibrated_helpful": HOLDS,
    "head_calibrated_harmless": HOLDS,
    # section 4: a stated value never seen
    "conditioned_generalises": HOLDS,
}


@pytest.mark.slow
def test_notebook_claims_have_their_outcomes(tmp_path):
    m = run_lesson(NOTEBOOK, SMALL, tmp_path)
    assert outcomes(m) == EXPECTED
    assert set(m) >= {"noise_or_view", "head_transfer", "best_of_n", "user_weights", "calibration_by_source", "stated_values"}
    assert m["best_of_n"]["n_candidates"] == 8 and m["user_weights"]["shots"] == 15
    assert m["stated_values"]["n_train_values"] == 10
    assert 0 < m["noise_or_view"]["planted_minority_eta"] < 0.8
    assert 0 < m["peak_rss_mb"] < 1536


def test_section_two_functions_on_planted_embeddings():
    """Section 2's pipeline on embeddings where each trait's label is one coordinate: each head
    ranks its own trait, results follow the protocol, the winners' texts are the candidates'."""
    import numpy as np
    import pandas as pd

    from plural_kit.data import make_persona_preferences
    from plural_kit.results import check_result
    from plural_kit.reward.worlds import head_transfer, rerank_statements, trait_heads

    traits = ["agreeableness", "conscientiousness"]
    prefs = make_persona_preferences(traits, groups=[{t: 1} for t in traits], users_per_group=1,
                                     unseen_users_per_group=0, n_train_pairs=60, n_test_pairs=30, n_adapt_pairs=0)
    rng = np.random.default_rng(0)
    rows = {}
    for t_idx, t in enumerate(traits):
        part = prefs[prefs["trait"] == t]
        for col, sign in (("chosen", 1.0), ("rejected", -1.0)):
            for text in part[col]:
                x = 0.3 * rng.standard_normal(4)
                x[t_idx] += sign
                rows[text] = x
    X = pd.DataFrame.from_dict(rows, orient="index")
    heads = trait_heads(X, prefs, reliability=1.0, seed=0, device="cpu")
    transfer = head_transfer(heads, X, prefs)
    check_result(transfer, plot=False)
    assert (np.diag(transfer.correct / transfer.pairs) > 0.9).all()
    best = rerank_statements(heads, X, prefs, n_prompts=20, n_candidates=4, seed=0)
    check_result(best, plot=False)
    first = best.to_frame()["response"].iloc[0].split(" / ")
    assert first[0] in set(prefs["chosen"]) | set(prefs["rejected"]) and len(first) == 2
    with pytest.raises(ValueError, match="reliability"):
        trait_heads(X, prefs, reliability=0.4)
    with pytest.raises(ValueError, match="two traits"):
        trait_heads(X, prefs[prefs["trait"] == traits[0]])
