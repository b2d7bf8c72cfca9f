"""Run notebooks/07_real_people.ipynb with papermill and small parameters; check metrics.json.

Every claim's outcome is asserted exactly: it is decided by its interval, so it is the same under
PLURAL_KIT_DTYPE=float32 and bf16 (run this file under both).
"""

import pytest
from lessons import check_intervals, outcomes, run_lesson

pytestmark = pytest.mark.slow

NOTEBOOK = "07_real_people"
SMALL = {
    "n_items_per_domain": 1,
    "n_control_pairs": 2,
    "n_variants": 3,
    "n_permutations": 99,
    "n_align_people": 40,
    "n_persona_items": 3,
    "vpl_steps": 100,
    "n_rsa_items": 30,
    "n_rsa_personas": 5,
    "n_boot": 200,
    "embedding_cache": "none",
    "device": "cpu",
}
OUTCOMES = {
    "women_higher_neuroticism": "holds",                  # data only
    "signal_check_passes": "does not hold",              # the 135M model does not read the statements
    "answers_follow_position": "not distinguishable",   # 5 items x 2 orders
    "nearest_sex_ahead": "not distinguishable",
    "nearest_age_ahead": "not distinguishable",
    "design_moves_more_than_countries": "holds",
    "design_explains_more_than_items": "holds",
    "own_domain_means_beats_population_mean": "not distinguishable",
    "own_offset_beats_population_mean": "holds",         # data only
    "persona_prompt_beats_population_mean": "does not hold",
    "steering_beats_population_mean": "does not hold",      # nor can steering make it answer as a person
    "bt_beats_chance": "holds",
    "mixturebt_beats_bt": "not distinguishable",
    "pal_beats_bt": "not distinguishable",
    "vpl_beats_bt": "not distinguishable",
    "bt_few_shot_gain": "not distinguishable",
    "mixture_groups_follow_sex": "not distinguishable",
    "mixture_groups_differ_in_age": "not distinguishable",
    "mixture_groups_differ_in_big_five": "holds",        # the groups are personalities, not demographics
    "people_halves_agree": "holds",                      # data only
    "hidden_states_like_people": "holds",
    "persona_answers_like_people": "not distinguishable",
    "hidden_states_like_each_person": "holds",
    "others_nearer_a_person_than_hidden_states": "holds",
}


@pytest.fixture(scope="module")
def metrics(tmp_path_factory):
    out = tmp_path_factory.mktemp("nb07")
    return run_lesson(NOTEBOOK, SMALL, out, cwd=out)


def test_claim_outcomes(metrics):
    assert outcomes(metrics) == OUTCOMES
    check_intervals(metrics)


def test_metrics_shape(metrics):
    assert metrics["model_name"] == "smollm2-135m-instruct"
    assert set(metrics["profile"]["profile"]) == {"O", "C", "E", "A", "N"}
    assert len(metrics["profile"]["nearest"]) == 5
    assert set(metrics["alignment"]["table"][0]) >= {"method", "mae", "ci_low", "ci_high"}
    assert metrics["rsa"]["model"]["n_items"] == 30 and 0 <= metrics["rsa"]["model"]["p_value"] <= 1
    assert metrics["rsa"]["persona"]["n_items"] == 30 and metrics["rsa"]["people"]["other people"]["count"] == 300
    assert len(metrics["alignment"]["steering_strengths"]) == 4
    assert 0 < metrics["peak_rss_mb"] < 1500
