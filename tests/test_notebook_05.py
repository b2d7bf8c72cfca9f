"""Run lesson 05 (rankings, tournament designs, the bundled SmolLM2 as a judge of HH-RLHF pairs,
whose leaderboard) with small parameters and check each claim's outcome.

The outcomes must not depend on the judge's dtype: run this test under
``PLURAL_KIT_DTYPE=float32`` and ``PLURAL_KIT_DTYPE=bf16``.
"""

import pytest
from lessons import outcomes, run_lesson

from plural_kit.claims import DOES_NOT_HOLD, HOLDS, NOT_DISTINGUISHABLE

NOTEBOOK = "05_rankings_and_judges"

SMALL = {"n_matches": 200, "n_orders": 30, "design_items": 8, "budgets": [10, 30, 120], "n_sims": 8,
         "n_judge_pairs": 8, "max_pair_chars": 450, "group_judgments": [2400, 2100, 1500], "n_boot": 100, "seed": 0,
         "device": "cpu"}

EXPECTED = {
    # section 1: simulated arena
    "elo_depends_on_order": HOLDS,
    "bt_best_above_worst": HOLDS,
    "bt_separates_neighbours": NOT_DISTINGUISHABLE,
    # section 2: designs
    "round_robin_reaches_target": HOLDS,
    "swiss_beats_round_robin_early": NOT_DISTINGUISHABLE,
    "elimination_beats_round_robin_early": NOT_DISTINGUISHABLE,
    # section 3: the 135M judge (a strong pull to the first slot; near chance once both orders are averaged)
    "judge_position_bias": HOLDS,
    "judge_order_flips_verdicts": HOLDS,
    "judge_beats_chance": NOT_DISTINGUISHABLE,
    "longer_reply_beats_chance": DOES_NOT_HOLD,  # harmless replies are often the short refusals
    # section 4: three consistent groups
    "mixture_finds_the_groups": HOLDS,
    "pooled_majorities_cycle": HOLDS,
    "pooled_bt_sides_with_largest_group": HOLDS,
    "borda_serves_worst_off_better": NOT_DISTINGUISHABLE,
    "copeland_serves_worst_off_better": HOLDS,
    "groups_equal_serves_worst_off_better": NOT_DISTINGUISHABLE,
}


@pytest.mark.slow
def test_notebook_claims_have_their_outcomes(tmp_path):
    m = run_lesson(NOTEBOOK, SMALL, tmp_path)
    assert m["model_name"] == "smollm2-135m-instruct"
    assert outcomes(m) == EXPECTED
    assert len(m["arena"]["order"]) == 8 and m["arena"]["n_comparisons"] == 200
    assert {row["judgments"] for row in m["designs"]["table"]} == {10, 30, 120}
    assert [row["view"] for row in m["judge"]["table"]] == ["x_first", "x_second", "p_averaged", "verdicts_averaged"]
    assert all(row["n"] == 8 for row in m["judge"]["table"])
    assert m["claims"]["judge_beats_chance"]["method"].startswith("bootstrap over 8 pairs")
    assert 0 < m["peak_rss_mb"] < 1536
