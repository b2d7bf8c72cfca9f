"""The experiments of the reward lessons, as functions that return results.

=================================  ===============================================================
function                           what it runs
=================================  ===============================================================
:func:`compare_models`             fit several models on the same training pairs, evaluate them on
                                   the same held-out pairs: accuracy with an interval over users,
                                   worst group, log-loss, ECE, ARI of the recovered groups
:func:`mixture_gap`                one Bradley-Terry reward vs a K-component MixtureBT vs the
                                   oracle on synthetic linear-reward groups, over a sweep of the
                                   disagreement between groups or of the training pairs per user
:func:`user_representations`       each pluralistic model's per-user vectors, clustered and
                                   compared with the true groups (ARI), projected to 2-D
:func:`trait_probe`                a linear probe per trait on text embeddings: does a statement's
                                   embedding tell whether a holder of the trait would say it?
=================================  ===============================================================

:func:`reduce_embeddings` and :func:`text_pairs` turn embedded texts and a preference table over
them into the arrays the fitters take. Two
small models serve the experiments: :class:`OnFeatures` (a fitter on transformed features, e.g.
``quadratic_features``) and :class:`KnownGroups` (one Bradley-Terry per *true* group, the
reference a linear reward reaches when nobody has to infer the groups).

Every interval resamples users (:mod:`plural_kit.reward.evaluation`); every claim method passes
its keyword arguments on to :func:`~plural_kit.reward.evaluation.metric_claim`.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import adjusted_rand_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from plural_kit import metrics, stats, viz
from plural_kit.claims import Claim, Claims
from plural_kit.data.synthetic import first_pairs_per_user, make_ideal_point_preferences, split_pairs
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary, frame_summary
from plural_kit.reward.bt import BradleyTerry
from plural_kit.reward.evaluation import (ari_claim, as_pairs, every_proportion_claim, gap_change_claim,
                                          group_difference_claim, metric_claim, per_user_difference)
from plural_kit.reward.mixture import MixtureBT

__all__ = ["KnownGroups", "MixtureGap", "ModelComparison", "OnFeatures", "TraitProbe", "UserRepresentations",
           "compare_models", "mixture_gap", "reduce_embeddings", "text_pairs", "trait_probe", "user_representations"]


# -- two small models ----------------------------------------------------------------------------

class OnFeatures:
    """``model`` on ``phi(x)`` instead of ``x``: ``fit``, ``predict_proba``, ``score``, ``adapt``
    and ``reward`` transform their feature arrays (n, d) with ``phi`` first; every other
    attribute is the wrapped model's (``users_``, ``predict_groups``, ...)."""

    def __init__(self, model, phi: Callable[[np.ndarray], np.ndarray]):
        self.model, self.phi = model, phi

    def fit(self, chosen, rejected, users=None) -> OnFeatures:
        self.model.fit(self.phi(chosen), self.phi(rejected), users)
        return self

    def adapt(self, chosen, rejected, users) -> OnFeatures:
        self.model.adapt(self.phi(chosen), self.phi(rejected), users)
        return self

    def predict_proba(self, a, b, users=None) -> np.ndarray:
        return self.model.predict_proba(self.phi(a), self.phi(b), users)

    def score(self, chosen, rejected, users=None) -> float:
        return self.model.score(self.phi(chosen), self.phi(rejected), users)

    def reward(self, x, users=None) -> np.ndarray:
        return self.model.reward(self.phi(x), users)

    def __getattr__(self, name: str):
        if name.startswith("__") or name in ("model", "phi"):  # copy/pickle probe an empty instance
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"OnFeatures({self.model!r}, {getattr(self.phi, '__name__', 'phi')})"


