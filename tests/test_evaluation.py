"""plural_kit.reward.evaluation: claims about reward models with users as the unit of replication."""
import copy

import numpy as np
import pandas as pd
import pytest

from plural_kit import metrics, stats
from plural_kit.claims import DOES_NOT_HOLD, HOLDS, NOT_DISTINGUISHABLE
from plural_kit.data.synthetic import (
    first_pairs_per_user,
    make_ideal_point_preferences,
    split_users,
)
from plural_kit.results import check_result
from plural_kit.reward import BradleyTerry, MixtureBT
from plural_kit.reward.evaluation import (
    ari_claim,
    as_pairs,
    every_proportion_claim,
    few_shot_curve,
    few_shot_curves,
    gap_change_claim,
    group_difference_claim,
    metric_claim,
    per_user_difference,
)


@pytest.fixture(scope="module")
def pairs():
    """60 users x 20 pairs in 3 groups; two models' probabilities on the same pairs."""
    rng = np.random.default_rng(0)
    users = np.repeat([f"u{i:02d}" for i in range(60)], 20)
    groups = np.repeat(np.arange(60) % 3, 20)
    good = np.clip(rng.normal(0.8, 0.15, users.size), 0.01, 0.99)
    coin = rng.uniform(0.01, 0.99, users.size)
    return users, groups, good, coin


@pytest.mark.parametrize("metric, reference", [
    ("accuracy", lambda p, g: metrics.accuracy(p)),
    ("log-loss", lambda p, g: metrics.log_loss(p)),
    ("ECE", lambda p, g: metrics.expected_calibration_error(p)),
    ("worst-group accuracy", metrics.worst_group_accuracy),
])
def test_metric_claim_estimates_what_plural_kit_metrics_computes(pairs, metric, reference):
    users, groups, good, coin = pairs
    one = metric_claim("m", "s", good, users, metric=metric, groups=groups)
    assert one.estimate == pytest.approx(reference(good, groups), abs=1e-12)
    assert one.quantity == metric and "bootstrap over 60 users" in one.evidence()
    diff = metric_claim("d", "s", good, users, baseline=coin, metric=metric, groups=groups)
    assert diff.estimate == pytest.approx(reference(good, groups) - reference(coin, groups), abs=1e-12)
    assert diff.ci_low <= diff.estimate <= diff.ci_high


def test_metric_claim_outcomes_and_seed(pairs):
    users, _groups, good, coin = pairs
    assert metric_claim("better", "s", good, users, baseline=coin).outcome == HOLDS
    assert metric_claim("worse", "s", coin, users, baseline=good).outcome == DOES_NOT_HOLD
    assert metric_claim("same", "s", good, users, baseline=good).outcome == NOT_DISTINGUISHABLE
    assert metric_claim("above", "s", good, users, threshold=0.5).outcome == HOLDS
    assert metric_claim("below", "s", good, users, threshold=0.5, side="less").outcome == DOES_NOT_HOLD
    assert metric_claim("a", "s", coin, users, seed=1) == metric_claim("a", "s", coin, users, seed=1)


def test_the_interval_resamples_users_not_pairs():
    # two users always right, two always wrong: 400 pairs, but only 4 independent units
    users = np.repeat(["a", "b", "c", "d"], 100)
    p = np.r_[np.full(200, 0.9), np.full(200, 0.1)]
    claim = metric_claim("half", "s", p, users, threshold=0.5)
    assert claim.estimate == 0.5 and claim.ci_high - claim.ci_low >= 0.5
    pair_level = stats.bootstrap_ci((p > 0.5).astype(float), seed=0)
    assert pair_level.ci_high - pair_level.ci_low < 0.15


def test_metric_claim_rejects_bad_input(pairs):
    users, _groups, good, coin = pairs
    with pytest.raises(ValueError, match="metric must be"):
        metric_claim("m", "s", good, users, metric="auc")
    with pytest.raises(ValueError, match="needs 'groups'"):
        metric_claim("m", "s", good, users, metric="worst-group accuracy")
    with pytest.raises(ValueError, match="same pairs"):
        metric_claim("m", "s", good, users, baseline=coin[:10])
    with pytest.raises(ValueError, match="user of every pair"):
        metric_claim("m", "s", good, users[:10])


def test_gap_change_is_paired_over_the_users_both_settings_share():
    users = np.repeat(["a", "b", "c", "d", "e"], 10)
    oracle = np.ones(users.size)
    rng = np.random.default_rng(1)
    worse = np.where(rng.random(users.size) < 0.4, 0.2, 0.8)
    better = np.where(rng.random(users.size) < 0.05, 0.2, 0.8)
    gap_big, gap_small = per_user_difference(oracle, worse, users), per_user_difference(oracle, better, users)
    assert list(gap_big.index) == ["a", "b", "c", "d", "e"]
    assert gap_big.mean() == pytest.approx(metrics.accuracy(oracle) - metrics.accuracy(worse))
    grows = gap_change_claim("grows", "s", gap_big, gap_small)
    assert grows.outcome == HOLDS and "paired bootstrap over 5 users" in grows.evidence()
    assert gap_change_claim("shrinks", "s", gap_big, gap_small, side="less").outcome == DOES_NOT_HOLD
    partial = gap_change_claim("x", "s", gap_big, gap_small.drop(["a", "b"]))
    assert "over 3" in partial.evidence()
    with pytest.raises(ValueError, match="share no user"):
        gap_change_claim("x", "s", gap_big, gap_small.rename(lambda u: u + "!"))


