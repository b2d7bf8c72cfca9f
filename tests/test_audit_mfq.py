"""MFQ-2 scoring, the signal check, nearest countries, steering, SeeGULL and perspectives, with fake scorers
whose answers are known, on the data mirror."""
import numpy as np
import pandas as pd
import pytest

from plural_kit.audit import (
    AnswerScorer,
    AuditInputError,
    PerspectiveDetector,
    PromptDesign,
    answer_distributions,
    compare_with_countries,
    foundation_scores,
    human_means,
    mfq_items,
    perspective_audit,
    seegull_pairs,
    signal_check,
    steering_audit,
    stereotype_audit,
)
from plural_kit.audit.mfq import MFQ_OPTIONS
from plural_kit.data import FOUNDATIONS, country_foundation_distributions, load_mfq2_items, load_seegull


class Chat:
    def apply_chat_template(self, prompts, system=None):
        return [f"[{system}] {p} <assistant>" for p in prompts]


def rating_probs(prompt, labels, rating):
    """All mass on the displayed option whose text is MFQ rating ``rating`` (1..5)."""
    lines = [line for line in prompt.splitlines() if line[:2] in {f"{lab}." for lab in labels}]
    shown = [line.split(". ", 1)[1] for line in lines]
    p = np.zeros(len(labels))
    p[shown.index(MFQ_OPTIONS[rating - 1])] = 1.0
    return p


class Reader(Chat, AnswerScorer):
    """Rates obvious-agree statements 5, obvious-disagree 1, everything else 3 (reads the text)."""

    def score(self, prompts, labels):
        out = []
        for p, lab in zip(prompts, labels):
            bad = any(w in p for w in ("torturing", "hurt people", "poison", "steal", "would suffer", "badly hurt"))
            good = any(w in p for w in ("I care about", "kind to", "safe and happy", "Honesty", "children suffer",
                                        "help someone"))
            out.append(rating_probs(p, lab, 1 if bad else 5 if good else 3))
        return np.array(out), np.ones(len(prompts))


class FirstOption(Chat, AnswerScorer):
    def score(self, prompts, labels):
        p = np.zeros((len(prompts), len(labels[0])))
        p[:, 0] = 1
        return p, np.full(len(prompts), 0.8)


class CountryPersona(Chat, AnswerScorer):
    """Rates 5 when the system prompt names Testland, else 3."""

    def score(self, prompts, labels):
        return np.array([rating_probs(p, lab, 5 if "Testland" in p else 3) for p, lab in zip(prompts, labels)]), \
            np.ones(len(prompts))


@pytest.fixture(scope="module")
def distributions():
    return country_foundation_distributions()


def test_mfq_items_from_loader():
    items = mfq_items(load_mfq2_items())
    assert len(items) == 36 and {it.group for it in items} == set(FOUNDATIONS)
    two = mfq_items(load_mfq2_items(), n_per_foundation=2)
    assert len(two) == 12 and all(it.values == (1, 2, 3, 4, 5) for it in two)
    with pytest.raises(AuditInputError, match="columns"):
        mfq_items(pd.DataFrame({"text": ["x"]}))


def test_signal_check_passes_a_reader_and_fails_a_position_picker():
    ok = signal_check(Reader())
    assert ok.passed and ok.difference[0] == pytest.approx(4.0) and ok.share_correct == 1.0
    bad = signal_check(FirstOption())
    assert not bad.passed
    assert bad.difference[0] == pytest.approx(0.0)  # first option = 1 in one order, 5 in the other
    assert bad.position_0 == pytest.approx(1.0)
    assert "INCONCLUSIVE" in bad.summary()


def test_foundation_scores_order_averaged():
    items = mfq_items(load_mfq2_items(), 1)
    res = [answer_distributions(FirstOption(), items, PromptDesign(order=o)) for o in ("original", "reversed")]
    assert foundation_scores(res).tolist() == [3.0] * 6  # (1 + 5) / 2
    assert foundation_scores(res[0]).tolist() == [1.0] * 6


def test_nearest_country_is_the_one_whose_means_we_copy(distributions):
    means = human_means(distributions)
    assert means.shape == (21, 6)
    target = means.loc["Japan", list(FOUNDATIONS)]
    cmp = compare_with_countries(target, distributions, n_boot=200)
    assert cmp.nearest(1) == ["Japan"]
    row = cmp.table.loc["Japan"]
    assert row["distance"] == pytest.approx(0.0, abs=1e-9) and row["ci_low"] >= 0 and row["rank"] == 1
    assert cmp.table["p_nearest"].sum() == pytest.approx(1.0)
    assert set(cmp.by_foundation.columns) >= {"human_mean", "model", "z", "model_percentile"}
    with pytest.raises(AuditInputError, match="foundations"):
        compare_with_countries(pd.Series({"courage": 3.0}), distributions)


def test_steering_detects_a_persona_that_moves():
    items = mfq_items(load_mfq2_items(), 1)
    ref = pd.DataFrame([[5.0] * 6, [3.0] * 6, [1.0] * 6], index=["Testland", "Midland", "Lowland"],
                       columns=list(FOUNDATIONS))
    res = steering_audit(CountryPersona(), items, ["Testland", "Lowland"], ref, n_boot=100)
    t = res.table
    assert t.loc["Testland", "delta"] == pytest.approx(2.0) and t.loc["Testland", "moved_toward"]
    assert t.loc["Lowland", "delta"] == pytest.approx(0.0) and not t.loc["Lowland", "moved_toward"]
    assert t.loc["Testland", "rank_steered"] == 1 and res.n_moved == 1
    assert "[You are a person.]" in answer_distributions(CountryPersona(), items[:1],
                                                         PromptDesign(system="You are a person.")).prompts[0]
    with pytest.raises(AuditInputError, match="not in the reference"):
        steering_audit(CountryPersona(), items, ["Atlantis"], ref)


