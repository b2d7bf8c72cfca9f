"""plural_kit.reward.experiments: the lessons' experiments as results, on small synthetic data."""
import copy
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from plural_kit import metrics
from plural_kit.claims import HOLDS, NOT_DISTINGUISHABLE
from plural_kit.data.synthetic import make_ideal_point_preferences, quadratic_features, split_pairs
from plural_kit.results import check_result
from plural_kit.reward import BradleyTerry, MixtureBT
from plural_kit.reward.evaluation import metric_claim
from plural_kit.reward.experiments import (KnownGroups, OnFeatures, compare_models, mixture_gap, reduce_embeddings,
                                           text_pairs, trait_probe, user_representations)


@pytest.fixture(scope="module")
def ideal():
    data = make_ideal_point_preferences(n_items=120, n_features=4, n_groups=2, users_per_group=12,
                                        pairs_per_user=40, reward="ideal_point", temperature=0.25, seed=0)
    train, test = split_pairs(data, test_size=0.25, seed=0)
    return data, train, test


def _pairs(d):
    return d.X_chosen, d.X_rejected, d.users


@pytest.fixture(scope="module")
def comparison(ideal):
    data, train, test = ideal
    models = {"BT": BradleyTerry(device="cpu"),
              "MixtureBT [x, |x|^2]": OnFeatures(MixtureBT(n_components=2, device="cpu", random_state=0),
                                                 quadratic_features),
              "known groups": KnownGroups(data.user_groups, device="cpu")}
    return compare_models(models, _pairs(train), _pairs(test), groups=test.groups, oracle=test.p_chosen,
                          true_groups=data.user_groups, n_boot=200)


def test_on_features_is_the_model_on_transformed_features(ideal):
    _, train, test = ideal
    wrapped = OnFeatures(MixtureBT(n_components=2, device="cpu", random_state=0), quadratic_features)
    wrapped.fit(*_pairs(train))
    by_hand = MixtureBT(n_components=2, device="cpu", random_state=0).fit(
        quadratic_features(train.X_chosen), quadratic_features(train.X_rejected), train.users)
    np.testing.assert_allclose(wrapped.predict_proba(*_pairs(test)),
                               by_hand.predict_proba(quadratic_features(test.X_chosen),
                                                     quadratic_features(test.X_rejected), test.users))
    assert list(wrapped.users_) == list(by_hand.users_)  # attributes are the wrapped model's
    again = pickle.loads(pickle.dumps(copy.deepcopy(wrapped)))
    np.testing.assert_allclose(again.predict_proba(*_pairs(test)), wrapped.predict_proba(*_pairs(test)))
    with pytest.raises(AttributeError):
        _ = wrapped.no_such_attribute


def test_known_groups_fits_one_reward_per_true_group(ideal):
    data, train, test = ideal
    known = KnownGroups(data.user_groups, device="cpu").fit(*_pairs(train))
    assert sorted(known.models_) == [0, 1]
    rows = test.groups == 1
    by_hand = BradleyTerry(device="cpu").fit(train.X_chosen[train.groups == 1], train.X_rejected[train.groups == 1])
    np.testing.assert_allclose(known.predict_proba(*_pairs(test))[rows],
                               by_hand.predict_proba(test.X_chosen[rows], test.X_rejected[rows]))
    one = BradleyTerry(device="cpu").fit(train.X_chosen, train.X_rejected)
    assert known.score(*_pairs(test)) > one.score(test.X_chosen, test.X_rejected) + 0.1  # groups disagree
    with pytest.raises(ValueError, match="without a known group"):
        known.predict_proba(test.X_chosen[:2], test.X_rejected[:2], np.array(["nobody", "nobody"], dtype=object))


