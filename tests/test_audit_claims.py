"""Lesson 02's claims computed by plural_kit.audit: each outcome follows from its interval, with fake scorers
and synthetic data whose answers are known."""
import numpy as np
import pandas as pd
import pytest

from plural_kit.audit import (
    AnswerDistributions,
    AuditInputError,
    PerspectiveResult,
    PromptDesign,
    StereotypeResult,
    answer_distributions,
    design_variants,
    mfq_items,
    nearest_country_claim,
    position_claim,
    robustness_audit,
    signal_check,
    steering_from_scores,
)
from plural_kit.audit.robustness import _share_gap
from plural_kit.claims import DOES_NOT_HOLD, HOLDS, NOT_DISTINGUISHABLE
from plural_kit.stats import Interval
from plural_kit.data import FOUNDATIONS, load_mfq2_items
from tests.test_audit_mfq import FirstOption, Reader
from tests.test_audit_robustness import ContentScorer, PositionScorer, make_items


def test_signal_claim_holds_for_a_reader_and_not_for_a_position_picker():
    ok = signal_check(Reader()).claim()
    assert ok.outcome == HOLDS and ok.threshold == 1.0 and ok.name == "signal_check_passes"
    bad = signal_check(FirstOption()).claim()
    assert bad.outcome == DOES_NOT_HOLD and bad.estimate == pytest.approx(0.0)
    assert "1 point above" in bad.statement and "| evidence:" in bad.line()


def test_position_claim():
    items = mfq_items(load_mfq2_items(), 2)
    runs = [answer_distributions(FirstOption(), items, PromptDesign(order=o)) for o in ("original", "reversed")]
    c = position_claim(runs)
    assert c.outcome == HOLDS and c.estimate == 1.0 and c.threshold == pytest.approx(0.2)
    reader = [answer_distributions(Reader(), items, PromptDesign(order=o)) for o in ("original", "reversed")]
    assert position_claim(reader).outcome == DOES_NOT_HOLD  # rates 3, the middle option: 0 of 24 on the first
    with pytest.raises(AuditInputError):
        position_claim([])


def runs_with_scores(scores: dict[str, float], n_per_foundation: int = 2, jitter: float = 0.0):
    """AnswerDistributions (one design) whose expected rating is ``scores[foundation]`` (+ ±jitter per item)."""
    items = mfq_items(load_mfq2_items(), n_per_foundation)
    probs = []
    for i, it in enumerate(items):
        target = scores[it.group] + (jitter if i % 2 else -jitter)
        lo = int(np.floor(target))
        p = np.zeros(5)
        if lo >= 5:
            p[4] = 1
        else:
            p[lo - 1], p[lo] = 1 - (target - lo), target - lo
        probs.append(p)
    probs = np.array(probs)
    n = len(items)
    return [AnswerDistributions(items, PromptDesign(), probs, probs, np.tile(np.arange(5), (n, 1)), np.ones(n),
                                [""] * n)]


