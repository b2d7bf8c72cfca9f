"""Personality audit (keyed items, placement among people), alignment baselines, steering strength search, RSA."""
import numpy as np
import pandas as pd
import pytest
from scipy import stats as st
from tiny_models import tiny_causal_lm

from plural_kit.audit import AnswerScorer, PromptDesign, answer_distributions
from plural_kit.audit.personality import (
    IPIP_INSTRUCTION,
    alignment_study,
    item_structure,
    persona_prompt,
    persona_ratings,
    personality_alignment,
    personality_items,
    personality_profile,
    statement,
    steered_answers,
    trait_directions,
)
from plural_kit.audit.rsa import (
    answer_dissimilarity,
    cosine_dissimilarity,
    person_rsa,
    rsa,
    upper_triangle,
)
from plural_kit.data.papi import DOMAINS, PAPI, personality_scores
from plural_kit.engine import ForwardEngine
from plural_kit.results import check_result

PLAIN = PromptDesign(instruction=IPIP_INSTRUCTION, instruction_name="ipip", chat_template=False)


class LastOption(AnswerScorer):
    """Puts all its probability on the last displayed option."""

    def apply_chat_template(self, prompts, system=None):
        return list(prompts)

    def score(self, prompts, labels):
        p = np.zeros((len(prompts), len(labels[0])))
        p[:, -1] = 1.0
        return p, np.ones(len(prompts))


