"""The worlds of lesson 06 (noise or disagreement), synthetic and on persona text, and the experiments run on them.

==================================  ==============================================================
function                            what it builds or runs
==================================  ==============================================================
:func:`flip_labels`                 annotators who flip each label with probability ``1 - eta``
:func:`two_worlds`                  two worlds with the same agreement rate: in ``"noise"`` everyone
                                    shares one reward and the minority flips labels; in ``"view"``
                                    the minority has its own reward and labels it carefully
:func:`noise_or_view`               BT, MixtureBT and ReliabilityBT in both worlds (NoiseOrView)
:func:`two_sources`                 two objectives, each labelled by its own annotators
                                    ("helpful" careful, "harmless" noisy); :func:`source_of`
:func:`rerank`                      best-of-n by a MultiHeadBT's heads, raw sum vs conjunction,
                                    winners judged by the true rewards (BestOfN)
:func:`trait_statements`            real text: persona pairs of two traits, statements embedded
:func:`trait_heads`                 one MultiHeadBT head per trait on those statements (the second
                                    trait's labels noisy)
:func:`rerank_statements`           best-of-n by those heads, responses of one held-out statement
                                    per trait, winners judged by the statements' labels (BestOfN)
:func:`head_transfer`               each trait head on each trait's held-out pairs (HeadTransfer)
:func:`weighted_user_preferences`   users whose reward weighs the groups' rewards (simplex rows)
:func:`weigh_objectives`            new users' weights on the heads from a few pairs (UserWeights)
:func:`source_calibration`          ECE per source: own heads vs one pooled BT (SourceCalibration)
:func:`stated_values`               a reward conditioned on stated values, tested on unseen values
                                    (StatedValues)
==================================  ==============================================================

In :func:`two_worlds` the minority's ``eta`` is set so that its labels agree with the majority's
reward equally often in both worlds: from agreement alone, noise and a view look the same.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from plural_kit import viz
from plural_kit.claims import Claims, claim_difference, claim_mean, claim_proportion
from plural_kit.data.persona import make_persona_preferences
from plural_kit.data.synthetic import (SyntheticPreferences, first_pairs_per_user, make_ideal_point_preferences,
                                      split_pairs)
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary, frame_summary
from plural_kit.reward.bt import BradleyTerry
from plural_kit.reward.conditioned import condition
from plural_kit.reward.evaluation import metric_claim
from plural_kit.reward.experiments import ModelComparison, compare_models, reduce_embeddings, text_pairs
from plural_kit.reward.mixture import MixtureBT
from plural_kit.reward.multihead import MultiHeadBT, calibration_by_source
from plural_kit.reward.reliability import ReliabilityBT
from plural_kit.reward.transforms import COMBINE, BestOfN, best_of_n, compare_best_of_n

if TYPE_CHECKING:
    from plural_kit.embed import EmbeddingExtractor

MAJORITY, MINORITY = 0, 1


def flip_labels(data: SyntheticPreferences, reliability: pd.Series, seed: int = 0) -> SyntheticPreferences:
    """Flip each label of user ``u`` with probability ``1 - reliability[u]`` (users missing: kept).

    ``p_chosen`` becomes the probability of the observed label under the noisy model,
    ``eta p + (1 - eta)(1 - p)``.
    """
    eta = pd.Series(reliability, dtype=float)
    if ((eta < 0) | (eta > 1)).any() or eta.isna().any():
        raise ValueError(f"reliability must be in [0, 1]; got {eta[(eta < 0) | (eta > 1) | eta.isna()].head(3).to_dict()}")
    e = eta.reindex(data.users).fillna(1.0).to_numpy()
    flip = np.random.default_rng(seed).random(len(data)) >= e
    prefs = data.preferences.copy()
    prefs.loc[flip, ["chosen", "rejected"]] = prefs.loc[flip, ["rejected", "chosen"]].to_numpy()
    p_true = np.where(flip, 1.0 - data.p_chosen, data.p_chosen)  # P(observed winner truly wins)
    return replace(
        data, preferences=prefs,
        X_chosen=np.where(flip[:, None], data.X_rejected, data.X_chosen),
        X_rejected=np.where(flip[:, None], data.X_chosen, data.X_rejected),
        p_chosen=e * p_true + (1.0 - e) * (1.0 - p_true),
    )


def agreement(data: SyntheticPreferences, group: int = MAJORITY) -> pd.Series:
    """Per user: the share of their labels that ``group``'s true reward ranks the same way."""
    agree = data.true_reward(data.X_chosen, group) > data.true_reward(data.X_rejected, group)
    return pd.Series(agree, index=pd.Index(data.users, name="user")).groupby(level=0, sort=False).mean()