class KnownGroups:
    """One :class:`BradleyTerry` per true group: each user is ranked by their own group's reward.

    ``user_groups``: Series, each user's true group (index: user id). ``fit`` fits one reward on
    the pairs of each group's users (groups in sorted order); ``predict_proba`` needs the users.
    """

    def __init__(self, user_groups: pd.Series, **bt_params):
        self.user_groups, self.bt_params = pd.Series(user_groups), bt_params

    def _groups(self, users, n: int) -> np.ndarray:
        users = np.asarray(users, dtype=object)
        if users.shape != (n,):
            raise ValueError(f"KnownGroups needs the user of every pair: shape ({n},), got {users.shape}")
        g = self.user_groups.reindex(users)
        if g.isna().any():
            raise ValueError(f"{int(g.isna().sum())} pair(s) from users without a known group, "
                             f"e.g. {list(users[g.isna().to_numpy()][:3])}")
        return g.to_numpy()

    def fit(self, chosen, rejected, users) -> KnownGroups:
        g = self._groups(users, len(chosen))
        self.models_ = {k: BradleyTerry(**self.bt_params).fit(chosen[g == k], rejected[g == k])
                        for k in sorted(pd.unique(g))}
        return self

    def predict_proba(self, a, b, users) -> np.ndarray:
        g = self._groups(users, len(a))
        p = np.full(len(a), np.nan)
        for k, model in self.models_.items():
            rows = g == k
            if rows.any():
                p[rows] = model.predict_proba(a[rows], b[rows])
        if np.isnan(p).any():
            raise ValueError("KnownGroups has no reward for some groups of these users (not in fit)")
        return p

    def score(self, chosen, rejected, users) -> float:
        return metrics.accuracy(self.predict_proba(chosen, rejected, users))

    def __repr__(self) -> str:
        return f"KnownGroups({self.user_groups.nunique()} groups)"


# -- comparing models on the same held-out pairs -------------------------------------------------