def test_ari_claim_perfect_random_and_alignment():
    users = pd.Index([f"u{i}" for i in range(90)])
    truth = pd.Series(np.arange(90) % 3, index=users)
    relabelled = ((truth + 1) % 3).iloc[::-1]  # same partition, other labels, other order
    perfect = ari_claim("found", "s", truth, relabelled)
    assert perfect.outcome == HOLDS and perfect.estimate == 1.0
    random = pd.Series(np.random.default_rng(0).integers(0, 3, 90), index=users)
    assert ari_claim("chance", "s", truth, random).outcome == NOT_DISTINGUISHABLE
    with pytest.raises(ValueError, match="no true group"):
        ari_claim("x", "s", truth.iloc[:10], random)


def test_group_difference_claim_finds_the_planted_covariate_and_not_noise():
    rng = np.random.default_rng(0)
    users = pd.Index([f"u{i}" for i in range(120)])
    groups = pd.Series(np.repeat(["x", "y"], 60), index=users)
    noise = pd.DataFrame(rng.normal(size=(120, 5)), index=users, columns=list("OCEAN"))
    planted = noise.assign(E=noise["E"] + np.where(groups == "x", -1.0, 1.0))     # 2 SD of the noise apart
    claim = group_difference_claim("g", "s", groups.iloc[::-1], planted, n_boot=400)
    assert claim.outcome == HOLDS and claim.details["largest"] == "E" and claim.estimate > 1.0
    assert claim.confidence == pytest.approx(0.99)                                  # Bonferroni over 5
    swapped = group_difference_claim("g", "s", groups.map({"x": "y", "y": "x"}), planted, n_boot=400)
    assert swapped.estimate == pytest.approx(claim.estimate)                        # labels are arbitrary
    null = [group_difference_claim("g", "s", groups, pd.DataFrame(rng.normal(size=(120, 5)), index=users),
                                   n_boot=200, seed=s).outcome for s in range(10)]
    assert null.count(HOLDS) <= 2
    assert group_difference_claim("g", "s", groups, noise["O"] * 30 + 40, n_boot=200).details["largest"] == "O"
    with pytest.raises(ValueError, match="two groups"):
        group_difference_claim("g", "s", pd.Series(np.arange(120) % 3, index=users), noise)
    with pytest.raises(ValueError, match="no .*covariate"):
        group_difference_claim("g", "s", groups, noise.iloc[:100])
    with pytest.raises(ValueError, match="do not vary"):
        group_difference_claim("g", "s", groups, noise.assign(C=1.0))


def test_every_proportion_claim_is_decided_by_the_weakest():
    strong = {"a": (95, 100), "b": (90, 100)}
    claim = every_proportion_claim("all", "s", strong, label="weakest trait")
    assert claim.outcome == HOLDS and claim.details == {"weakest trait": "b", "of": 2}
    mixed = every_proportion_claim("all", "s", {**strong, "c": (55, 100)})
    assert mixed.outcome == NOT_DISTINGUISHABLE and mixed.details["weakest"] == "c"
    assert every_proportion_claim("all", "s", {**strong, "c": (20, 100)}).outcome == DOES_NOT_HOLD
    with pytest.raises(ValueError, match="empty"):
        every_proportion_claim("all", "s", {})


@pytest.fixture(scope="module")
def newcomers():
    data = make_ideal_point_preferences(n_items=150, n_features=6, n_groups=2, users_per_group=25,
                                        pairs_per_user=50, reward="linear", disagreement=1.0, seed=3)
    seen, new = split_users(data, test_size=0.4, seed=0)
    model = MixtureBT(n_components=2, n_init=1, device="cpu", random_state=0)
    model.fit(seen.X_chosen, seen.X_rejected, seen.users)
    pool, later = first_pairs_per_user(new, 20)
    return model, pool, later