def two_worlds(n_users: int = 40, minority: float = 0.3, pairs_per_user: int = 80, n_features: int = 8,
               n_items: int = 300, disagreement: float = 0.8, temperature: float = 0.1,
               seed: int = 0) -> tuple[dict[str, SyntheticPreferences], pd.Series]:
    """``({"noise": ..., "view": ...}, eta)``: the two worlds of the module docstring (same users,
    items and pairs drawn) and the noise world's planted reliability per user (Series, 1 for the
    majority).

    ``group`` is 0 for the majority and 1 for the minority (``minority`` of ``n_users``) in both.
    The minority's ``eta`` matches the view world's minority agreement with the majority reward.
    """
    if not 0 < minority < 0.5:
        raise ValueError(f"minority must be in (0, 0.5): a share of the users smaller than the majority; got {minority}")
    n_min = max(1, round(minority * n_users))
    kw = dict(n_items=n_items, n_features=n_features, users_per_group=[n_users - n_min, n_min],
              pairs_per_user=pairs_per_user, reward="linear", temperature=temperature, seed=seed)
    view = make_ideal_point_preferences(n_groups=2, disagreement=disagreement, **kw)
    clean = make_ideal_point_preferences(n_groups=2, disagreement=0.0, **kw)  # same items, one shared reward
    a_view = agreement(view.subset(view.groups == MINORITY)).mean()  # minority vs the majority's reward
    a_clean = agreement(clean.subset(clean.groups == MINORITY)).mean()  # careful labels of the same reward
    eta = float(np.clip((a_view + a_clean - 1.0) / (2.0 * a_clean - 1.0), 0.0, 1.0))
    planted = pd.Series(np.where(clean.user_groups == MINORITY, eta, 1.0), index=clean.user_groups.index,
                        name="reliability")
    return {"noise": flip_labels(clean, planted, seed=seed + 1), "view": view}, planted