@dataclass(frozen=True, repr=False)
class ModelComparison(Result):
    """Several models' predictions on the same held-out pairs (and references such as the oracle).

    ``p_chosen``: ``{name: (n,) probabilities of the observed winners}``; ``users``, ``groups``:
    (n,) per pair; ``models``: the fitted models by name (references have none);
    ``train_accuracy``, ``fit_seconds``: per fitted model; ``found_groups``: ``{name: Series
    user -> cluster}`` of the models that cluster users; ``true_groups``: Series user -> group.
    ``to_frame`` has the accuracy with its interval over users (``n_boot`` resamples, ``seed``).
    """

    p_chosen: dict[str, np.ndarray]
    users: np.ndarray
    groups: np.ndarray | None = None
    models: dict = field(default_factory=dict)
    train_accuracy: dict[str, float] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    found_groups: dict[str, pd.Series] = field(default_factory=dict)
    true_groups: pd.Series | None = None
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    title = "Held-out pairs: accuracy (interval over users), worst group, calibration"

    def to_frame(self) -> pd.DataFrame:
        """One row per model: ``accuracy``, ``ci_low``, ``ci_high``, ``confidence``, ``worst group``,
        ``log-loss``, ``ECE``, and where known ``train accuracy``, ``ARI``, ``fit seconds``."""
        rows = {}
        for name, p in self.p_chosen.items():
            iv = metric_claim("accuracy", "", p, self.users, confidence=self.confidence, n_boot=self.n_boot,
                              seed=self.seed)
            row = {"accuracy": iv.estimate, "ci_low": iv.ci_low, "ci_high": iv.ci_high, "confidence": iv.confidence}
            if self.groups is not None:
                row["worst group"] = metrics.worst_group_accuracy(p, self.groups)
            row.update({"log-loss": metrics.log_loss(p), "ECE": metrics.expected_calibration_error(p)})
            if self.train_accuracy:
                row["train accuracy"] = self.train_accuracy.get(name, np.nan)
            if self.found_groups:
                row["ARI"] = self.ari(name) if name in self.found_groups else np.nan
            if self.fit_seconds:
                row["fit seconds"] = self.fit_seconds.get(name, np.nan)
            rows[name] = row
        return pd.DataFrame(rows).T.rename_axis("model")

    def ari(self, model: str) -> float:
        """Adjusted Rand index of ``model``'s clusters of its users against their true groups."""
        found = self.found_groups[model]
        return float(adjusted_rand_score(self.true_groups.loc[found.index], found.to_numpy()))

    def group_frame(self) -> pd.DataFrame:
        """Accuracy within each true group (rows) of every model (columns)."""
        if self.groups is None:
            raise ValueError("this comparison has no groups: pass groups= to compare_models")
        return pd.DataFrame({n: metrics.group_accuracy(p, self.groups) for n, p in self.p_chosen.items()})

    def reliability_frame(self, n_bins: int = 10) -> pd.DataFrame:
        """Reliability curves (:func:`plural_kit.metrics.reliability_curve`) of every model, long."""
        return pd.concat({n: metrics.reliability_curve(p, n_bins) for n, p in self.p_chosen.items()},
                         names=["model", "bin"]).reset_index()

    def summary(self) -> Summary:
        return frame_summary(self.title, self.to_frame().drop(columns="confidence"),
                             f"{self.confidence:.0%} intervals: bootstrap over {pd.unique(self.users).size} users")

    def to_dict(self) -> dict:
        """The table as lists (``{"model": [...], "accuracy": [...], ...}``) and the per-group accuracies."""
        out = {"table": self.to_frame().reset_index().to_dict(orient="list")}
        if self.groups is not None:
            out["group_accuracy"] = {str(k): v for k, v in self.group_frame().to_dict().items()}
        return jsonable(out)

    def _repr_fields(self) -> dict:
        return {"models": list(self.p_chosen), "pairs": len(self.users)}

    def plot(self, ax=None, kind: str = "accuracy", references: Mapping[str, float] | None = None,
             xlim: tuple[float, float] | None = None, title: str | None = None):
        """``kind="accuracy"``: accuracy bars with their intervals over users, the oracle (when
        there is one) as a line; ``"groups"``: accuracy per group (heatmap); ``"reliability"``:
        reliability curves with the diagonal of perfect calibration."""
        if kind == "accuracy":
            frame = self.to_frame()
            refs = {"oracle": frame.loc["oracle", "accuracy"]} if "oracle" in frame.index else {}
            return viz.intervals(frame.drop(index="oracle", errors="ignore"), estimate="accuracy",
                                 references={**refs, **(references or {})}, xlim=xlim, title=title,
                                 xlabel=f"held-out accuracy ({self.confidence:.0%} interval over users)", ax=ax)
        if kind == "groups":
            return viz.heatmap(self.group_frame(), vmin=0.4, title=title or "accuracy within each group", ax=ax)
        if kind == "reliability":
            ax = viz.curve(self.reliability_frame(), x="mean_predicted", y="fraction_positive", hue="model",
                           xlabel="predicted probability", ylabel="observed frequency",
                           title=title or "Reliability (held-out pairs)", ax=ax)
            ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
            ax.legend(fontsize=7)
            return ax
        raise ValueError(f"kind must be 'accuracy', 'groups' or 'reliability'; got {kind!r}")

    def claim(self, name: str, statement: str, model: str, baseline: str | None = None, **kwargs) -> Claim:
        """:func:`metric_claim` of ``model`` (minus ``baseline``, both names of this comparison) on
        these pairs, the groups passed for the worst-group accuracy; ``kwargs``: ``metric``,
        ``threshold``, ``side``, ``details``, ``n_boot``, ``seed``."""
        p = {n: self._p(n) for n in (model, baseline) if n is not None}
        return metric_claim(name, statement, p[model], self.users, baseline=p.get(baseline), groups=self.groups,
                            **kwargs)

    def ari_claim(self, name: str, statement: str, model: str, **kwargs) -> Claim:
        """:func:`~plural_kit.reward.evaluation.ari_claim` of ``model``'s clusters of users."""
        if model not in self.found_groups:
            raise ValueError(f"{model!r} has no clusters of users; those that do: {list(self.found_groups)}")
        return ari_claim(name, statement, self.true_groups, self.found_groups[model], **kwargs)

    def _p(self, name: str) -> np.ndarray:
        try:
            return self.p_chosen[name]
        except KeyError:
            raise KeyError(f"no model {name!r}; models: {list(self.p_chosen)}") from None