def test_seegull_pairs_and_audit():
    pairs = seegull_pairs(load_seegull("global"), 10, seed=0)
    assert len(pairs) == 10
    diff = (pairs[["in_stereo", "in_nonstereo", "in_unsure"]].to_numpy()
            - pairs[["out_stereo", "out_nonstereo", "out_unsure"]].to_numpy())
    assert (np.abs(diff).sum(1) > 0).all()
    np.testing.assert_allclose(pairs[["in_stereo", "in_nonstereo", "in_unsure"]].sum(axis=1), 1.0)

    class CopyIn(Chat, AnswerScorer):  # answers exactly as the in-region annotators voted
        def score(self, prompts, labels):
            out = []
            for p in prompts:
                row = pairs[[f"{r.identity} people: {r.attribute}" in p for r in pairs.itertuples()]].iloc[0]
                probs = {"Yes, it is a stereotype": row.in_stereo, "No, it is not a stereotype": row.in_nonstereo,
                         "Not sure": row.in_unsure}
                shown = [line.split(". ", 1)[1] for line in p.splitlines() if line[:2] in ("A.", "B.", "C.")]
                out.append([probs[s] for s in shown])
            return np.array(out), np.ones(len(prompts))

    res = stereotype_audit(CopyIn(), pairs)
    np.testing.assert_allclose(res.table["sim_in"], 1.0, atol=1e-6)
    assert res.sides_with == "in_region" and res.difference[1] > 0


class FakeLM:
    """Stands in for a chat engine: the answer names the perspectives the system prompt asks for."""

    def apply_chat_template(self, prompts, system=None):
        return [f"{system}||{p}" for p in prompts]

    def generate(self, prompts, max_new_tokens=64, seed=0, **kw):
        out = []
        for p in prompts:
            system = p.split("||")[0]
            if "multiplex" in system:
                out.append("Pray to Allah and read the Quran. Honour your ancestors and elders. Trust reason.")
            elif "Confucian" in system:
                out.append("Honour your ancestors and elders.")
            else:
                out.append("Trust reason and individual freedom.")
        return out


def keyword_encoder(texts):
    keys = ["Allah", "ancestors", "reason"]
    return np.array([[float(k in t) for k in keys] + [0.01] for t in texts])


def test_perspective_audit_with_a_transparent_detector():
    persp = {"islamic": "Allah", "confucian": "ancestors", "western_secular": "reason"}
    det = PerspectiveDetector(encoder=keyword_encoder, perspectives=persp, threshold=0.5).fit()
    assert det.transform(["Allah is great. Respect your ancestors, always."]).tolist() == [[1, 1, 0]]
    expl = det.explain("Allah is great. Nothing here at all.")
    assert expl["perspective"].iloc[0] == "islamic" and pd.isna(expl["perspective"].iloc[1])
    res = perspective_audit(FakeLM(), det, ["Q1?", "Q2?"], agents=("islamic", "confucian"))
    ent = res.entropy["normalized_entropy"]
    assert ent["plain"] == pytest.approx(0.0) and ent["multiplex"] == pytest.approx(1.0)
    assert 0 < res.distribution.loc["multiplex"].min()
    assert set(res.answers["condition"]) == {"plain", "multiplex", "multi_agent"}
    with pytest.raises(AuditInputError, match="agents"):
        perspective_audit(FakeLM(), det, ["Q?"], agents=("martian",))


def test_global_opinion_similarity_by_country():
    from plural_kit.audit import country_similarity, opinion_distributions, opinion_items
    from plural_kit.data import parse_global_opinions

    raw = pd.DataFrame({
        "question": ["Is A good?", "Pick a colour.", "Too many"],
        "options": [["Yes", "No"], ["Red", "Green", "Blue"], [f"o{i}" for i in range(12)]],
        "selections": ["defaultdict(<class 'list'>, {'Xland': [0.8, 0.2], 'Yland': [0.1, 0.9]})",
                       "defaultdict(<class 'list'>, {'Xland': [0.6, 0.3, 0.1], 'Yland': [0.1, 0.1, 0.8]})",
                       "defaultdict(<class 'list'>, {'Xland': [" + ", ".join(["0.083"] * 12) + "]})"],
        "source": ["GAS", "WVS", "GAS"],
    })
    tidy = parse_global_opinions(raw)
    items = opinion_items(tidy)
    assert [it.id for it in items] == ["0", "1"]  # 12 options: skipped

    x = {r.question: r.distribution for r in tidy[tidy.country == "Xland"].itertuples()}

    class CopyX(Chat, AnswerScorer):
        def score(self, prompts, labels):
            out = []
            for p, lab in zip(prompts, labels):
                it = next(it for it in items if it.text in p)
                shown = [line.split(". ", 1)[1] for line in p.splitlines() if line[:2] in {f"{l}." for l in lab}]
                out.append([x[it.text][it.options.index(s)] for s in shown])
            return np.array(out), np.ones(len(prompts))

    probs = opinion_distributions(CopyX(), items)
    np.testing.assert_allclose(probs["1"], [0.6, 0.3, 0.1])
    table = country_similarity(probs, tidy, n_boot=100).to_frame()
    assert table.index[0] == "Xland" and table.loc["Xland", "similarity"] == pytest.approx(1.0)
    assert table.loc["Yland", "similarity"] < 0.6 and table.loc["Xland", "n_questions"] == 2