def two_country_distributions(offset_b: float, n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for c, off in (("A", 0.0), ("B", offset_b)):
        for f in FOUNDATIONS:
            s = np.clip(3.0 + off + rng.normal(0, 0.8, n), 1, 5)
            rows.append({"country": c, "foundation": f, "scores": s, "mean": s.mean(), "sd": s.std(ddof=1), "n": n})
    return pd.DataFrame(rows)


def test_nearest_country_claim():
    model = {f: 3.0 for f in FOUNDATIONS}
    far = nearest_country_claim(runs_with_scores(model), two_country_distributions(1.0), n_boot=300)
    assert far.outcome == HOLDS and far.details["nearest"] == "A" and far.details["runner-up"] == "B"
    assert far.estimate == pytest.approx(1.0, abs=0.15)
    # two countries drawn from the same people: the audit cannot single one out
    same = two_country_distributions(0.0)
    same.loc[same.country == "B", "scores"] = same.loc[same.country == "A", "scores"].to_numpy()
    tie = nearest_country_claim(runs_with_scores(model, jitter=0.3), same, n_boot=300)
    assert tie.outcome == NOT_DISTINGUISHABLE


def test_steering_claims():
    groups = list(FOUNDATIONS) * 2
    ref = pd.DataFrame({f: [4.0, 2.0, 3.0] for f in FOUNDATIONS}, index=["Highland", "Lowland", "Midland"])
    rng = np.random.default_rng(0)
    neutral = 3.0 + rng.normal(0, 0.1, 12)
    scores = pd.DataFrame({"neutral": neutral, "Highland": neutral + 0.8, "Lowland": neutral},
                          index=[f"i{k}" for k in range(12)])
    res = steering_from_scores(scores, groups, ref, n_boot=300)
    claims = res.claims(per_country=True)
    assert claims["steering_moves_highland"].outcome == HOLDS
    assert claims["steering_moves_lowland"].outcome == NOT_DISTINGUISHABLE  # no move at all: [0, 0]
    assert claims["steering_moves_toward_country"].estimate == pytest.approx(res.table["delta"].mean())
    assert claims["steering_moves_toward_country"].outcome == HOLDS
    away = steering_from_scores(scores.assign(Lowland=neutral + 0.8), groups, ref, n_boot=300)
    assert away.country_claim("Lowland").outcome == DOES_NOT_HOLD
    with pytest.raises(AuditInputError, match="neutral"):
        steering_from_scores(scores.drop(columns="neutral"), groups, ref)


def test_stereotype_claim():
    table = pd.DataFrame({"sim_in": [0.9, 0.8, 0.85], "sim_out": [0.5, 0.6, 0.55]})
    c = StereotypeResult(table.assign(diff=table.sim_in - table.sim_out), Interval(0.3, 0.2, 0.4), "in_region", 0.9).claim()
    assert c.outcome == HOLDS
    c = StereotypeResult(table, Interval(-0.02, -0.1, 0.07), "neither", 0.7).claim()
    assert c.outcome == NOT_DISTINGUISHABLE


def test_perspective_diversity_claims():
    names = ["a", "b", "c"]
    rows = []
    for q in range(4):
        rows.append({"condition": "plain", "question": f"q{q}", "answer": "", "a": 2, "b": 0, "c": 0})
        rows.append({"condition": "multiplex", "question": f"q{q}", "answer": "", "a": 1, "b": 1, "c": 1})
        rows.append({"condition": "multi_agent", "question": f"q{q}", "answer": "", "a": 0, "b": 0, "c": 0})
    answers = pd.DataFrame(rows)
    dist = pd.DataFrame(0.0, index=["plain", "multiplex", "multi_agent"], columns=names)
    ent = pd.DataFrame(index=["plain", "multiplex", "multi_agent"])
    res = PerspectiveResult(answers, dist, ent)
    claims = res.claims(n_boot=200)
    assert claims["multiplex_more_diverse"].outcome == HOLDS
    assert claims["multiplex_more_diverse"].estimate == pytest.approx(1.0)
    assert claims["multi_agent_more_diverse"].outcome == NOT_DISTINGUISHABLE  # nothing detected: [0, 0]
    one = PerspectiveResult(answers[answers.question == "q0"], dist, ent)
    assert np.isnan(one.diversity_claim("multiplex").ci_low)  # one question: no interval
    with pytest.raises(AuditInputError, match="conditions"):
        res.diversity_claim("martian")


def test_share_gap_matches_statsmodels_anova():
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"item": np.repeat(np.arange(6), 4), "order": np.tile(["o", "r", "o", "x"], 6),
                       "labels": np.tile(["l", "l", "n", "l"], 6)})
    df["expected"] = rng.normal(size=len(df)) + (df["order"] == "r") * 2 + df["item"] * 0.3
    table = anova_lm(smf.ols("expected ~ C(item) + C(order) + C(labels)", data=df).fit(), typ=2)
    share = table["sum_sq"] / table["sum_sq"].sum()
    want = share["C(order)"] + share["C(labels)"] - share["C(item)"]
    got = _share_gap(df["expected"].to_numpy(), df["item"].to_numpy(),
                     [pd.factorize(df["order"])[0], pd.factorize(df["labels"])[0]])
    assert got == pytest.approx(want, rel=1e-9)


def robustness(scorer, n_items=8, reference=None):
    designs = design_variants(PromptDesign(), n_random_orders=1, labels=("letters", "numbers"),
                              responses=("label",), chat_template=(True,))
    ref = reference if reference is not None else pd.DataFrame(
        {"care": [2.9, 3.1, 3.0, 2.95, 3.05, 3.0], "purity": [2.9, 3.05, 3.1, 3.0, 2.95, 3.0]},
        index=["U", "V", "W", "X", "Y", "Z"])
    return robustness_audit(scorer, make_items(n_items), designs, reference=ref, n_resamples=49)


def test_robustness_claims_for_a_position_picker():
    res = robustness(PositionScorer(0))
    claims = res.claims(n_boot=200)
    assert claims["design_moves_more_than_countries"].outcome == HOLDS
    assert claims["design_explains_more_than_items"].outcome == HOLDS
    assert claims["design_explains_more_than_items"].estimate == pytest.approx(
        res.design_share() - res.anova.loc["C(item)", "share"])
    v = res.verdict(False, n_boot=200)
    assert v.survives == [] and "NOTHING" in v.line() and "signal check does not hold" in v.line()


def test_robustness_claims_for_a_reader():
    # ContentScorer's answers ignore the design: scores ~3.9-4.5 well above every country
    res = robustness(ContentScorer(), n_items=12)
    claims = res.claims(n_boot=200)
    assert claims["design_moves_more_than_countries"].outcome == DOES_NOT_HOLD  # design SD is 0
    assert claims["design_explains_more_than_items"].outcome == DOES_NOT_HOLD
    v = res.verdict(True, n_boot=200)
    assert "care is above the average country" in v.survives and "purity is above the average country" in v.survives
    assert v.line().startswith("what survives every design variant: ") and "NOTHING" not in v.line()
    assert res.verdict(False, n_boot=200).survives == [] and res.verdict(False, n_boot=200).stable == v.stable
    with pytest.raises(AuditInputError, match="reference"):
        robustness_audit(ContentScorer(), make_items(4), design_variants(PromptDesign())).spread_claim()