def compare_models(models: Mapping[str, object], train: tuple, test: tuple, *, groups=None, oracle=None,
                   true_groups: pd.Series | None = None, clustered: Sequence[str] | None = None,
                   n_groups: int | None = None, confidence: float = 0.95,
                   n_boot: int = 1000, seed: int = 0) -> ModelComparison:
    """Fit every model of ``models`` (``{name: unfitted model}``, in order) on ``train``, predict ``test``.

    ``train``, ``test``: ``(chosen, rejected, users)`` (see :func:`as_pairs`); ``groups``:
    (n_test,) each test pair's true group; ``oracle``: (n_test,) the oracle's probability of each
    observed winner (a row "oracle"); ``true_groups``: Series user -> group, to score how the
    models named in ``clustered`` (default: those whose users carry group weights: mixtures,
    PAL, MiCRo) group their users, by ``predict_groups(n_groups)``.
    """
    if not models:
        raise ValueError("'models' is empty: nothing to compare")
    train, test = as_pairs(train, "train"), as_pairs(test, "test")
    p, train_acc, seconds, found = {}, {}, {}, {}
    for name, model in models.items():
        start = time.perf_counter()
        model.fit(*train)
        seconds[name] = time.perf_counter() - start
        p[name] = model.predict_proba(*test)
        train_acc[name] = model.score(*train)
        if true_groups is not None and (name in clustered if clustered is not None
                                        else getattr(model, "_group_weights", False)):
            found[name] = model.predict_groups(n_groups)
    if oracle is not None:
        p["oracle"] = metrics._check_p(oracle)
    users = metrics._check_labels(test[2], len(p[next(iter(p))]), "users")
    return ModelComparison(p, users, None if groups is None else np.asarray(groups), dict(models), train_acc,
                           seconds, found, true_groups, confidence, n_boot, seed)


# -- one reward vs a mixture on synthetic groups ------------------------------------------------