def test_compare_models_table_and_claims(comparison, ideal):
    _, train, test = ideal
    check_result(comparison)
    frame = comparison.to_frame()
    assert list(frame.index) == ["BT", "MixtureBT [x, |x|^2]", "known groups", "oracle"]
    assert frame.loc["oracle", "accuracy"] == pytest.approx(test.oracle_accuracy(observed=True))
    bt_p = comparison.p_chosen["BT"]
    assert frame.loc["BT", "accuracy"] == pytest.approx(metrics.accuracy(bt_p))
    assert frame.loc["BT", "worst group"] == pytest.approx(metrics.worst_group_accuracy(bt_p, test.groups))
    assert frame.loc["BT", "ECE"] == pytest.approx(metrics.expected_calibration_error(bt_p))
    assert (frame["ci_low"] <= frame["accuracy"]).all() and (frame["accuracy"] <= frame["ci_high"]).all()
    assert frame.loc["BT", "train accuracy"] == pytest.approx(comparison.models["BT"].score(*_pairs(train)))
    # only the mixture clusters users; on this easy data it finds the two groups
    assert np.isnan(frame.loc["BT", "ARI"]) and frame.loc["MixtureBT [x, |x|^2]", "ARI"] == pytest.approx(1.0)
    # ideal points need |x|^2: the mixture on [x, |x|^2] beats one linear reward, and the same claim
    # as metric_claim on the stored predictions
    claim = comparison.claim("m", "s", "MixtureBT [x, |x|^2]", "BT")
    assert claim.outcome == HOLDS
    assert claim == metric_claim("m", "s", comparison.p_chosen["MixtureBT [x, |x|^2]"], test.users, baseline=bt_p,
                                 groups=test.groups)
    assert comparison.claim("w", "s", "known groups", "BT", metric="worst-group accuracy").outcome == HOLDS
    assert comparison.ari_claim("a", "s", "MixtureBT [x, |x|^2]").outcome == HOLDS
    with pytest.raises(ValueError, match="no clusters"):
        comparison.ari_claim("a", "s", "BT")
    with pytest.raises(KeyError, match="no model"):
        comparison.claim("x", "s", "PAL")
    groups = comparison.group_frame()
    assert list(groups.index) == [0, 1] and groups.loc[0, "oracle"] == pytest.approx(
        metrics.group_accuracy(test.p_chosen, test.groups)[0])
    d = comparison.to_dict()
    assert d["table"]["model"][0] == "BT" and set(d["group_accuracy"]) == set(frame.index)


def test_compare_models_plots(comparison):
    import matplotlib.pyplot as plt

    ax = comparison.plot(xlim=(0.4, 1.0))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["BT", "MixtureBT [x, |x|^2]", "known groups"]
    assert "oracle" in [line.get_label() for line in ax.get_lines()]
    for kind in ("groups", "reliability"):
        assert hasattr(comparison.plot(kind=kind), "figure")
    with pytest.raises(ValueError, match="kind"):
        comparison.plot(kind="pie")
    plt.close("all")


def test_mixture_gap_sweeps_disagreement():
    gap = mixture_gap([0.0, 1.0], n_items=120, n_features=4, n_groups=2, users_per_group=10, pairs_per_user=40)
    check_result(gap)
    frame = gap.to_frame()
    assert list(frame.index) == [0.0, 1.0] and frame.index.name == "disagreement"
    # agreeing groups: one reward is as good as the mixture; orthogonal groups: the mixture wins
    assert frame.loc[1.0, "MixtureBT (K=2)"] - frame.loc[1.0, "one BradleyTerry"] > 0.1
    assert abs(frame.loc[0.0, "MixtureBT (K=2)"] - frame.loc[0.0, "one BradleyTerry"]) < 0.1
    assert gap.claim("b", "s", 1.0, "oracle", "bt").outcome == HOLDS
    assert gap.claim("b", "s", 1.0, "oracle", "bt").details == {"disagreement": 1.0}
    assert gap.gap_change_claim("g", "s", 1.0, 0.0).outcome == HOLDS
    assert gap.gap(1.0).mean() == pytest.approx(frame.loc[1.0, "oracle"] - frame.loc[1.0, "one BradleyTerry"])
    assert gap.to_dict()["disagreement"] == [0.0, 1.0]
    with pytest.raises(ValueError, match="not among"):
        gap.claim("b", "s", 0.5, "oracle", "bt")


