"""plural_kit.rank: Bradley–Terry against choix and the package's statsmodels fit, interval coverage,
Elo's order dependence, tournament designs against their definitions, swap-debiasing of a judge with
a planted position bias, a Condorcet cycle from three consistent groups, and bad input."""
from itertools import combinations

import choix
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest
from scipy.special import expit
from tiny_models import minilm_tokenizer

from plural_kit.claims import DOES_NOT_HOLD, HOLDS
from plural_kit.rank import (
    CallableJudge,
    LogprobJudge,
    NoisyJudge,
    aggregate,
    bradley_terry,
    check_comparisons,
    condorcet_cycle,
    condorcet_winner,
    design_curves,
    elo,
    elo_order_dependence,
    judge_pairs,
    majority_matrix,
    rank_distance,
    round_robin,
    run_design,
    simulate_comparisons,
    simulate_groups,
    single_elimination,
    swiss,
    win_matrix,
)
from plural_kit.results import check_result
from plural_kit.reward import bradley_terry_inference

SKILLS = pd.Series([1.2, 0.6, 0.0, -0.4, -1.4], index=list("abcde"))


def simulate(n=600, skills=SKILLS, ties=0.0, seed=0):
    rng = np.random.default_rng(seed)
    names = skills.index.to_numpy()
    i = rng.integers(0, len(names), n)
    j = (i + rng.integers(1, len(names), n)) % len(names)
    y = (rng.random(n) < expit(skills.to_numpy()[i] - skills.to_numpy()[j])).astype(float)
    y[rng.random(n) < ties] = 0.5
    return pd.DataFrame({"a": names[i], "b": names[j], "outcome": y})


# -- Bradley–Terry --------------------------------------------------------------------------------

def _choix_data(c, items):
    idx = {it: k for k, it in enumerate(items)}
    return [(idx[a], idx[b]) if o == 1 else (idx[b], idx[a]) for a, b, o in zip(c["a"], c["b"], c["outcome"])]


def test_bt_agrees_with_choix_and_with_statsmodels():
    c = simulate()
    r = bradley_terry(c, n_boot=0)
    items = list(r.items)
    ml = choix.ilsr_pairwise(len(items), _choix_data(c, items), alpha=0.0)
    np.testing.assert_allclose(r.strengths.to_numpy(), ml - ml.mean(), atol=1e-6)
    # choix's opt_pairwise penalises alpha * ||s||^2, ours alpha / 2 * ||s||^2
    map_ = choix.opt_pairwise(len(items), _choix_data(c, items), alpha=0.5, tol=1e-10)
    np.testing.assert_allclose(bradley_terry(c, alpha=1.0, n_boot=0).strengths.to_numpy(), map_, atol=1e-6)
    sm = bradley_terry_inference(np.where(c["outcome"] == 1, c["a"], c["b"]),
                                 np.where(c["outcome"] == 1, c["b"], c["a"])).strengths
    np.testing.assert_allclose(r.strengths.to_numpy(), (sm - sm.mean()).reindex(items).to_numpy(), atol=1e-5)


def test_a_tie_is_half_a_win_for_each():
    c = simulate(ties=0.3)
    doubled = pd.concat([c.assign(outcome=np.where(c["outcome"] == 0.5, 1.0, c["outcome"])),
                         c.assign(outcome=np.where(c["outcome"] == 0.5, 0.0, c["outcome"]))])
    # every row twice, ties split into a win and a loss: the same likelihood up to a factor 2
    np.testing.assert_allclose(bradley_terry(c, n_boot=0).strengths, bradley_terry(doubled, n_boot=0).strengths,
                               atol=1e-8)
    w = win_matrix(c)
    assert w.to_numpy().sum() == pytest.approx(len(c))
    counts = bradley_terry(c, n_boot=0).counts
    assert counts["ties"].sum() == 2 * (c["outcome"] == 0.5).sum()


def test_ranking_table_and_result_protocol():
    r = bradley_terry(simulate(), n_boot=100, seed=0)
    check_result(r)
    frame = r.to_frame()
    assert frame.index.tolist() == r.order() == list("abcde")
    assert (frame["ci_low"] <= frame["strength"]).all() and (frame["strength"] <= frame["ci_high"]).all()
    assert (frame["rank_ci_low"] <= frame["rank"]).all() and (frame["rank"] <= frame["rank_ci_high"]).all()
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5]
    assert r.claim_better("a_above_e", "a beats e", "a", "e").outcome == HOLDS
    assert r.spearman(SKILLS) == pytest.approx(1.0)
    # same seed, same intervals
    pd.testing.assert_frame_equal(frame, bradley_terry(simulate(), n_boot=100, seed=0).to_frame())