@dataclass(frozen=True, repr=False)
class MixtureGap(Result):
    """Held-out predictions of the oracle, one BT reward and a MixtureBT at each value of a sweep.

    ``vary``: ``"disagreement"`` or ``"pairs_per_user"``; ``values``: the swept values;
    ``p_chosen``: ``{value: {"oracle" | "bt" | "mixture": (n,) probabilities}}``; ``users``:
    ``{value: (n,) user of each held-out pair}``; ``ari``: ``{value: ARI of MixtureBT's groups}``.
    """

    vary: str
    values: tuple
    n_groups: int
    p_chosen: dict
    users: dict
    ari: dict
    title = "Held-out accuracy of one reward, a mixture and the oracle"

    @property
    def label(self) -> str:
        return "disagreement" if self.vary == "disagreement" else "training pairs per user"

    @property
    def columns(self) -> dict[str, str]:
        return {"oracle": "oracle", "bt": "one BradleyTerry", "mixture": f"MixtureBT (K={self.n_groups})"}

    def to_frame(self) -> pd.DataFrame:
        """One row per swept value: the three accuracies and ``MixtureBT ARI``."""
        rows = [{**{col: metrics.accuracy(self.p_chosen[v][key]) for key, col in self.columns.items()},
                 "MixtureBT ARI": self.ari[v]} for v in self.values]
        return pd.DataFrame(rows, index=pd.Index(list(self.values), name=self.label))

    def to_dict(self) -> dict:
        """The table as lists: ``{label: [values], "oracle": [...], ...}``."""
        return jsonable(self.to_frame().reset_index().to_dict(orient="list"))

    def _repr_fields(self) -> dict:
        return {self.label: list(self.values), "K": self.n_groups}

    def plot(self, ax=None, title: str | None = None):
        """The three accuracies over the swept value."""
        long = self.to_frame().drop(columns="MixtureBT ARI").reset_index().melt(
            id_vars=self.label, var_name="model", value_name="held-out accuracy")
        pairs = self.vary == "pairs_per_user"
        return viz.curve(long, x=self.label, y="held-out accuracy", hue="model", logx=pairs,
                         xticks=self.values if pairs else None, title=title, ax=ax,
                         xlabel="disagreement between groups (1 - cosine)" if not pairs else None)

    def _at(self, value) -> dict:
        if value not in self.p_chosen:
            raise ValueError(f"{value!r} is not among the swept values {list(self.values)}")
        return self.p_chosen[value]

    def claim(self, name: str, statement: str, at, model: str, baseline: str, **kwargs) -> Claim:
        """``model`` minus ``baseline`` (``"oracle"``, ``"bt"`` or ``"mixture"``) at the swept value ``at``."""
        p = self._at(at)
        details = {"disagreement" if self.vary == "disagreement" else "pairs per user": at,
                   **kwargs.pop("details", {})}
        return metric_claim(name, statement, p[model], self.users[at], baseline=p[baseline], details=details,
                            **kwargs)

    def gap(self, at, model: str = "bt") -> pd.Series:
        """Each user's oracle accuracy minus ``model``'s at ``at`` (Series by user)."""
        p = self._at(at)
        return per_user_difference(p["oracle"], p[model], self.users[at])

    def gap_change_claim(self, name: str, statement: str, at, reference, model: str = "bt", **kwargs) -> Claim:
        """``model``'s per-user gap to the oracle at ``at`` minus at ``reference``, paired over users."""
        return gap_change_claim(name, statement, self.gap(at, model), self.gap(reference, model), **kwargs)

    def claims(self) -> Claims:
        """The lesson's conclusions from this sweep (intervals over users, differences paired).

        Over disagreements: one BT reward falls short of the oracle where the groups disagree most
        and its gap grows from where they agree most; MixtureBT beats it at both ends. Over
        training pairs per user: with the most pairs one BT reward and MixtureBT still fall short
        of the oracle, and more pairs shrink BT's gap. With one swept value, only the claims at it.
        """
        lo, hi = min(self.values), max(self.values)
        if self.vary == "disagreement":
            out = [self.claim("bt_short_of_oracle", "when the groups disagree most, one BT reward falls short of "
                              "the oracle", hi, "oracle", "bt"),
                   self.gap_change_claim("bt_gap_grows_with_disagreement", "one BT reward's gap to the oracle is "
                                         "larger when the groups disagree most than when they agree most", hi, lo),
                   self.claim("mixture_beats_bt_when_groups_disagree", "when the groups disagree most, MixtureBT "
                              "beats one BT reward", hi, "mixture", "bt"),
                   self.claim("mixture_beats_bt_when_groups_agree", "when the groups agree most, MixtureBT beats "
                              "one BT reward", lo, "mixture", "bt")]
        else:
            out = [self.claim("bt_short_of_oracle_with_most_data", "with the most training pairs per user, one BT "
                              "reward still falls short of the oracle", hi, "oracle", "bt"),
                   self.gap_change_claim("more_data_shrinks_bt_gap", "more training pairs per user shrink one BT "
                                         "reward's gap to the oracle", hi, lo, side="less"),
                   self.claim("mixture_short_of_oracle_with_most_data", "with the most training pairs per user, "
                              "MixtureBT falls short of the oracle", hi, "oracle", "mixture")]
        two_ends = {"bt_gap_grows_with_disagreement", "mixture_beats_bt_when_groups_agree", "more_data_shrinks_bt_gap"}
        return Claims(out if lo != hi else [c for c in out if c.name not in two_ends])