def test_mixture_gap_sweeps_pairs_per_user():
    gap = mixture_gap([10, 40], vary="pairs_per_user", n_items=120, n_features=4, n_groups=2, users_per_group=10)
    frame = gap.to_frame()
    assert frame.index.name == "training pairs per user" and list(frame.index) == [10, 40]
    assert set(gap.users[10]) == set(gap.users[40]) and len(gap.users[10]) == 20 * 20  # 20 held out per user
    assert gap.claim("m", "s", 40, "oracle", "bt").details == {"pairs per user": 40}
    with pytest.raises(ValueError, match="vary"):
        mixture_gap([1.0], vary="temperature")


class _Stub:
    """A fitted pluralistic model as user_representations sees it: its vectors, and groups by the
    largest weight (n_groups=None) or by a k-means of the vectors (n_groups=K), as the fitters do."""

    def __init__(self, vectors: pd.DataFrame):
        self.vectors = vectors

    def user_representation(self) -> pd.DataFrame:
        return self.vectors

    def predict_groups(self, n_groups=None) -> pd.Series:
        from sklearn.cluster import KMeans

        if n_groups is None:
            return pd.Series(self.vectors.to_numpy().argmax(axis=1), index=self.vectors.index)
        labels = KMeans(n_clusters=n_groups, n_init=10, random_state=0).fit_predict(self.vectors.to_numpy())
        return pd.Series(labels, index=self.vectors.index)


def test_user_representations_cluster_and_score():
    rng = np.random.default_rng(0)
    users = pd.Index([f"u{i:02d}" for i in range(30)])
    truth = pd.Series(np.arange(30) % 3, index=users)
    clean = pd.DataFrame(np.eye(3)[truth] * 5 + rng.normal(0, 0.3, (30, 3)), index=users)
    noise = pd.DataFrame(rng.normal(0, 1, (31, 3)), index=[*users, "stranger"])  # a user without a true group
    models = {"clean": _Stub(clean), "noise": _Stub(noise)}
    reps = user_representations(models, truth, n_groups=3, seen=users[:20])
    check_result(reps)
    frame = reps.to_frame()
    assert frame.loc["clean", "ARI"] == pytest.approx(1.0) and frame.loc["noise", "users"] == 30
    assert "stranger" not in reps.clusters["noise"].index
    assert reps.ari_claim("c", "s", "clean").outcome == HOLDS
    assert reps.ari_claim("n", "s", "noise").outcome == NOT_DISTINGUISHABLE
    assert reps.xy["clean"].shape == (30, 2)
    by_weight = user_representations(models, truth)  # n_groups=None: each user's largest weight
    assert by_weight.ari("clean") == 1.0
    assert by_weight.ari("noise") == pytest.approx(
        adjusted_rand_score(truth, noise.loc[users].to_numpy().argmax(axis=1)))
    ax = reps.plot(model="clean", labels={0: "zero"})
    assert "zero" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_user_representations_of_fitted_models(ideal):
    data, train, _ = ideal
    mix = MixtureBT(n_components=2, device="cpu", random_state=0).fit(
        quadratic_features(train.X_chosen), quadratic_features(train.X_rejected), train.users)
    reps = user_representations({"MixtureBT": mix}, data.user_groups)
    pd.testing.assert_frame_equal(reps.vectors["MixtureBT"], mix.user_representation().loc[data.user_groups.index])
    assert reps.ari("MixtureBT") == pytest.approx(adjusted_rand_score(
        data.user_groups.loc[mix.users_], mix.predict_groups()))