def test_few_shot_curve_adapts_copies_on_each_users_first_pairs(newcomers):
    model, pool, later = newcomers
    known = model.users_.copy()
    curve = few_shot_curve(model, [0, 2, 20], pool=(pool.X_chosen, pool.X_rejected, pool.users),
                           evaluation=(later.X_chosen, later.X_rejected, later.users), groups=later.groups)
    assert list(model.users_) == list(known)  # the trained model is left alone
    assert curve.shots == (0, 2, 20) and set(curve.p_chosen) == {0, 2, 20}
    with pytest.warns(UserWarning):
        population = model.predict_proba(later.X_chosen, later.X_rejected, later.users)
    np.testing.assert_allclose(curve.p_chosen[0], population)
    # k = 2: the same as adapting by hand on each user's first two pairs
    few, _ = first_pairs_per_user(pool, 2)
    by_hand = copy.deepcopy(model).adapt(few.X_chosen, few.X_rejected, few.users)
    np.testing.assert_allclose(curve.p_chosen[2], by_hand.predict_proba(later.X_chosen, later.X_rejected, later.users))
    assert set(pd.unique(later.users)) <= set(curve.adapted.users_)
    check_result(curve)
    table = curve.table()
    assert list(table.index) == [0, 2, 20] and list(table.columns) == ["accuracy", "worst group"]
    assert table.loc[2, "accuracy"] == pytest.approx(metrics.accuracy(curve.p_chosen[2]))
    gain = curve.gain_claim("gain", "twenty own pairs help a new user", 20)
    assert gain.outcome == HOLDS and gain.details["k"] == 20
    assert "bootstrap over 20 users" in gain.evidence()
    with pytest.raises(ValueError, match="not among"):
        curve.gain_claim("gain", "s", 5)


def test_few_shot_curve_bt_and_bad_shots(newcomers):
    _model, pool, later = newcomers
    bt = BradleyTerry(device="cpu").fit(pool.X_chosen, pool.X_rejected)
    curve = few_shot_curve(bt, [0, 5], pool=(pool.X_chosen, pool.X_rejected, pool.users),
                           evaluation=(later.X_chosen, later.X_rejected, later.users))
    assert "worst group" not in curve.table().columns
    with pytest.raises(ValueError, match="shots"):
        few_shot_curve(bt, [-1], pool=(pool.X_chosen, pool.X_rejected, pool.users),
                       evaluation=(later.X_chosen, later.X_rejected, later.users))


def test_few_shot_curves_compare_models_on_the_same_new_users(newcomers):
    model, pool, later = newcomers
    bt = BradleyTerry(device="cpu").fit(pool.X_chosen, pool.X_rejected)
    args = {"pool": pool, "evaluation": (later.X_chosen, later.X_rejected, later.users), "groups": later.groups}
    curves = few_shot_curves({"MixtureBT": model, "BT": bt}, [0, 2, 20], references={"oracle": later.p_chosen},
                             **args)
    check_result(curves)
    single = few_shot_curve(model, [0, 2, 20], **args)
    np.testing.assert_allclose(curves["MixtureBT"].p_chosen[20], single.p_chosen[20])
    frame = curves.to_frame()
    assert list(frame.columns) == ["model", "shots", "accuracy", "worst group"] and len(frame) == 6
    wide = curves.wide()
    assert list(wide.columns) == ["MixtureBT", "BT", "oracle"]
    assert wide.loc[20, "oracle"] == pytest.approx(metrics.accuracy(later.p_chosen))
    assert curves.reference_values("worst group")["oracle"] == pytest.approx(
        metrics.worst_group_accuracy(later.p_chosen, later.groups))
    # model vs model at k, and model vs a reference: the same claims as metric_claim on the predictions
    beats = curves.claim("beats", "s", "MixtureBT", "BT", 20)
    assert beats.outcome == HOLDS and beats.details == {"k": 20}
    assert beats == metric_claim("beats", "s", single.p_chosen[20], later.users, baseline=curves["BT"].p_chosen[20],
                                 groups=later.groups, details={"k": 20})
    short = curves.claim("short", "s", "oracle", "MixtureBT", 0)
    assert short.estimate == pytest.approx(metrics.accuracy(later.p_chosen) - metrics.accuracy(single.p_chosen[0]))
    assert curves.gain_claim("g", "s", "MixtureBT", 20) == single.gain_claim("g", "s", 20)
    d = curves.to_dict()
    assert sorted(set(d["shots"])) == [0, 2, 20] and set(d["references"]) == {"accuracy", "worst group"}
    ax = curves.plot(y="worst group")
    assert {"MixtureBT", "BT", "oracle"} <= {t.get_text() for t in ax.get_legend().get_texts()}
    with pytest.raises(KeyError, match="no curve"):
        curves["PAL"]
    with pytest.raises(ValueError, match="not among"):
        curves.claim("x", "s", "MixtureBT", "BT", 5)
    with pytest.raises(ValueError, match="evaluation pairs"):
        few_shot_curves({"BT": bt}, [0], references={"oracle": later.p_chosen[:5]}, **args)


def test_as_pairs_takes_a_tuple_or_a_data_set(newcomers):
    _, pool, _ = newcomers
    c, r, u = as_pairs(pool)
    assert c is pool.X_chosen and r is pool.X_rejected and u is pool.users
    assert as_pairs((c, r, u))[0] is c
    with pytest.raises(TypeError, match="'pool' must be"):
        as_pairs([c, r, u], "pool")