def test_bootstrap_intervals_cover_the_true_strengths():
    truth = SKILLS - SKILLS.mean()
    covered = []
    for sim in range(40):
        f = bradley_terry(simulate(n=400, seed=100 + sim), n_boot=200, seed=sim).to_frame()
        t = truth.reindex(f.index)
        covered += ((f["ci_low"] <= t) & (t <= f["ci_high"])).tolist()
    assert np.mean(covered) >= 0.85, f"95% intervals covered the truth {np.mean(covered):.0%} of the time"


def test_bt_mle_that_does_not_exist_is_refused():
    c = pd.DataFrame({"a": ["x", "x", "y"], "b": ["y", "z", "z"], "outcome": [1.0, 1.0, 1.0]})  # x never loses
    with pytest.raises(ValueError, match="MLE does not exist"):
        bradley_terry(c)
    r = bradley_terry(c, alpha=0.5, n_boot=20)
    assert r.order()[0] == "x" and np.isfinite(r.strengths).all()


# -- Elo ------------------------------------------------------------------------------------------

def test_elo_depends_on_order_where_bt_does_not():
    c = simulate(n=300, seed=3)
    given = elo(c, k=32)
    reversed_ = elo(c.iloc[::-1], k=32)
    assert np.abs(given.ratings - reversed_.ratings).max() > 5  # Elo points
    np.testing.assert_allclose(bradley_terry(c, n_boot=0).strengths, bradley_terry(c.iloc[::-1], n_boot=0).strengths,
                               atol=1e-9)
    dep = elo_order_dependence(c, n_orders=30, k=32, n_boot=20, seed=0)
    check_result(dep)
    assert dep.bt_max_change < 1e-9 and dep.n_changed() > 0
    assert dep.claims()["elo_depends_on_order"].outcome == HOLDS
    assert given.ratings.sum() == pytest.approx(1000 * 5)  # Elo moves points between players, keeps the total
    check_result(given)


def test_elo_update_matches_its_definition():
    c = pd.DataFrame({"a": ["x"], "b": ["y"], "outcome": [1.0]})
    r = elo(c, k=20, initial=1500).ratings
    assert r["x"] == pytest.approx(1510) and r["y"] == pytest.approx(1490)  # expected score 1/2 at equal ratings


# -- tournaments ----------------------------------------------------------------------------------

def test_round_robin_plays_every_pair_once():
    items = list("abcdefg")
    pairs = round_robin(items, np.random.default_rng(0))
    assert len(pairs) == 21 and set(map(frozenset, pairs)) == set(map(frozenset, combinations(items, 2)))
    played = run_design("round_robin", items, NoisyJudge(pd.Series(0.0, index=items)), 21 * 2, seed=0)
    assert (played.groupby("batch").apply(lambda b: len(set(map(frozenset, zip(b["a"], b["b"]))))) == 21).all()


@pytest.mark.parametrize("n", [2, 5, 8, 13])
def test_single_elimination_has_n_minus_one_matches_and_one_winner(n):
    items = [f"m{i}" for i in range(n)]
    bracket = single_elimination(items, NoisyJudge(pd.Series(np.linspace(1, -1, n), index=items), 0.3),
                                 np.random.default_rng(n))
    assert len(bracket) == n - 1
    losers = set(np.where(bracket["outcome"] == 1, bracket["b"], bracket["a"]))
    assert len(losers) == n - 1 and len(set(items) - losers) == 1  # everyone but the champion loses once
    last = bracket.iloc[-1]
    assert set(items) - losers == {last["a"] if last["outcome"] == 1 else last["b"]}


def test_swiss_pairs_by_score_without_rematches():
    items = [f"m{i}" for i in range(10)]
    judge = NoisyJudge(pd.Series(np.linspace(2, -2, 10), index=items), 0.1)
    rounds = swiss(items, judge, np.random.default_rng(0))
    score, played = dict.fromkeys(items, 0.0), set()
    for _ in range(5):  # one Swiss tournament of 10 players: ceil(log2 10) + 1 = 5 rounds
        r = next(rounds)
        assert r["tournament"].eq(0).all() and len(r) == 5
        pairs = set(map(frozenset, zip(r["a"], r["b"])))
        assert not pairs & played, "a rematch within one Swiss tournament"
        gaps = [abs(score[a] - score[b]) for a, b in zip(r["a"], r["b"])]
        assert np.mean(gaps) <= 1.0  # neighbours by score meet
        for a, b, o in zip(r["a"], r["b"], r["outcome"]):
            score[a] += o
            score[b] += 1 - o
        played |= pairs
    assert next(rounds)["tournament"].eq(1).all()  # then a new tournament starts