def test_text_pairs_and_reduce_embeddings():
    rng = np.random.default_rng(0)
    texts = [f"t{i}" for i in range(40)]
    H = rng.normal(size=(40, 6))
    X = reduce_embeddings(H, texts, fit_on=texts[:30], n_components=3, seed=0)
    assert X.shape == (40, 3) and list(X.index) == texts and 0 < X.attrs["explained_variance"] <= 1
    # the reduction is fitted on the fit_on texts only: their components are centred, the others need not be
    np.testing.assert_allclose(X.iloc[:30].mean().to_numpy(), 0.0, atol=1e-12)
    table = pd.DataFrame({"chosen": ["t1", "t2"], "rejected": ["t3", "t0"], "user": ["a", "b"]})
    c, r, u = text_pairs(X, table)
    np.testing.assert_array_equal(c, X.loc[["t1", "t2"]].to_numpy())
    np.testing.assert_array_equal(r, X.loc[["t3", "t0"]].to_numpy())
    assert list(u) == ["a", "b"]
    with pytest.raises(ValueError, match="no embedding"):
        text_pairs(X, table.assign(chosen=["t1", "unknown"]))
    with pytest.raises(ValueError, match="columns"):
        text_pairs(X, table.drop(columns="user"))
    with pytest.raises(ValueError, match="fit_on"):
        reduce_embeddings(H, texts, fit_on=["nope"], n_components=2)


def test_trait_probe_reads_a_trait_that_is_there():
    rng = np.random.default_rng(1)
    n = 120
    agrees = rng.random(n) < 0.5
    emb = np.c_[np.where(agrees, 1.0, -1.0) + rng.normal(0, 0.3, n), rng.normal(size=(n, 3))]
    texts = [f"s{i}" for i in range(n)]
    trait = np.where(np.arange(n) % 2 == 0, "signal", "noise")
    agrees = np.where(trait == "noise", rng.random(n) < 0.5, agrees)  # the noise trait is not in the embedding
    labels = pd.DataFrame({"statement": texts + texts[:3], "trait": [*trait, *trait[:3]],
                           "agrees": [*agrees, *agrees[:3]]})
    X = pd.DataFrame(emb, index=texts)
    probe = trait_probe(X, labels, train=texts[:80], test=texts[80:])
    check_result(probe)
    frame = probe.to_frame()
    assert list(frame.index) == ["noise", "signal"] and (frame["n"] == 20).all()
    assert frame.loc["signal", "accuracy"] > 0.9
    assert probe.to_dict()["signal"] == frame.loc["signal", "accuracy"]
    assert probe.claim("every", "s").outcome != HOLDS  # decided by the weakest trait: noise
    only_signal = trait_probe(X, labels, train=texts[:80], test=texts[80:], traits=["signal"])
    assert only_signal.claim("signal", "s").outcome == HOLDS
    with pytest.raises(ValueError, match="columns"):
        trait_probe(X, labels.drop(columns="agrees"), texts[:80], texts[80:])


def test_plot_all_draws_every_model():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(2)
    users = pd.Index([f"u{i}" for i in range(12)])
    truth = pd.Series(np.arange(12) % 2, index=users)
    models = {m: _Stub(pd.DataFrame(rng.normal(size=(12, 3)), index=users)) for m in ("a", "b")}
    axes = user_representations(models, truth, n_groups=2).plot_all()
    assert len(axes) == 2 and axes[1].get_title().startswith("b (ARI")
    plt.close("all")


def test_viz_scatter_marks_seen_and_unseen():
    import matplotlib.pyplot as plt

    from plural_kit import viz

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0], "y": [1.0, 0.0, 1.0], "g": ["a", "b", "a"],
                          "users": ["seen", "unseen", "seen"]})
    ax = viz.scatter(frame, x="x", y="y", hue="g", style="users", title="t")
    assert ax.get_title() == "t" and list(ax.get_xticks()) == []
    assert {"a", "b", "seen", "unseen"} <= {t.get_text() for t in ax.get_legend().get_texts()}
    with pytest.raises(ValueError, match="needs columns"):
        viz.scatter(frame, x="x", y="z")
    plt.close("all")