def mixture_gap(values: Sequence[float] = (1.0,), *, vary: str = "disagreement", n_items: int = 200,
                n_features: int = 8, n_groups: int = 3, users_per_group: int = 20, pairs_per_user: int = 40,
                temperature: float = 0.25, disagreement: float = 1.0, held_out_pairs: int = 20, seed: int = 0,
                device: str = "cpu") -> MixtureGap:
    """One BT reward and a ``n_groups``-component MixtureBT on linear-reward groups, over a sweep.

    ``vary="disagreement"``: ``values`` are disagreements (1 - cosine between groups, in [0, 1]),
    each user has ``pairs_per_user`` pairs and a quarter of them are held out.
    ``vary="pairs_per_user"``: ``values`` are training pairs per user at ``disagreement``; each
    user's next ``held_out_pairs`` are held out. Data: :func:`make_ideal_point_preferences`
    (``reward="linear"``, ``seed``); the BT reward ignores the users, the mixture uses them.
    """
    if vary not in ("disagreement", "pairs_per_user"):
        raise ValueError(f"vary must be 'disagreement' or 'pairs_per_user'; got {vary!r}")
    values = tuple(values)
    if not values:
        raise ValueError("'values' is empty: nothing to sweep")
    p_chosen, users, ari = {}, {}, {}
    for v in values:
        dis, n_pairs = (v, pairs_per_user) if vary == "disagreement" else (disagreement, int(v) + held_out_pairs)
        data = make_ideal_point_preferences(
            n_items=n_items, n_features=n_features, n_groups=n_groups, users_per_group=users_per_group,
            pairs_per_user=n_pairs, reward="linear", disagreement=dis, temperature=temperature, seed=seed)
        train, test = (split_pairs(data, test_size=0.25, seed=seed) if vary == "disagreement"
                       else first_pairs_per_user(data, int(v)))
        bt = BradleyTerry(device=device).fit(train.X_chosen, train.X_rejected)
        mix = MixtureBT(n_components=n_groups, device=device, random_state=seed)
        mix.fit(train.X_chosen, train.X_rejected, train.users)
        p_chosen[v] = {"oracle": test.p_chosen, "bt": bt.predict_proba(test.X_chosen, test.X_rejected),
                       "mixture": mix.predict_proba(test.X_chosen, test.X_rejected, test.users)}
        users[v] = test.users
        ari[v] = float(adjusted_rand_score(data.user_groups.loc[mix.users_], mix.predict_groups()))
    return MixtureGap(vary, values, n_groups, p_chosen, users, ari)


# -- per-user representations -------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class UserRepresentations(Result):
    """Each model's per-user vectors, their clusters and a 2-D PCA view, with the true groups.

    ``vectors``: ``{model: DataFrame users x dim}``; ``clusters``: ``{model: Series user ->
    cluster}``; ``xy``: ``{model: DataFrame users x ["pc1", "pc2"]}``; ``true_groups``: Series
    user -> group; ``seen``: the users seen in training (the others are drawn as crosses);
    ``n_groups``: the clusters asked for (None: each model's largest group weight).
    """

    vectors: dict[str, pd.DataFrame]
    clusters: dict[str, pd.Series]
    xy: dict[str, pd.DataFrame]
    true_groups: pd.Series
    seen: frozenset
    n_groups: int | None
    title = "User representations: clusters against the true groups"

    def ari(self, model: str) -> float:
        found = self.clusters[model]
        return float(adjusted_rand_score(self.true_groups.loc[found.index], found.to_numpy()))

    def to_frame(self) -> pd.DataFrame:
        """One row per model: ``users``, ``dim``, ``ARI`` (clusters vs true groups)."""
        return pd.DataFrame({m: {"users": v.shape[0], "dim": v.shape[1], "ARI": self.ari(m)}
                             for m, v in self.vectors.items()}).T.rename_axis("model")

    def to_dict(self) -> dict:
        return jsonable({"ARI": {m: self.ari(m) for m in self.vectors}, "n_groups": self.n_groups})

    def _repr_fields(self) -> dict:
        return {"models": list(self.vectors), "n_groups": self.n_groups}

    def plot(self, ax=None, model: str | None = None, labels: Mapping | None = None):
        """``model``'s users (default: the first) in the plane of two principal components,
        coloured by true group (``labels``: group -> legend name), unseen users as crosses."""
        model = model or next(iter(self.vectors))
        xy = self.xy[model].copy()
        xy["group"] = self.true_groups.loc[xy.index].map(lambda g: (labels or {}).get(g, g)).astype(str).to_numpy()
        xy["users"] = np.where(xy.index.isin(list(self.seen)), "seen", "unseen")
        return viz.scatter(xy, x="pc1", y="pc2", hue="group", style="users",
                           title=f"{model} (ARI {self.ari(model):.2f})", ax=ax)

    def plot_all(self, labels: Mapping | None = None, figsize: tuple[float, float] | None = None) -> np.ndarray:
        """:meth:`plot` of every model side by side; returns the array of axes."""
        import matplotlib.pyplot as plt

        n = len(self.vectors)
        axes = np.atleast_1d(plt.subplots(1, n, figsize=figsize or (4.4 * n, 3.8))[1])
        for ax, model in zip(axes, self.vectors):
            self.plot(ax=ax, model=model, labels=labels)
        return axes

    def ari_claim(self, name: str, statement: str, model: str, **kwargs) -> Claim:
        """:func:`~plural_kit.reward.evaluation.ari_claim` of ``model``'s clusters (interval over users)."""
        return ari_claim(name, statement, self.true_groups, self.clusters[model], **kwargs)

    def difference_claim(self, name: str, statement: str, model: str, covariates, **kwargs) -> Claim:
        """:func:`~plural_kit.reward.evaluation.group_difference_claim` of ``model``'s two clusters
        against ``covariates`` (Series or DataFrame indexed by user)."""
        return group_difference_claim(name, statement, self.clusters[model], covariates, **kwargs)