def test_design_curves_improve_with_judgments():
    curves = design_curves(pd.Series(np.linspace(2, -2, 8), index=list("abcdefgh")), [10, 60, 200], noise=0.1,
                           n_sims=6, seed=0)
    check_result(curves)
    f = curves.to_frame()
    for _, part in f.groupby("design"):
        assert part.sort_values("judgments")["spearman"].is_monotonic_increasing
    assert curves.claim_reaches("rr_reaches", "x", "round_robin", 200).outcome in (HOLDS, "not distinguishable")
    assert curves.judgments_needed().index.tolist() == ["round_robin", "swiss", "single_elimination"]


# -- judges ---------------------------------------------------------------------------------------

def _planted_judge(bias, quality):
    """P(A) = sigmoid(quality[first] - quality[second] + bias): a position bias of `bias` log-odds."""
    return CallableJudge(lambda p, first, second: float(expit(quality[first] - quality[second] + bias)), "planted")


def test_swapping_measures_and_removes_a_planted_position_bias():
    rng = np.random.default_rng(0)
    n = 200
    x, y = [f"x{i}" for i in range(n)], [f"y{i}" for i in range(n)]
    gap = rng.normal(0.5, 1.0, n)  # x is better where gap > 0
    quality = {**dict(zip(x, gap)), **dict.fromkeys(y, 0.0)}
    truth = (gap > 0).astype(float)
    fair = judge_pairs(_planted_judge(0.0, quality), [""] * n, x, y, truth=truth)
    biased = judge_pairs(_planted_judge(2.0, quality), [""] * n, x, y, truth=truth)
    check_result(biased)
    assert fair.claims()["judge_position_bias"].outcome != HOLDS
    assert biased.claims()["judge_position_bias"].outcome == HOLDS
    assert biased.claims(side="less")["judge_position_bias"].outcome == DOES_NOT_HOLD
    acc = biased.to_frame()["accuracy"]
    # either order alone errs where the bias outweighs the quality gap; the average does not
    assert acc["p_averaged"] == fair.to_frame().loc["p_averaged", "accuracy"] > max(acc["x_first"], acc["x_second"])
    # averaging the verdicts instead: a flipped pair is a tie, so it lands between the orders
    assert acc["verdicts_averaged"] == pytest.approx((acc["x_first"] + acc["x_second"]) / 2)
    assert biased.claims()["judge_beats_chance"].outcome == HOLDS
    # the averaged judge gives the same answer whichever order the pair comes in
    swapped = judge_pairs(_planted_judge(2.0, quality), [""] * n, y, x)
    np.testing.assert_allclose(biased.p_x()["p_averaged"], 1 - swapped.p_x()["p_averaged"])
    # a symmetric bias cancels in the average: the averaged verdicts are the fair judge's
    assert ((biased.p_x()["p_averaged"] > 0.5) == (fair.p_x()["p_averaged"] > 0.5)).all()
    assert biased.claims()["judge_order_flips_verdicts"].outcome == HOLDS


def test_callable_judge_answers_letters_and_is_checked():
    j = CallableJudge(lambda p, a, b: "A" if len(a) >= len(b) else "B", "longer")
    audit = judge_pairs(j, ["q", "q"], ["long answer", "no"], ["short", "a longer one"], truth=[1, 0])
    assert audit.to_frame().loc["p_averaged", "accuracy"] == 1.0
    with pytest.raises(ValueError, match="expected 'A', 'B'"):
        judge_pairs(CallableJudge(lambda p, a, b: "maybe"), ["q"], ["a"], ["b"])
    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        judge_pairs(CallableJudge(lambda p, a, b: 1.5), ["q"], ["a"], ["b"])
    with pytest.raises(TypeError, match="p_first"):
        judge_pairs(lambda p, a, b: 0.5, ["q"], ["a"], ["b"])
    with pytest.raises(ValueError, match="one entry per pair"):
        judge_pairs(j, ["q"], ["a", "b"], ["c"])


