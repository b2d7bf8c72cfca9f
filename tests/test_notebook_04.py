"""Run the lesson on real text (persona statements embedded by the bundled SmolLM2) with small
parameters and check each claim's outcome.

The outcomes must not depend on the embedding dtype: run this test under
``PLURAL_KIT_DTYPE=float32`` and ``PLURAL_KIT_DTYPE=bf16``.
"""

import pytest
from lessons import outcomes, run_lesson

from plural_kit.claims import HOLDS, NOT_DISTINGUISHABLE

NOTEBOOK = "04_pluralistic_rewards_on_real_text"

# One trait and two groups: the only two groups there are, +openness and -openness, which
# disagree on every pair — whatever the seed draws.
SMALL = dict(
    traits=["openness"], n_groups=2, traits_per_group=1, users_per_group=8, n_train_pairs=20, n_test_pairs=10,
    unseen_users_per_group=6, shots=[0, 2], few_shots=2, n_components=16, vpl_steps=1000, seed=0, device="cpu",
)

EXPECTED = {
    "hidden_states_carry_every_trait": HOLDS,
    # seen users
    "bt_short_of_oracle": HOLDS,
    "bt_underfits": HOLDS,
    "mixture_beats_bt": HOLDS,
    "pal_beats_bt": HOLDS,
    "vpl_beats_bt": HOLDS,
    "bt_worst_group_below_chance": NOT_DISTINGUISHABLE,
    "mixture_worst_group_beats_bt": HOLDS,
    "pal_worst_group_beats_bt": HOLDS,
    "vpl_worst_group_beats_bt": HOLDS,
    # unseen users
    "bt_few_shot_gain": HOLDS,
    "mixture_few_shot_gain": HOLDS,
    "pal_few_shot_gain": HOLDS,
    "vpl_few_shot_gain": HOLDS,
    "vpl_fewest_shots_gain": HOLDS,
    "mixture_beats_bt_unseen": HOLDS,
    "pal_beats_bt_unseen": HOLDS,
    "vpl_beats_bt_unseen": HOLDS,
    # user representations
    "mixture_users_cluster_by_group": HOLDS,
    "pal_users_cluster_by_group": HOLDS,
    "vpl_users_cluster_by_group": HOLDS,
}


@pytest.mark.slow
def test_notebook_claims_have_their_outcomes(tmp_path):
    # A cache of its own, so that the test embeds from scratch (in the dtype it runs in).
    m = run_lesson(NOTEBOOK, {**SMALL, "embedding_cache": str(tmp_path / "cache")}, tmp_path)
    assert m["model_name"] == "smollm2-135m-instruct" and m["layer"] == -2
    assert sorted(m["data"]["groups"].values()) == ["+openness", "-openness"]
    splits = dict(zip(m["data"]["splits"]["split"], m["data"]["splits"]["pairs"]))
    assert splits == {"train": 16 * 20, "test": 16 * 10, "unseen_adapt": 12 * 2, "unseen_test": 12 * 10}
    assert outcomes(m) == EXPECTED
    assert all("users" in claim["method"] or "Wilson" in claim["method"] for claim in m["claims"].values())
    assert sorted(set(m["unseen_users"]["shots"])) == [0, 2]
    assert 0 < m["peak_rss_mb"] < 1536