def user_representations(models: Mapping[str, object], true_groups: pd.Series, *, n_groups: int | None = None,
                         seen=(), seed: int = 0) -> UserRepresentations:
    """``model.user_representation()`` and ``model.predict_groups(n_groups)`` of each of ``models``
    (``n_groups=K``: k-means with K clusters on the representation, the same rule for every model;
    None: each user's largest group weight), both restricted to the users of ``true_groups``
    (Series user -> group), with a PCA of the vectors (``random_state=seed``) to draw them.
    """
    vectors, clusters, xy = {}, {}, {}
    for name, model in models.items():
        rep = model.user_representation()
        rep = rep.loc[true_groups.index.intersection(rep.index)]
        if len(rep) < 2:
            raise ValueError(f"{name}: only {len(rep)} user(s) with a true group; need at least 2")
        clusters[name] = model.predict_groups(n_groups).loc[rep.index]
        xy[name] = pd.DataFrame(PCA(n_components=2, random_state=seed).fit_transform(rep.to_numpy()),
                                index=rep.index, columns=["pc1", "pc2"])
        vectors[name] = rep
    return UserRepresentations(vectors, clusters, xy, pd.Series(true_groups), frozenset(seen), n_groups)


# -- text: pairs of embedded statements, and what the embeddings carry ------------------------------

def reduce_embeddings(embeddings: np.ndarray, texts, fit_on, n_components: int, seed: int = 0) -> pd.DataFrame:
    """Standardised embeddings reduced to ``n_components`` principal components, both fitted on
    the texts ``fit_on`` only (e.g. the training statements, so that nothing is learnt from test text).

    ``embeddings``: (n_texts, d), row ``i`` the embedding of ``texts[i]``. Returns a DataFrame
    (n_texts, n_components) indexed by text; ``attrs["explained_variance"]``: the fraction of
    the ``fit_on`` texts' variance the components keep.
    """
    texts = pd.Index(texts)
    if not texts.is_unique or len(texts) != len(embeddings):
        raise ValueError(f"'texts' must name each of the {len(embeddings)} rows once; got {len(texts)} "
                         f"({texts.duplicated().sum()} repeated)")
    rows = texts.get_indexer(pd.Index(fit_on))
    if (rows < 0).any():
        raise ValueError(f"{int((rows < 0).sum())} text(s) of 'fit_on' are not among 'texts'")
    reducer = make_pipeline(StandardScaler(), PCA(n_components=n_components, random_state=seed))
    reducer.fit(np.asarray(embeddings)[rows])
    out = pd.DataFrame(reducer.transform(np.asarray(embeddings)), index=texts)
    out.attrs["explained_variance"] = float(reducer[-1].explained_variance_ratio_.sum())
    return out