class _LetterEngine:
    """A fake engine whose next token is A with probability 0.8 whatever it reads (a pure position bias)."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def apply_chat_template(self, prompts):
        return [p + "\nAnswer: " for p in prompts]

    def next_token_logprobs(self, texts, token_ids):
        a = self.tokenizer.encode("A", add_special_tokens=False)[0]
        return np.log([[0.8 if t == a else 0.1 for t in token_ids] for _ in texts])


def test_logprob_judge_reads_the_label_tokens():
    judge = LogprobJudge(_LetterEngine(minilm_tokenizer()), max_chars=20)
    audit = judge_pairs(judge, ["a question"] * 4, ["w"] * 4, ["z"] * 4, truth=1)
    np.testing.assert_allclose(audit.p_xy, 0.8 / 0.9)
    assert audit.to_frame().loc["p_averaged", "accuracy"] == 0.0  # exactly 1/2 is no verdict for x
    assert audit.to_frame().loc["verdicts_averaged", "accuracy"] == 0.5  # every verdict flips: all ties
    claims = audit.claims()
    assert claims["judge_position_bias"].outcome == HOLDS and claims["judge_beats_chance"].outcome != HOLDS
    assert judge.prompt("q" * 50, "r" * 50, "s").count("q") == 20  # the conversation keeps its end


# -- aggregation ----------------------------------------------------------------------------------

CYCLE = pd.DataFrame({"A": [3.0, -3.0, 0.0], "B": [0.0, 3.0, -3.0], "C": [-3.0, 0.0, 3.0]}, index=["g1", "g2", "g3"])


def test_three_consistent_groups_pool_into_a_condorcet_cycle():
    c = simulate_groups(CYCLE, {"g1": 900, "g2": 900, "g3": 900}, seed=0)
    for g, part in c.groupby("group"):  # each group on its own has a Condorcet winner: no cycle
        m = majority_matrix(part)
        assert condorcet_cycle(m) is None and condorcet_winner(m) == CYCLE.loc[g].idxmax()
    pooled = majority_matrix(c)
    assert condorcet_winner(pooled) is None
    cycle = condorcet_cycle(pooled)
    assert cycle is not None and set(cycle) == {"A", "B", "C"}
    x, y, z = cycle
    assert pooled.loc[x, y] > 0.5 and pooled.loc[y, z] > 0.5 and pooled.loc[z, x] > 0.5
    ag = aggregate(c, n_boot=100, seed=0)
    check_result(ag)
    assert ag.cycle_claim("cycle", "the pooled majorities cycle").outcome == HOLDS
    assert ag.distances().shape == (4, 3)


def test_rules_and_rank_distance():
    assert rank_distance([3, 2, 1], [3, 2, 1]) == 0.0 and rank_distance([3, 2, 1], [1, 2, 3]) == 1.0
    assert rank_distance([1, 1, 1], [3, 2, 1]) == 0.5  # a tie counts half
    skills = pd.DataFrame({"A": [2.0, 1.5], "B": [0.0, 0.5], "C": [-2.0, -2.0]}, index=["big", "small"])
    ag = aggregate(simulate_groups(skills, {"big": 800, "small": 200}, seed=1), n_boot=50, seed=0)
    assert ag.cycle is None and ag.condorcet_winner == "A"
    assert (ag.to_frame()["order"] == "A > B > C").all()  # groups that agree: every rule agrees
    with pytest.raises(ValueError, match="no Condorcet cycle"):
        ag.cycle_claim("x", "y")


# -- validation -----------------------------------------------------------------------------------

@pytest.mark.parametrize("bad, message", [
    (pd.DataFrame({"a": ["x"], "b": ["y"]}), "column"),
    (pd.DataFrame({"a": [], "b": [], "outcome": []}), "empty"),
    (pd.DataFrame({"a": ["x"], "b": ["x"], "outcome": [1.0]}), "itself"),
    (pd.DataFrame({"a": ["x"], "b": ["y"], "outcome": [2.0]}), "outcome must be"),
    (pd.DataFrame({"a": ["x", None], "b": ["y", "x"], "outcome": [1.0, 0.0]}), "missing"),
])
def test_bad_comparisons_are_named(bad, message):
    with pytest.raises(ValueError, match=message):
        check_comparisons(bad)
    with pytest.raises(TypeError, match="DataFrame"):
        check_comparisons([("x", "y", 1)])


def test_bad_parameters_are_named():
    c = simulate(n=50)
    with pytest.raises(ValueError, match="alpha"):
        bradley_terry(c, alpha=-1)
    with pytest.raises(ValueError, match="K-factor"):
        elo(c, k=0)
    with pytest.raises(ValueError, match="noise"):
        NoisyJudge(SKILLS, noise=1.5)
    with pytest.raises(ValueError, match="design must be"):
        run_design("league", list("ab"), NoisyJudge(SKILLS), 5)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        aggregate(c.assign(group=["g", "h"] * 25), alpha=0)
    with pytest.raises(ValueError, match="at least 2 groups"):
        aggregate(c.assign(group="g"))
    with pytest.raises(ValueError, match="no row in group_skills"):
        simulate_groups(CYCLE, {"g9": 10})
    with pytest.raises(ValueError, match="empty"):
        simulate_comparisons(NoisyJudge(SKILLS), [])


def test_a_mixture_finds_the_groups_from_anonymous_judgments():
    from plural_kit.rank import discover_groups

    c = simulate_groups(CYCLE, {"g1": 600, "g2": 600, "g3": 600}, raters_per_group=6, seed=2)
    assert c.groupby("group")["rater"].nunique().eq(6).all()
    found = discover_groups(c, 3, seed=0)
    check_result(found)
    assert found.n_matched() == 18 and found.claim("groups", "found").outcome == HOLDS
