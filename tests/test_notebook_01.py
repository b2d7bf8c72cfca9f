"""Run the mixture-modeling lesson with small parameters and check each claim's outcome.

The outcomes must be the same whatever ``PLURAL_KIT_DTYPE`` says (it sets the Hessian dtype of
the Newton fitters) and on any CPU: run this test under ``PLURAL_KIT_DTYPE=float32`` and
``PLURAL_KIT_DTYPE=bf16``. They are also the outcomes of the default run.
"""

from lessons import outcomes, run_lesson

from plural_kit.claims import HOLDS, NOT_DISTINGUISHABLE

NOTEBOOK = "01_mixture_modeling"

SMALL = dict(
    n_items=150, n_features=4, n_groups=2, users_per_group=20, pairs_per_user=60,
    disagreements=[0.0, 1.0], pairs_grid=[10, 40], shots=[5, 20], few_shots=5, seed=0, device="cpu",
)

EXPECTED = {
    # section 1: one reward for a mixture
    "bt_short_of_oracle": HOLDS,
    "bt_gap_grows_with_disagreement": HOLDS,
    "mixture_beats_bt_when_groups_disagree": HOLDS,
    "mixture_beats_bt_when_groups_agree": NOT_DISTINGUISHABLE,
    "bt_short_of_oracle_with_most_data": HOLDS,
    "more_data_shrinks_bt_gap": NOT_DISTINGUISHABLE,
    "mixture_short_of_oracle_with_most_data": NOT_DISTINGUISHABLE,
    # section 2: ideal points
    "mixture_recovers_groups": HOLDS,
    "pal_recovers_groups": HOLDS,
    "linear_mixture_short_of_oracle": HOLDS,
    "squared_norm_helps_mixture": HOLDS,
    "mixture_beats_bt": HOLDS,
    "pal_beats_bt": HOLDS,
    "mixture_worst_group_beats_bt": HOLDS,
    "pal_worst_group_beats_bt": HOLDS,
    # section 3: new users
    "mixture_few_shot_gain": HOLDS,
    "pal_few_shot_gain": HOLDS,
    "bt_few_shot_gain": NOT_DISTINGUISHABLE,
    "mixture_beats_bt_few_shot": HOLDS,
    "mixture_short_of_oracle_most_shots": NOT_DISTINGUISHABLE,
    # section 4: calibration
    "bt_less_calibrated_than_oracle": NOT_DISTINGUISHABLE,
    "mixture_less_calibrated_than_oracle": NOT_DISTINGUISHABLE,
    "pal_less_calibrated_than_oracle": NOT_DISTINGUISHABLE,
    "bt_less_sharp": HOLDS,
}


def test_notebook_claims_have_their_outcomes(tmp_path):
    m = run_lesson(NOTEBOOK, SMALL, tmp_path)
    assert outcomes(m) == EXPECTED
    # every claim says how its interval was made, over users
    assert all("users" in claim["method"] for claim in m["claims"].values())
    assert m["gap_vs_disagreement"]["disagreement"] == [0.0, 1.0]
    assert set(m["new_user_accuracy_vs_own_pairs"]["shots"]) == {0, 5, 20}
    assert 0 < m["peak_rss_mb"] < 1536