def synthetic_papi(n_people: int = 120, items_per_domain: int = 12, difficulty_sd: float = 0.8, noise: float = 0.6,
                   seed: int = 0) -> PAPI:
    """People with a latent trait per domain; answer = item difficulty + key * trait + noise, on 1-5."""
    rng = np.random.default_rng(seed)
    rows, n = [], items_per_domain * len(DOMAINS)
    domains = np.tile(DOMAINS, items_per_domain)
    keys = np.where(np.arange(n) % 3 == 0, -1, 1)
    items = pd.DataFrame({"item": [f"i{k + 1}" for k in range(n)], "text": [f"Statement {k}." for k in range(n)],
                          "facet": [f"{d}{k % 2}" for k, d in enumerate(domains)], "domain": domains, "key": keys,
                          "short_form": np.arange(n) < n // 2})
    difficulty = 3 + difficulty_sd * rng.standard_normal(n)
    traits = rng.standard_normal((n_people, len(DOMAINS)))
    col = np.array([DOMAINS.index(d) for d in domains])
    answers = np.clip(np.rint(difficulty + keys * traits[:, col] + noise * rng.standard_normal((n_people, n))), 1, 5)
    for p in range(n_people):
        for k in range(n):
            rows.append({"person": p, "sex": ["male", "female"][p % 2], "age": 20 + p % 40, "country": "X",
                         "item": items["item"][k], "answer": int(answers[p, k])})
    return PAPI(pd.DataFrame(rows), items)


@pytest.fixture(scope="module")
def people():
    return synthetic_papi()


def test_statement_and_keyed_items(people):
    assert statement("Worry about things.") == "I worry about things."
    assert statement("I am here.") == "I am here."
    items = personality_items(people.items)
    assert [it.values for it in items[:2]] == [(5, 4, 3, 2, 1), (1, 2, 3, 4, 5)]       # item 0 is reverse-keyed
    assert all(it.values == (1, 2, 3, 4, 5) for it in personality_items(people.items, keyed=False))
    assert len(personality_items(people.items, n_per_domain=2)) == 10


def test_profile_scores_keyed_answers_and_places_them(people):
    items = personality_items(people.items)
    prof = personality_profile(LastOption(), items, people, PLAIN, orders=("original",), by=("sex",))
    keys = people.items.set_index("item")["key"]
    expected = pd.Series({d: np.mean([5 if keys[it.id] > 0 else 1 for it in items if it.group == d]) for d in DOMAINS})
    pd.testing.assert_series_equal(prof.scores, expected, check_names=False)
    frame = prof.to_frame()
    scores = personality_scores(people)
    for d in DOMAINS:
        assert frame.loc[d, "percentile"] == pytest.approx(100 * np.mean(scores[d] <= expected[d]))
    near = prof.nearest(3)
    dist = (scores - expected).abs().mean(axis=1).sort_values()
    assert list(near.index) == list(dist.index[:3])
    assert prof.compare("sex", n_boot=50).table.shape[0] == 2
    assert [c.name for c in prof.claims(n_boot=50)] == ["answers_follow_position", "nearest_sex_ahead"]
    check_result(prof)


@pytest.fixture(scope="module")
def tiny_engine(tokenizer):
    return ForwardEngine(tiny_causal_lm(tokenizer), tokenizer, device="cpu", dtype="float32", progress=False)


def test_audit_on_a_tiny_model(tiny_engine, people):
    items = personality_items(people.items, n_per_domain=2)
    prof = personality_profile(tiny_engine, items, people, PLAIN, by=("sex",))
    assert len(prof.runs) == 2 and prof.scores.between(1, 5).all()
    check_result(prof)
    al = personality_alignment(people, [0, 1, 2], engine=tiny_engine, design=PLAIN,
                               test_items=list(people.items["item"][~people.items["short_form"]][:4]), n_boot=50)
    assert list(al.errors.columns) == ["population mean", "own domain means", "own offset", "persona prompt"]
    assert al.errors.to_numpy().min() >= 0
    check_result(al)


def test_persona_ratings_batch_equals_one_call_per_person(tiny_engine, people):
    items = personality_items(people.items, n_per_domain=1, keyed=False)
    systems = ["You are very calm.", "You are a worrier who never stops thinking about what could go wrong."]
    got = persona_ratings(tiny_engine, items, systems, PLAIN, orders=("original", "reversed"))
    want = [np.mean([answer_distributions(tiny_engine, items, PLAIN.with_(order=o, system=s)).expected()
                     for o in ("original", "reversed")], axis=0) for s in systems]
    np.testing.assert_allclose(got, want, atol=1e-5)
    with pytest.raises(ValueError, match="at least one system prompt"):
        persona_ratings(tiny_engine, items, [], PLAIN)


def test_alignment_study_and_item_structure_follow_the_protocol(tiny_engine, people):
    study = alignment_study(people, n_people=30, engine=tiny_engine, design=PLAIN, n_persona_people=3,
                            n_persona_items=2, steering_layer=1, strengths=(0.0, 50.0), n_steering_items=1,
                            n_boot=50)
    assert [c.name for c in study.claims()] == ["own_domain_means_beats_population_mean",
                                                "own_offset_beats_population_mean",
                                                "persona_prompt_beats_population_mean",
                                                "steering_beats_population_mean"]
    assert len(study.persona.errors) == 3 and study.persona.predictions["item"].nunique() == 2
    assert set(study.persona.strengths) <= {0.0, 50.0} and len(study.persona.strengths) == 3
    assert "strengths" in study.claims()["steering_beats_population_mean"].details
    with pytest.raises(ValueError, match="subset of train_items"):
        personality_alignment(people, [0], steering={"engine": tiny_engine}, steering_items=["nope"])
    assert "You are a person with this personality" in study.example_prompt
    check_result(study)
    assert [c.name for c in alignment_study(people, n_people=30, n_boot=50).claims()][-1] == \
        "own_offset_beats_population_mean"
    with pytest.raises(ValueError, match="n_persona_people"):
        alignment_study(people, n_people=5, n_persona_people=6)
    rng = np.random.default_rng(0)
    structure = item_structure(people, rng.standard_normal((len(people.items), 8)), n_per_domain=4,
                               n_permutations=49, n_boot=50)
    assert len(structure.model.rdm_a) == 20 and structure.persona is None
    assert structure.claims()["people_halves_agree"].holds
    assert list(structure.people.columns) == ["other people", "hidden states"] and len(structure.people) == 120
    check_result(structure)
    with_model = item_structure(people, rng.standard_normal((len(people.items), 8)), n_per_domain=4,
                                engine=tiny_engine, design=PLAIN, n_personas=5, n_permutations=49, n_boot=50)
    assert with_model.persona.names == ("people", "persona answers")
    assert [c.name for c in with_model.claims()] == [
        "people_halves_agree", "hidden_states_like_people", "persona_answers_like_people",
        "hidden_states_like_each_person", "others_nearer_a_person_than_hidden_states"]
    assert list(with_model.people.columns) == ["other people", "hidden states", "persona answers"]
    check_result(with_model)
    with pytest.raises(ValueError, match="n_personas"):
        item_structure(people, rng.standard_normal((len(people.items), 8)), engine=tiny_engine, n_personas=2)
    with pytest.raises(ValueError, match="one row per item"):
        item_structure(people, np.zeros((3, 2)))


def test_persona_prompt_names_levels(people):
    scores = personality_scores(people)
    person = scores.mean() + 2 * scores.std() * np.array([1, 0, 0, 0, -1])
    text = persona_prompt(person, scores)
    assert "very high in openness" in text and "average in extraversion" in text and "very low in neuroticism" in text


def test_alignment_baselines_order_on_synthetic_people(people):
    al = personality_alignment(people, list(range(40)), n_boot=300)
    mae = al.to_frame()["mae"]
    assert mae["own offset"] < mae["population mean"] and mae["own offset"] < mae["own domain means"]
    assert al.claims()["own_offset_beats_population_mean"].holds
    # without item difficulties a person's own domain means also beat the population mean
    flat = synthetic_papi(difficulty_sd=0.0, seed=1)
    assert personality_alignment(flat, list(range(40)), n_boot=300).claims()["own_domain_means_beats_population_mean"].holds


def test_steering_strength_search_finds_a_planted_strength(tiny_engine, people):
    items = personality_items(people.items, keyed=False)
    train, test = items[:6], items[6:10]
    keys = people.items["key"].to_numpy()
    directions = trait_directions(tiny_engine, items[:20], keys[:20], layer=1)
    assert set(directions) == set(DOMAINS) and all(v.shape == (tiny_engine.hidden_size,) for v in directions.values())
    z = pd.Series(1.0, index=list(DOMAINS))
    vec = sum(directions.values())
    scale = 20.0 / np.linalg.norm(vec)                                     # strong enough to move a tiny model

    def answers(its, alpha):
        from plural_kit.probes.directions import activation_addition
        with activation_addition(tiny_engine, vec, 1, alpha=alpha):
            return answer_distributions(tiny_engine, its, PLAIN).expected()

    planted = 2 * scale
    person = answers(train, planted)                                       # a "person" who answers like alpha*
    strengths = (0.0, scale, planted, 3 * scale)
    assert len({tuple(np.round(answers(train, a), 6)) for a in strengths}) == len(strengths)
    got = steered_answers(engine=tiny_engine, directions=directions, layer=1, person_scores=z, person_train=person,
                          train_items=train, test_items=test, strengths=strengths, design=PLAIN)
    np.testing.assert_allclose(got, answers(test, planted), atol=1e-6)


def _factor_answers(n_obs, loadings, rng):
    f = rng.standard_normal((n_obs, loadings.shape[1]))
    return f @ loadings.T + 0.5 * rng.standard_normal((n_obs, loadings.shape[0]))


def test_rsa_on_planted_structure_and_on_none():
    rng = np.random.default_rng(0)
    n_items = 20
    loadings = np.zeros((n_items, 4))
    loadings[np.arange(n_items), np.arange(n_items) % 4] = rng.choice([-1, 1], n_items)
    a = answer_dissimilarity(_factor_answers(200, loadings, rng))
    b = answer_dissimilarity(_factor_answers(200, loadings, rng))         # same structure, other people
    res = rsa(a, b, n_permutations=499, n_boot=300)
    assert res.rho == pytest.approx(st.spearmanr(upper_triangle(a), upper_triangle(b)).statistic)
    assert res.claim().holds and res.p_value < 0.01
    check_result(res)
    none = answer_dissimilarity(rng.standard_normal((200, n_items)))       # no structure
    res0 = rsa(a, none, n_permutations=499, n_boot=300)
    assert not res0.claim().holds and res0.p_value > 0.05
    assert rsa(a, b, n_permutations=99, n_boot=50, seed=3).p_value == rsa(a, b, n_permutations=99, n_boot=50, seed=3).p_value


def test_rdm_helpers_and_errors():
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    d = cosine_dissimilarity(v)
    assert d[0, 1] == pytest.approx(1.0) and d[0, 2] == pytest.approx(1 - 1 / np.sqrt(2)) and d[1, 1] == 0
    with pytest.raises(ValueError, match="never vary"):
        answer_dissimilarity(np.c_[np.ones(5), np.arange(5), np.arange(5) ** 2, -np.arange(5)])
    with pytest.raises(ValueError, match="square"):
        rsa(np.zeros((4, 4)), np.zeros((5, 5)))


def test_person_rsa_against_scipy_and_the_group_structure():
    rng = np.random.default_rng(1)
    loadings = np.zeros((12, 3))
    loadings[np.arange(12), np.arange(12) % 3] = 1.0
    answers = np.rint(np.clip(3 + _factor_answers(60, loadings, rng), 1, 5))
    answers[0, 2] = np.nan
    model = cosine_dissimilarity(rng.standard_normal((12, 4)))
    got = person_rsa(answers, {"model": model}, index=[f"p{i}" for i in range(60)])
    i, j = np.triu_indices(12, k=1)
    own = np.abs(answers[0, i] - answers[0, j])
    ok = np.isfinite(own)
    others = upper_triangle(answer_dissimilarity(answers[1:]))
    assert got.loc["p0", "other people"] == pytest.approx(st.spearmanr(own[ok], others[ok]).statistic)
    assert got.loc["p0", "model"] == pytest.approx(st.spearmanr(own[ok], upper_triangle(model)[ok]).statistic)
    assert got["other people"].mean() > 0.1 > abs(got["model"].mean())      # people share the factor structure
    flat = answers.copy()
    flat[5] = 3.0
    assert np.isnan(person_rsa(flat).loc[5, "other people"])              # a person who never varies has no rho
    with pytest.raises(ValueError, match="reference 'bad'"):
        person_rsa(answers, {"bad": np.zeros((3, 3))})


def test_trait_directions_cancel_the_answer_words():
    """A fake model whose state is a word direction for "Very accurate" plus a trait direction when
    the answer is the trait-high one: the balanced directions keep only the trait's."""
    words = np.eye(6)[0] * 50.0
    trait = {d: np.eye(6)[1 + k] for k, d in enumerate(("N", "E"))}
    keys = np.array([1, 1, 1, -1, 1, -1, -1, -1])
    domains = ["N", "N", "N", "N", "E", "E", "E", "E"]
    items = pd.DataFrame({"item": [f"i{k}" for k in range(8)], "text": [f"Item number {k}." for k in range(8)],
                          "domain": domains, "key": keys})
    mc = personality_items(items, keyed=False)

    class Fake:
        def hidden_states(self, texts, layers):
            out = []
            for t in texts:
                k = next(n for n in range(8) if f"number {n}." in t)
                said_accurate = t.endswith("Very accurate")
                out.append(words * said_accurate + trait[domains[k]] * (said_accurate == (keys[k] > 0)))
            return {layers: np.array(out, dtype=np.float32)}

    got = trait_directions(Fake(), mc, keys, layer=3, design=PLAIN)
    for d in ("N", "E"):
        np.testing.assert_allclose(got[d], trait[d], atol=1e-6)
    with pytest.raises(ValueError, match="one key only"):
        trait_directions(Fake(), mc[:3], keys[:3], layer=3, design=PLAIN)
