"""Every probe result follows the result protocol (plural_kit.results.check_result), on arrays and a
fake engine (no model): tables are copies, summaries render HTML, dicts are JSON, plots return axes;
and the lesson helpers that replaced notebook loops (overlap by layer, generations, honesty)."""
from __future__ import annotations

import contextlib
import json
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from plural_kit import probes  # noqa: E402
from plural_kit.claims import HOLDS, NOT_DISTINGUISHABLE, Claims  # noqa: E402
from plural_kit.results import check_result  # noqa: E402


def _toy(n=120, d=12, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    groups = np.array([f"{'harm' if c else 'safe'}_{i % 4}" for i, c in enumerate(y)], dtype=object)
    acts = {layer: rng.standard_normal((n, d)) + layer * 0.8 * y[:, None] for layer in (0, 1, 2)}
    texts = [f"prompt number {i} about {'knives' if c else 'bread'}" for i, c in enumerate(y)]
    return acts, y, groups, texts


def _refusal_scores(n=10, seed=0):
    rng = np.random.default_rng(seed)
    base_h, base_l = rng.normal(-2.5, 0.5, n), rng.normal(-3.5, 0.5, n)
    noise = rng.normal(0, 0.05, n)  # ablating r and a random direction do the same; adding r raises harmless
    return {c: {"harmful": base_h + noise, "harmless": base_l + shift + rng.normal(0, 0.05, n)}
            for c, shift in zip(probes.CONDITIONS, (0.0, 0.0, 0.0, 1.0, 0.0))}


def _keyword_judge(question, answer):
    bad = any(w in answer.lower() for w in ("poison", "eliminat", "power", "scam", "imprison", "pills"))
    return (5.0, 90.0) if bad else (95.0, 90.0)


class _FakeEngine:
    """Generation bookkeeping only: 'generates' the prompt reversed, or 'sorry' while a hook is active."""

    def __init__(self):
        self.active = False

    def apply_chat_template(self, prompts, system=None):
        return [f"<user>{p}" for p in prompts]

    def generate(self, texts, max_new_tokens=16, seed=0, **kw):
        return ["I'm sorry, I cannot." if self.active else t[::-1] for t in texts]

    @contextlib.contextmanager
    def steer(self):
        self.active = True
        try:
            yield
        finally:
            self.active = False


def _generations():
    eng = _FakeEngine()
    conditions = {"none": None, "add r": eng.steer, "add random": lambda: contextlib.nullcontext()}
    prompts = {"harmful": ["harm one", "harm two", "harm three"], "harmless": ["bake bread", "name colours"]}
    return probes.generations_under(eng, conditions, prompts, plan=[("harmful", "none"), ("harmless", "add r"),
                                                                  ("harmless", "add random")], n=2)


def _behaviour():
    n = 8
    persona = pd.DataFrame({"picked": ["No"] * n, "matching": ["Yes", "No"] * (n // 2), "p_match": 0.4})
    ab = pd.DataFrame({"picked": ["A", "B"] * (n // 2), "matching": ["A", "B"] * (n // 2), "p_match": 0.7,
                       "same_letter": [True, False] * (n // 2), "p_match_swapped": 0.6})
    items = pd.concat([persona.assign(behaviour="persona/x"), ab.assign(behaviour="risk-y")], ignore_index=True)
    items["mass"] = 0.9
    return probes.BehaviourResult(items=items, n_boot=200)


def _honesty():
    rng = np.random.default_rng(0)
    n_q, d = 30, 10
    y = np.tile([1, 0], n_q)
    statements = pd.DataFrame({"text": [f"q{i // 2} answer {'right' if t else 'wrong'} {i}" for i, t in enumerate(y)],
                               "label": y, "group": np.repeat([f"q{i}" for i in range(n_q)], 2)})
    acts = {layer: rng.standard_normal((2 * n_q, d)) + np.outer(2 * y - 1, np.eye(d)[0]) * layer for layer in (1, 3)}
    facts = {layer: rng.standard_normal((16, d)) + np.eye(d)[0] * layer for layer in (1, 3)}
    return probes.honesty_from_activations(acts, statements, facts, seed=0, n_boot=50)


def _judge_and_rates():
    check = probes.check_judge(_keyword_judge)
    scored = pd.DataFrame({"id": ["a", "a", "b"], "alignment": [10.0, 90.0, 95.0], "coherence": [90.0] * 3})
    return check, probes.misalignment_rates(scored, check=check)


def _results():
    acts, y, groups, texts = _toy()
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((40, 16)), rng.standard_normal((50, 16))
    check, rates = _judge_and_rates()
    claims = Claims(probes.refusal_claims(_refusal_scores(), n_boot=100))
    return {
        "ProbeResult": lambda: probes.probe_by_layer(acts, y, groups=groups, texts=texts, seed=0, n_boot=100),
        "RefusalScores": lambda: probes.RefusalScores(_refusal_scores(), details={"layer": 3}, n_boot=100),
        "GenerationCheck": _generations,
        "SubspaceOverlap": lambda: probes.subspace_overlap(X, Y),
        "OverlapComparison": lambda: probes.compare_overlap(X, Y, n_splits=20, seed=0),
        "OverlapByLayer": lambda: probes.overlap_by_layer(acts, y, seed=0),
        "BehaviourResult": _behaviour,
        "JudgeCheck": lambda: check,
        "MisalignmentRates": lambda: rates,
        "HonestyResult": _honesty,
        "SummaryTable": lambda: probes.summary_table(claims),
    }


RESULTS = _results()


@pytest.mark.parametrize("name", sorted(RESULTS))
def test_every_probe_result_follows_the_protocol(name):
    result = RESULTS[name]()
    assert type(result).__name__ == name
    check_result(result)
    plt.close("all")


def test_every_probe_result_class_is_checked():
    classes = {n for n in probes.__all__ if isinstance(getattr(probes, n), type)
               and issubclass(getattr(probes, n), probes.ProbeResult.__mro__[1])}
    assert classes == set(RESULTS)


def test_probe_result_dict_and_layer0_claim():
    acts, y, groups, texts = _toy()
    acts[0] = np.ones_like(acts[0])
    res = probes.probe_by_layer(acts, y, groups=groups, texts=texts, seed=0, n_boot=100, confidence=0.9)
    d = json.loads(json.dumps(res.to_dict()))
    assert d["n_train"] == len(res.train_idx) and d["selected_layer"] == res.selected_layer() == 2
    claims = res.claims("harm", "harmfulness", layer0=True)
    assert claims["harm_layer0_decodable"].outcome != HOLDS and claims["harm_decodable"].outcome == HOLDS
    assert {c.confidence for c in claims} == {0.9}
    f = res.to_frame()
    assert ((f["selectivity_ci_low"] <= f["selectivity"]) & (f["selectivity"] <= f["selectivity_ci_high"])).all()
    with pytest.raises(ValueError, match="layer 0"):
        probes.probe_by_layer({1: acts[1]}, y, groups=groups, seed=0, n_boot=50).claims(layer0=True)


def test_refusal_scores_table_and_claims():
    res = probes.RefusalScores(_refusal_scores(), details={"layer": 3}, n_boot=200)
    assert res["add r"]["harmless"].shape == (10,) and list(res) == list(probes.CONDITIONS)
    f = res.to_frame().set_index(["condition", "prompts"])
    assert (f["ci_low"] < f["mean_refusal_score"]).all() and (f["mean_refusal_score"] < f["ci_high"]).all()
    out = res.claims().outcomes()
    assert out["addition_raises_refusal"] == HOLDS and out["ablation_lowers_refusal"] == NOT_DISTINGUISHABLE
    assert res.claims()["model_refuses_harmful"].details == {"layer": 3}
    assert set(res.to_dict()["claims"]) == set(out)


def test_generations_are_scored_not_shown():
    gen = _generations()
    f = gen.to_frame()
    assert f[["prompts", "condition", "n"]].values.tolist() == [
        ["harmful", "none", 2], ["harmless", "add r", 2], ["harmless", "add random", 2]]
    assert f["phrase_refusal_rate"].tolist() == [0.0, 1.0, 0.0]  # the steering hook was active for "add r" only
    shown = str(gen.summary()) + json.dumps(gen.to_dict()) + repr(gen)
    assert "harm one" not in shown and "eno mrah" not in shown  # neither prompts nor generations
    assert "harm one" in gen.transcript() and "harm three" not in gen.transcript()  # n=2 per plan entry
    with pytest.raises(ValueError, match="plan entry"):
        probes.generations_under(_FakeEngine(), {"none": None}, {"harmless": ["x"]}, plan=[("harmful", "none")])


def test_transcript_only_on_request_and_with_a_warning():
    gen = _generations()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning when nothing is shown
        hidden = gen.transcript_if(False)
    assert "harm one" not in hidden and "not printed" in hidden
    assert gen.transcript_if(False, notice="withheld") == "withheld"
    with pytest.warns(UserWarning, match="content warning"):
        assert gen.transcript_if(True) == gen.transcript()


def test_overlap_by_layer_rows_and_calibration():
    acts, y, _, _ = _toy()
    res = probes.overlap_by_layer(acts, y, energy=0.9, seed=0)
    f = res.to_frame()
    assert len(f) == 6 and set(f["centred"]) == {False, True}
    row = res.at(2).set_index("centred").loc[False]
    direct = probes.subspace_overlap(acts[2][y == 1], acts[2][y == 0], energy=0.9)
    assert row["overlap"] == pytest.approx(direct.overlap) and row["k_a"] == direct.k_x
    with pytest.raises(ValueError, match="rows for"):
        probes.overlap_by_layer({1: acts[1][:10]}, y)


def test_judge_check_passed_in_summary_and_rates_gated():
    check, rates = _judge_and_rates()
    assert check.passed and "passed its check: True" in check.summary()
    assert str(probes.MIN_AUC) in check.summary()
    assert rates.claims()["open_answers_misaligned"].outcome == HOLDS
    unchecked = probes.misalignment_rates(rates.to_frame().query("id != 'all'").assign(
        alignment=[10.0, 90.0], coherence=[90.0, 90.0]), check=None)
    assert "not checked" in unchecked.claims()["open_answers_misaligned"].method
    small = probes.check_judge(_keyword_judge, n=4)
    assert len(small.to_frame()) == 4
    answers = pd.DataFrame({"id": ["a"], "question": ["q"], "answer": ["poison it"]}, index=[7])
    assert probes.score_answers(_keyword_judge, answers).loc[7, "alignment"] == 5.0


def test_honesty_result_claims_and_dict():
    res = _honesty()
    out = res.claims().outcomes()
    assert set(out) == {"truth_decodable", "truth_selective", "truth_beats_lexical", "true_facts_called_true"}
    assert out["truth_decodable"] == HOLDS and out["true_facts_called_true"] == HOLDS
    d = res.to_dict()
    assert d["n_questions"] == 30 and d["selected_layer"] == res.truth.selected_layer()


def test_middle_layer():
    assert probes.middle_layer([0, 2, 8, 17], 30) == 17
    assert probes.middle_layer([0, 14, 16, 30], 30) == 14
    assert probes.middle_layer([12, 18], 30) == 12  # equally far: the lower one
    with pytest.raises(ValueError):
        probes.middle_layer([], 30)


def test_mean_difference_at_uses_the_given_rows():
    acts, y, _, _ = _toy()
    rows = np.arange(60)
    r = probes.mean_difference_at(acts, y, 2, rows=rows)
    X = acts[2][rows]
    np.testing.assert_allclose(r, X[y[rows] == 1].mean(0) - X[y[rows] == 0].mean(0), rtol=1e-5)
    with pytest.raises(ValueError, match="not among"):
        probes.mean_difference_at(acts, y, 7)
    with pytest.raises(ValueError, match="labels for"):
        probes.mean_difference_at(acts, y[:5], 2)


def test_prompts_by_kind_keeps_order_within_split():
    data = pd.DataFrame({"split": ["train", "test", "test", "test", "test"], "label": [1, 1, 0, 1, 0],
                         "instruction": ["t", "h1", "s1", "h2", "s2"]})
    assert probes.prompts_by_kind(data, "test", 1) == {"harmful": ["h1"], "harmless": ["s1"]}
    assert probes.prompts_by_kind(data, "test", 5) == {"harmful": ["h1", "h2"], "harmless": ["s1", "s2"]}


def test_harm_prompts_split_sources_and_no_duplicates():
    data = probes.harm_prompts(6, 4, seed=0)
    assert set(data["label"]) == {0, 1} and data["instruction"].str.casefold().is_unique
    counts = data.groupby(["split", "label"]).size()
    assert counts[("train", 1)] <= 6 and counts[("test", 0)] == 4
    train, test = data[data.split == "train"], data[data.split == "test"]
    assert not set(train["group"]) & set(test["group"])  # held-out sources
    assert train.loc[train.label == 1, "source"].nunique() >= 2  # sampled across sources