@dataclass(frozen=True, repr=False)
class NoiseOrView(Result):
    """BT, MixtureBT and ReliabilityBT fitted in each world of :func:`two_worlds`.

    ``comparisons``: ``{world: ModelComparison}`` on the held-out pairs (groups 0 = majority,
    1 = minority); ``reliability``: ``{world: Series user -> fitted eta}``; ``planted``: Series
    user -> planted eta of the noise world; ``user_groups``: Series user -> group.
    """

    comparisons: dict[str, ModelComparison]
    reliability: dict[str, pd.Series]
    planted: pd.Series
    user_groups: pd.Series

    def to_frame(self) -> pd.DataFrame:
        """Per (world, model): held-out accuracy of the majority and the minority, MixtureBT's ARI,
        and the mean fitted reliability of each group (ReliabilityBT)."""
        rows = []
        for world, cmp in self.comparisons.items():
            acc = cmp.group_frame()
            eta = self.reliability[world].groupby(self.user_groups).mean()
            for model in acc.columns:
                rows.append({"world": world, "model": model, "majority accuracy": acc.loc[MAJORITY, model],
                             "minority accuracy": acc.loc[MINORITY, model],
                             "ARI": cmp.ari(model) if model in cmp.found_groups else np.nan,
                             "majority eta": eta[MAJORITY] if model == "ReliabilityBT" else np.nan,
                             "minority eta": eta[MINORITY] if model == "ReliabilityBT" else np.nan})
        return pd.DataFrame(rows).set_index(["world", "model"])

    def summary(self) -> Summary:
        return frame_summary("Noise or a different view: held-out accuracy per group, groups found, reliabilities",
                             self.to_frame(), f"planted minority eta in the noise world: "
                             f"{self.planted[self.user_groups == MINORITY].mean():.3f}")

    def to_dict(self) -> dict:
        return jsonable({"table": self.to_frame().reset_index().to_dict(orient="list"),
                         "planted_minority_eta": float(self.planted[self.user_groups == MINORITY].mean())})

    def _repr_fields(self) -> dict:
        return {"worlds": list(self.comparisons), "users": len(self.user_groups)}

    def _minority_claim(self, name, statement, world, model, baseline, **kw):
        cmp = self.comparisons[world]
        rows = cmp.groups == MINORITY
        return metric_claim(name, statement, cmp.p_chosen[model][rows], cmp.users[rows],
                            baseline=cmp.p_chosen[baseline][rows], **kw)

    def claims(self, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """The lesson's four claims (intervals over users)."""
        kw = dict(confidence=confidence, n_boot=n_boot, seed=seed)
        err = (self.reliability["noise"] - self.planted.reindex(self.reliability["noise"].index)).abs()
        eta = self.reliability["view"]
        g = self.user_groups.reindex(eta.index)
        return Claims([
            claim_mean("reliability_recovers_eta", "in the noise world, ReliabilityBT recovers the annotators' "
                       "planted reliabilities within 0.05 on average", err.to_numpy(), quantity="mean |eta - planted|",
                       threshold=0.05, side="less", method=f"bootstrap over {err.size} users", **kw),
            self._minority_claim("mixture_gains_on_noise", "in the noise world, MixtureBT predicts the minority's "
                                 "held-out labels better than ReliabilityBT", "noise", "MixtureBT", "ReliabilityBT",
                                 **kw),
            self._minority_claim("mixture_serves_minority_view", "in the view world, MixtureBT predicts the "
                                 "minority's held-out labels better than ReliabilityBT", "view", "MixtureBT",
                                 "ReliabilityBT", **kw),
            claim_difference("reliability_calls_view_noise", "in the view world, ReliabilityBT rates the consistent "
                             "minority as unreliable (its mean eta is more than 0.2 below the majority's)",
                             eta[g == MAJORITY].to_numpy(), eta[g == MINORITY].to_numpy(),
                             quantity="majority - minority mean eta", threshold=0.2, **kw),
        ])

    def plot(self, ax=None):
        """Held-out accuracy of the minority, per world and model."""
        frame = self.to_frame()["minority accuracy"].unstack("model")
        return viz.bars(frame, ylabel="minority's held-out accuracy", title="Noise or a different view?", ax=ax)


def noise_or_view(n_users: int = 40, minority: float = 0.3, pairs_per_user: int = 80, n_features: int = 8,
                  n_items: int = 300, disagreement: float = 0.8, temperature: float = 0.1, test_size: float = 0.25,
                  seed: int = 0, device: str = "auto") -> NoiseOrView:
    """Fit BT, MixtureBT (K=2) and ReliabilityBT in both worlds of :func:`two_worlds`; a
    :class:`NoiseOrView` (``test_size`` of each user's pairs held out)."""
    worlds, planted = two_worlds(n_users, minority, pairs_per_user, n_features, n_items, disagreement, temperature,
                                 seed)
    comparisons, reliability = {}, {}
    for world, data in worlds.items():
        train, test = split_pairs(data, test_size=test_size, seed=seed)
        models = {"BT": BradleyTerry(device=device), "MixtureBT": MixtureBT(n_components=2, device=device),
                  "ReliabilityBT": ReliabilityBT(device=device)}
        comparisons[world] = compare_models(models, train, test, groups=test.groups, oracle=test.p_chosen,
                                            true_groups=data.user_groups, n_groups=2, seed=seed)
        reliability[world] = models["ReliabilityBT"].reliability_
    return NoiseOrView(comparisons, reliability, planted, worlds["noise"].user_groups)


def weighted_user_preferences(data: SyntheticPreferences, weights: pd.DataFrame, pairs_per_user: int = 40,
                              seed: int = 0) -> SyntheticPreferences:
    """Pairs of users who weigh ``data``'s group rewards: user ``u``'s reward is
    ``sum_g weights.loc[u, g] r_g(x)`` (rows on the simplex, one column per group), labels drawn at
    ``data.temperature`` on ``data``'s items. ``group`` is each user's most weighted group."""
    W = np.asarray(weights, dtype=float)
    if W.ndim != 2 or W.shape[1] != data.n_groups or (W < 0).any() or not np.allclose(W.sum(axis=1), 1.0):
        raise ValueError(f"'weights' must be (n_users, {data.n_groups}) rows on the simplex; got shape {W.shape}")
    rng = np.random.default_rng(seed)
    n_items = data.items.shape[0]
    R = np.stack([data.true_reward(data.items, g) for g in range(data.n_groups)], axis=1)  # (items, groups)
    user = np.repeat(np.arange(W.shape[0]), pairs_per_user)
    a = rng.integers(0, n_items, user.size)
    b = (a + rng.integers(1, n_items, user.size)) % n_items
    p_a = 1.0 / (1.0 + np.exp(-np.einsum("ig,ig->i", R[a] - R[b], W[user]) / data.temperature))
    a_wins = rng.random(user.size) < p_a
    chosen, rejected = np.where(a_wins, a, b), np.where(a_wins, b, a)
    ids = np.asarray(weights.index, dtype=object)
    g = W.argmax(axis=1)
    prefs = pd.DataFrame({"user": ids[user], "chosen": chosen, "rejected": rejected, "group": g[user]})
    return replace(data, preferences=prefs, X_chosen=data.items[chosen], X_rejected=data.items[rejected],
                   users=ids[user], groups=g[user],
                   user_groups=pd.Series(g, index=pd.Index(ids, name="user"), name="group"),
                   p_chosen=np.where(a_wins, p_a, 1.0 - p_a))


OBJECTIVES = ("helpful", "harmless")


def two_sources(users_per_source: int = 20, pairs_per_user: int = 60, n_features: int = 8, n_items: int = 400,
                reliability: float = 0.7, temperature: float = 0.1,
                seed: int = 0) -> SyntheticPreferences:
    """Two objectives with orthogonal linear rewards, each labelled by its own annotators: group 0
    ``"helpful"`` (careful), group 1 ``"harmless"`` (each label flipped with probability
    ``1 - reliability``); :func:`source_of` names each pair's source."""
    data = make_ideal_point_preferences(n_items=n_items, n_features=n_features, n_groups=2,
                                        users_per_group=users_per_source, pairs_per_user=pairs_per_user,
                                        reward="linear", disagreement=1.0, temperature=temperature, seed=seed)
    noisy = data.user_groups.index[data.user_groups == 1]
    return flip_labels(data, pd.Series(reliability, index=noisy), seed=seed + 1)


def source_of(data: SyntheticPreferences) -> np.ndarray:
    """Each pair's source name in :func:`two_sources` data (its group's objective): shape (n,)."""
    return np.asarray(OBJECTIVES, dtype=object)[data.groups]


def rerank(model: MultiHeadBT, data: SyntheticPreferences, n_prompts: int = 200, n_candidates: int = 8,
           seed: int = 0) -> BestOfN:
    """Best-of-``n_candidates`` by ``model``'s heads (raw sum vs conjunction), winners judged by
    ``data``'s true rewards: each prompt's candidates and its reference response are random items."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.items.shape[0], (n_prompts, n_candidates + 1))  # the last one: the reference
    x = data.items[idx.ravel()]
    heads = model.head_rewards(x).reshape(n_prompts, n_candidates + 1, -1)
    true = np.stack([data.true_reward(x, g) for g in range(data.n_groups)], axis=1).reshape(heads.shape)
    return compare_best_of_n(heads[:, :-1], heads[:, -1], [str(h) for h in model.heads_], true[:, :-1], true[:, -1])


def _trait_table(table: pd.DataFrame) -> list[str]:
    traits = list(pd.unique(table["trait"]))
    bad = table["polarity"].ne(1).any() or table.groupby("trait")["group"].nunique().ne(1).any()
    if len(traits) != 2 or bad:
        raise ValueError(f"'table' must hold pairs of two traits, each with polarity +1 in its own group; got {traits}")
    return traits


def trait_statements(objectives: Sequence[str], n_train_pairs: int, n_test_pairs: int, extractor: EmbeddingExtractor,
                     n_components: int = 32, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(table, embeddings)``: persona pairs of two traits and their statements, embedded.

    ``table``: :func:`~plural_kit.data.make_persona_preferences` with one user per trait holding it
    (polarity +1), ``n_train_pairs`` ``"train"`` and ``n_test_pairs`` ``"test"`` pairs each (test
    pairs on held-out statements); ``embeddings``: ``extractor``'s hidden states of every statement
    reduced by :func:`~plural_kit.reward.experiments.reduce_embeddings` (fitted on the training
    statements), (n_statements, n_components) indexed by text.
    """
    if len(objectives) != 2:
        raise ValueError(f"'objectives' must name two persona traits; got {list(objectives)}")
    table = make_persona_preferences(list(objectives), groups=[{t: 1} for t in objectives], users_per_group=1,
                                     unseen_users_per_group=0, n_train_pairs=n_train_pairs, n_test_pairs=n_test_pairs,
                                     n_adapt_pairs=0, seed=seed)
    texts = pd.unique(table[["chosen", "rejected"]].to_numpy().ravel())
    train = pd.unique(table.loc[table["split"] == "train", ["chosen", "rejected"]].to_numpy().ravel())
    embeddings = reduce_embeddings(extractor.encode(list(texts)), texts, fit_on=train, n_components=n_components,
                                   seed=seed)
    return table, embeddings


def trait_heads(embeddings: pd.DataFrame, table: pd.DataFrame, reliability: float = 0.7, seed: int = 0,
                device: str = "auto") -> MultiHeadBT:
    """A :class:`MultiHeadBT` head per trait, fitted on embedded persona statements.

    ``table``: :func:`~plural_kit.data.make_persona_preferences` pairs of two traits, each held
    with polarity +1 by its own users (``groups=[{a: 1}, {b: 1}]``); ``embeddings``: one row per
    statement (index: the text). Each head is fitted on its trait's ``"train"`` pairs, the second
    trait's labels flipped with probability ``1 - reliability`` (noisy annotators).
    """
    if not 0.5 < reliability <= 1.0:
        raise ValueError(f"reliability must be in (0.5, 1]: the share of the noisy trait's labels kept; got {reliability}")
    traits = _trait_table(table)
    train = table[table["split"] == "train"].reset_index(drop=True)
    flip = (train["trait"] == traits[1]).to_numpy() & (np.random.default_rng(seed).random(len(train)) >= reliability)
    train.loc[flip, ["chosen", "rejected"]] = train.loc[flip, ["rejected", "chosen"]].to_numpy()
    chosen, rejected, _ = text_pairs(embeddings, train)
    return MultiHeadBT(device=device).fit(chosen, rejected, train["trait"].to_numpy())


def _head_order(heads: MultiHeadBT, traits) -> list[int]:
    missing = [t for t in traits if t not in list(heads.heads_)]
    if missing:
        raise ValueError(f"'heads' has no head for {missing}; heads: {list(heads.heads_)}")
    return [list(heads.heads_).index(t) for t in traits]


def rerank_statements(heads: MultiHeadBT, embeddings: pd.DataFrame, table: pd.DataFrame, n_prompts: int = 200,
                      n_candidates: int = 8, seed: int = 0) -> BestOfN:
    """Best-of-``n_candidates`` on real text by :func:`trait_heads`, raw sum vs conjunction.

    A response is one held-out (``"test"``) statement of each trait, its features the mean of
    theirs (the heads are linear); each prompt has ``n_candidates`` random responses and one more
    as the reference of the log-sigmoid centring. Winners are judged by the labels: good on a
    trait when its statement is one a holder of the trait would say (truth 1 vs 0, reference
    0.5). ``frame`` gains ``response``: the winner's two statements joined by " / ".
    """
    traits = _trait_table(table)
    rng = np.random.default_rng(seed)
    test = table[table["split"] == "test"]
    pools = [pd.concat([pd.Series(1.0, index=pd.unique(g["chosen"])), pd.Series(0.0, index=pd.unique(g["rejected"]))])
             for t in traits for g in [test[test["trait"] == t]]]  # statement -> label, per trait
    picks = [pool.index.to_numpy()[rng.integers(0, len(pool), (n_prompts, n_candidates + 1))] for pool in pools]
    x = sum(embeddings.loc[p.ravel()].to_numpy() for p in picks) / 2.0
    seen = heads.head_rewards(x)[:, _head_order(heads, traits)].reshape(n_prompts, n_candidates + 1, 2)
    truth = np.stack([pool.loc[p.ravel()].to_numpy() for pool, p in zip(pools, picks, strict=True)],
                     axis=1).reshape(seen.shape)
    best = compare_best_of_n(seen[:, :-1], seen[:, -1], traits, truth[:, :-1], np.full((n_prompts, 2), 0.5))
    texts = np.char.add(np.char.add(picks[0].astype(str), " / "), picks[1].astype(str))  # (prompts, n + 1)
    winners = np.concatenate([best_of_n(seen[:, :-1], seen[:, -1], m) for m in COMBINE])
    return replace(best, frame=best.frame.assign(response=texts[best.frame["prompt"].to_numpy(), winners]))


@dataclass(frozen=True, repr=False)
class HeadTransfer(Result):
    """How each trait head orders each trait's held-out pairs.

    ``correct``, ``pairs``: DataFrames (head x trait) of pairs ordered right and pairs; ``spread``:
    Series head -> standard deviation of its rewards over the held-out statements.
    """

    correct: pd.DataFrame
    pairs: pd.DataFrame
    spread: pd.Series

    def to_frame(self) -> pd.DataFrame:
        """Accuracy (head x trait) and each head's reward spread."""
        return (self.correct / self.pairs).add_prefix("accuracy on ").assign(spread=self.spread)

    def summary(self) -> Summary:
        return frame_summary("Each trait head on each trait's held-out pairs", self.to_frame())

    def to_dict(self) -> dict:
        return jsonable(self.to_frame().reset_index().to_dict(orient="list"))

    def _repr_fields(self) -> dict:
        return {"heads": list(self.correct.index)}

    def claims(self, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """``wide_head_ranks_other_trait``: the head with the widest rewards (the one a raw sum follows)
        orders the *other* trait's held-out pairs right more often than chance (Wilson interval over
        pairs; ``n_boot`` and ``seed`` unused)."""
        h = self.spread.idxmax()
        t = next(c for c in self.correct.columns if c != h)
        return Claims([claim_proportion(
            "wide_head_ranks_other_trait", f"the {h} head (the widest) orders held-out {t} pairs right more often "
            "than chance", int(self.correct.loc[h, t]), int(self.pairs.loc[h, t]), quantity="accuracy",
            confidence=confidence)])

    def plot(self, ax=None):
        """Accuracy per head (rows) and trait (columns)."""
        return viz.heatmap(self.correct / self.pairs, ax=ax)


def head_transfer(heads: MultiHeadBT, embeddings: pd.DataFrame, table: pd.DataFrame) -> HeadTransfer:
    """Each of :func:`trait_heads`' heads on each trait's held-out (``"test"``) pairs: a :class:`HeadTransfer`."""
    traits = _trait_table(table)
    test = table[table["split"] == "test"]
    order = _head_order(heads, traits)
    correct = pd.DataFrame(0, index=pd.Index(traits, name="head"), columns=pd.Index(traits, name="trait"))
    pairs = correct.copy()
    for t in traits:
        chosen, rejected, _ = text_pairs(embeddings, test[test["trait"] == t])
        margin = (heads.head_rewards(chosen) - heads.head_rewards(rejected))[:, order]
        correct[t], pairs[t] = (margin > 0).sum(axis=0), len(margin)
    text = pd.unique(test[["chosen", "rejected"]].to_numpy().ravel())
    spread = pd.Series(heads.head_rewards(embeddings.loc[text].to_numpy())[:, order].std(axis=0), index=correct.index,
                       name="spread")
    return HeadTransfer(correct, pairs, spread)


@dataclass(frozen=True, repr=False)
class UserWeights(Result):
    """New users who weigh the objectives, adapted on their first ``shots`` pairs.

    ``frame``: one row per user: ``planted`` and ``fitted`` weight of the first head, held-out
    ``accuracy`` after adapting and ``population accuracy`` (uniform weights);
    ``p_adapted``, ``p_population``, ``users``: per held-out pair.
    """

    frame: pd.DataFrame
    head: str
    shots: int
    p_adapted: np.ndarray
    p_population: np.ndarray
    users: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        return self.frame.copy()

    def summary(self) -> Summary:
        return frame_summary(f"Weights on the {self.head!r} head from {self.shots} pairs per user",
                             self.frame.describe().loc[["mean", "std", "min", "max"]])

    def to_dict(self) -> dict:
        return jsonable({"shots": self.shots, "head": self.head, **self.frame.reset_index().to_dict(orient="list")})

    def _repr_fields(self) -> dict:
        return {"users": len(self.frame), "shots": self.shots}

    def claims(self, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """``weights_recovered`` (mean |fitted - planted| below 0.15) and ``weights_help`` (the
        adapted weights beat the uniform ones on the users' held-out pairs)."""
        err = (self.frame["fitted"] - self.frame["planted"]).abs().to_numpy()
        kw = dict(confidence=confidence, n_boot=n_boot, seed=seed)
        return Claims([
            claim_mean("weights_recovered", f"{self.shots} pairs recover a user's weight on each objective within "
                       "0.15 on average", err, quantity="mean |fitted - planted|", threshold=0.15, side="less",
                       method=f"bootstrap over {err.size} users", **kw),
            metric_claim("weights_help", f"weights fitted from {self.shots} pairs predict a user's held-out pairs "
                         "better than equal weights", self.p_adapted, self.users, baseline=self.p_population, **kw),
        ])

    def plot(self, ax=None):
        """Fitted vs planted weight of the first head, one dot per user."""
        return viz.versus(self.frame, x="planted", y="fitted", lims=(0, 1),
                          title=f"weight on {self.head!r} from {self.shots} pairs", ax=ax)


def weigh_objectives(model: MultiHeadBT, data: SyntheticPreferences, n_users: int = 30, shots: int = 10,
                     pairs_per_user: int = 60, seed: int = 0) -> UserWeights:
    """New users with Dirichlet(1, 1) weights on ``data``'s group rewards (:func:`weighted_user_preferences`);
    ``model`` (heads in group order, a copy is adapted) gets each user's first ``shots`` pairs."""
    if not 0 < shots < pairs_per_user:
        raise ValueError(f"shots must be in (0, pairs_per_user={pairs_per_user}); got {shots}")
    rng = np.random.default_rng(seed)
    W = pd.DataFrame(rng.dirichlet(np.ones(data.n_groups), n_users), index=[f"new{i:03d}" for i in range(n_users)])
    users = weighted_user_preferences(data, W, pairs_per_user, seed=seed + 1)
    few, rest = first_pairs_per_user(users, shots)
    base = rest.X_chosen, rest.X_rejected
    p_population = model.predict_proba(*base)
    adapted = copy.deepcopy(model).adapt(few.X_chosen, few.X_rejected, few.users)
    p_adapted = adapted.predict_proba(*base, rest.users)
    acc = pd.DataFrame({"a": p_adapted > 0.5, "p": p_population > 0.5, "u": rest.users}).groupby("u").mean()
    frame = pd.DataFrame({"planted": W[0], "fitted": adapted.user_weights_.loc[W.index].iloc[:, 0],
                          "accuracy": acc["a"].reindex(W.index), "population accuracy": acc["p"].reindex(W.index)})
    return UserWeights(frame.rename_axis("user"), str(model.heads_[0]), shots, p_adapted, p_population, rest.users)


@dataclass(frozen=True, repr=False)
class StatedValues(Result):
    """A reward conditioned on stated values, tested on values it never saw.

    ``p_chosen``: ``{model: (n,) probabilities of the observed winners}`` on the held-out values'
    pairs; ``values``: (n,) the held-out value of each pair (the unit of the intervals).
    """

    p_chosen: dict[str, np.ndarray]
    values: np.ndarray
    n_train_values: int

    def to_frame(self) -> pd.DataFrame:
        """Per model: held-out accuracy on the unseen values' pairs."""
        return pd.DataFrame({"accuracy": {m: float(np.mean(p > 0.5)) for m, p in self.p_chosen.items()}}).rename_axis(
            "model")

    def summary(self) -> Summary:
        return frame_summary(f"Unseen stated values ({pd.unique(self.values).size}; trained on {self.n_train_values})",
                             self.to_frame())

    def to_dict(self) -> dict:
        return jsonable({"n_train_values": self.n_train_values, **self.to_frame()["accuracy"].to_dict()})

    def _repr_fields(self) -> dict:
        return {"models": list(self.p_chosen), "unseen values": pd.unique(self.values).size}

    def claims(self, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """``conditioned_generalises``: on unseen values the conditioned reward beats one reward
        fitted on every seen value's pairs (interval over the unseen values)."""
        return Claims([replace(metric_claim(
            "conditioned_generalises", "on stated values it never saw, the reward conditioned on the statement "
            "ranks responses better than one reward for all values", self.p_chosen["conditioned"], self.values,
            baseline=self.p_chosen["one reward"], confidence=confidence, n_boot=n_boot, seed=seed),
            method=f"bootstrap over {pd.unique(self.values).size} unseen values")])

    def plot(self, ax=None):
        """Accuracy per model on the unseen values."""
        return viz.bars(self.to_frame().T, ylabel="accuracy on unseen values", title="A value it never saw", ax=ax)


def stated_values(n_values: int = 24, n_unseen: int = 8, statement_dim: int = 4, n_features: int = 8,
                  pairs_per_value: int = 100, n_items: int = 300, temperature: float = 0.1, seed: int = 0,
                  device: str = "auto") -> StatedValues:
    """Values with embeddings ``s`` (``statement_dim``) whose reward is ``(M s) . y`` on items ``y``;
    a BT reward on :func:`~plural_kit.reward.conditioned.condition` features and one plain BT reward
    are trained on the pairs of ``n_values - n_unseen`` values and tested on the others'."""
    if not 0 < n_unseen < n_values:
        raise ValueError(f"n_unseen must be in (0, n_values={n_values}); got {n_unseen}")
    rng = np.random.default_rng(seed)
    items = rng.standard_normal((n_items, n_features))
    M = rng.standard_normal((n_features, statement_dim)) / np.sqrt(statement_dim)
    S = rng.standard_normal((n_values, statement_dim)) + 0.5  # a shared component: values agree in part
    value = np.repeat(np.arange(n_values), pairs_per_value)
    a = rng.integers(0, n_items, value.size)
    b = (a + rng.integers(1, n_items, value.size)) % n_items
    R = items @ M @ S.T  # (items, values)
    R = (R - R.mean(0)) / R.std(0)
    a_wins = rng.random(value.size) < 1.0 / (1.0 + np.exp(-(R[a, value] - R[b, value]) / temperature))
    chosen, rejected = np.where(a_wins, a, b), np.where(a_wins, b, a)
    unseen = value >= n_values - n_unseen
    s = S[value]
    cc, cr = condition(s, items[chosen]), condition(s, items[rejected])
    conditioned = BradleyTerry(device=device).fit(cc[~unseen], cr[~unseen])
    one = BradleyTerry(device=device).fit(items[chosen][~unseen], items[rejected][~unseen])
    p = {"conditioned": conditioned.predict_proba(cc[unseen], cr[unseen]),
         "one reward": one.predict_proba(items[chosen][unseen], items[rejected][unseen])}
    return StatedValues(p, value[unseen], n_values - n_unseen)


@dataclass(frozen=True, repr=False)
class SourceCalibration(Result):
    """Calibration per source (as MORE measures it) of a :class:`MultiHeadBT`'s own heads and of
    one BT reward on the pooled sources, on held-out pairs.

    ``p_chosen``: ``{"own head" | "pooled BT": (n,)}``; ``sources``, ``users``: (n,) per pair.
    """

    p_chosen: dict[str, np.ndarray]
    sources: np.ndarray
    users: np.ndarray

    def to_frame(self) -> pd.DataFrame:
        """One row per (source, model): pairs, accuracy and ECE."""
        return pd.concat({m: calibration_by_source(p, self.sources) for m, p in self.p_chosen.items()},
                         names=["model"]).swaplevel().sort_index()

    def summary(self) -> Summary:
        return frame_summary("Calibration per source (held-out pairs)", self.to_frame())

    def to_dict(self) -> dict:
        return jsonable(self.to_frame().reset_index().to_dict(orient="list"))

    def _repr_fields(self) -> dict:
        return {"sources": list(pd.unique(self.sources)), "pairs": len(self.sources)}

    def claims(self, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """``head_calibrated_<source>``: on that source, its own head has a lower ECE than the pooled
        BT reward (interval over the source's annotators)."""
        return Claims([metric_claim(
            f"head_calibrated_{src}", f"on the {src} source, its own head has a lower ECE than one pooled BT reward",
            self.p_chosen["own head"][rows], self.users[rows], baseline=self.p_chosen["pooled BT"][rows],
            metric="ECE", side="less", confidence=confidence, n_boot=n_boot, seed=seed)
            for src in pd.unique(self.sources) for rows in [self.sources == src]])

    def plot(self, ax=None):
        """ECE per source and model."""
        frame = self.to_frame()["ECE"].unstack("model")
        return viz.bars(frame, ylabel="ECE (held-out pairs)", title="Calibration per source", ax=ax)


def source_calibration(heads: MultiHeadBT, train: SyntheticPreferences, test: SyntheticPreferences,
                       device: str = "auto") -> SourceCalibration:
    """``heads`` (fitted on ``train`` of :func:`two_sources`) and one BT reward fitted on all of
    ``train``, evaluated on ``test``: a :class:`SourceCalibration`."""
    pooled = BradleyTerry(device=device).fit(train.X_chosen, train.X_rejected)
    src = source_of(test)
    p = {"own head": heads.predict_proba(test.X_chosen, test.X_rejected, src),
         "pooled BT": pooled.predict_proba(test.X_chosen, test.X_rejected)}
    return SourceCalibration(p, src, np.asarray(test.users, dtype=object))