def text_pairs(embeddings: pd.DataFrame, table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(chosen, rejected, users)`` arrays of a preference table over texts.

    ``embeddings``: one row per text (index: the text), shape (n_texts, d); ``table``: columns
    ``chosen``, ``rejected`` (texts) and ``user``. Returns (n, d), (n, d), (n,).
    """
    missing = [c for c in ("chosen", "rejected", "user") if c not in table.columns]
    if missing:
        raise ValueError(f"the preference table needs columns {missing}; got {list(table.columns)}")
    rows = [embeddings.index.get_indexer(table[c]) for c in ("chosen", "rejected")]
    if any((r < 0).any() for r in rows):
        raise ValueError(f"{int(sum((r < 0).sum() for r in rows))} text(s) of the table have no embedding")
    X = embeddings.to_numpy()
    return X[rows[0]], X[rows[1]], table["user"].to_numpy()


@dataclass(frozen=True, repr=False)
class TraitProbe(Result):
    """A linear probe per trait: ``hits[trait] = (held-out statements classified right, held-out statements)``."""

    hits: dict[str, tuple[int, int]]
    confidence: float = 0.95
    title = "Linear probe per trait on held-out statements"

    def to_frame(self) -> pd.DataFrame:
        """One row per trait: ``accuracy`` with its Wilson interval, ``correct``, ``n``."""
        rows = {t: {"accuracy": k / n, **dict(zip(("ci_low", "ci_high"), stats.wilson_interval(
                    k, n, confidence=self.confidence)[1:3])), "correct": k, "n": n} for t, (k, n) in self.hits.items()}
        return pd.DataFrame(rows).T.astype({"correct": int, "n": int}).rename_axis("trait")

    def to_dict(self) -> dict:
        """``{trait: probe accuracy}``."""
        return {t: k / n for t, (k, n) in self.hits.items()}

    def _repr_fields(self) -> dict:
        return {"traits": list(self.hits)}

    def claim(self, name: str, statement: str, threshold: float = 0.5) -> Claim:
        """Every trait's probe beats ``threshold`` (:func:`~plural_kit.reward.evaluation.every_proportion_claim`)."""
        return every_proportion_claim(name, statement, self.hits, threshold=threshold, confidence=self.confidence,
                                      label="weakest trait")


def trait_probe(embeddings: pd.DataFrame, labels: pd.DataFrame, train, test, traits: Sequence[str] | None = None,
                max_iter: int = 2000) -> TraitProbe:
    """Per trait, a logistic regression on the ``train`` statements' embeddings that predicts
    whether a holder of the trait would say a statement, tested on the ``test`` statements.

    ``embeddings``: (n_texts, d), index the statement; ``labels``: columns ``statement``, ``trait``
    and ``agrees`` (bool), e.g. :func:`plural_kit.data.load_persona` (a statement listed twice
    keeps its first row); ``train``, ``test``: statements; ``traits``: default all of ``labels``.
    """
    missing = [c for c in ("statement", "trait", "agrees") if c not in labels.columns]
    if missing:
        raise ValueError(f"'labels' needs columns {missing}; got {list(labels.columns)}")
    labels = labels.drop_duplicates("statement").set_index("statement")
    hits = {}
    for trait in traits if traits is not None else sorted(labels["trait"].unique()):
        own = labels[labels["trait"] == trait]
        tr, te = own.index.intersection(pd.Index(train)), own.index.intersection(pd.Index(test))
        if len(tr) == 0 or len(te) == 0:
            raise ValueError(f"trait {trait!r} has {len(tr)} training and {len(te)} test statements; needs both")
        clf = LogisticRegression(max_iter=max_iter).fit(embeddings.loc[tr].to_numpy(), own.loc[tr, "agrees"])
        right = clf.predict(embeddings.loc[te].to_numpy()) == own.loc[te, "agrees"].to_numpy()
        hits[trait] = (int(right.sum()), int(right.size))
    return TraitProbe(hits)
