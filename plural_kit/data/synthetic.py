"""Synthetic preference data with known ground truth: K groups of users, each with its own reward.

Items are points ``x`` in R^d drawn from N(0, I). Every group ``g`` has a direction
``theta_g`` (unit norm); the cosine between two groups' directions is exactly
``1 - disagreement`` (when ``n_features > n_groups``), so ``disagreement=0`` means everybody
agrees and ``disagreement=1`` means orthogonal tastes. Two reward forms:

* ``reward="linear"`` (the mixture of MiCRo): ``raw_g(x) = w_g . x`` with ``w_g = theta_g``;
* ``reward="ideal_point"`` (the model of PAL): ``raw_g(x) = -||x - c_g||^2`` with
  ``c_g = radius * theta_g``.

Each group's reward is standardised over the items, ``r_g = (raw_g - mean_g) / scale_g``, so
that ``temperature`` means the same in both forms and any dimension. A user ``u`` of group
``g`` compares two distinct random items ``a, b`` and prefers ``a`` with the Bradley-Terry
probability ``sigmoid((r_g(a) - r_g(b)) / temperature)``.

The ideal-point reward ``-||x||^2 + 2 c_g . x - ||c_g||^2`` is *not* linear in ``x``: a linear
model on raw features cannot express the ``||x||^2`` term shared by all groups, but it is
linear in :func:`quadratic_features` ``[x, ||x||^2]``.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.model_selection import train_test_split

from plural_kit.metrics import accuracy, oracle_accuracy

REWARD_FORMS = ("linear", "ideal_point")


def quadratic_features(x) -> np.ndarray:
    """``[x, ||x||^2]``: shape (n, d) -> (n, d + 1), so a linear reward can express an ideal point."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"'x' must be a 2-D array (n, d); got shape {x.shape}")
    return np.hstack([x, np.einsum("ij,ij->i", x, x)[:, None]])


@dataclass(frozen=True)
class SyntheticPreferences:
    """A synthetic preference data set and its ground truth.

    Attributes
    ----------
    preferences : DataFrame in the preference schema: ``user`` (str id), ``chosen`` and
        ``rejected`` (item ids = row numbers of ``items``), ``group`` (int).
    items : (n_items, d) item features.
    X_chosen, X_rejected : (n_pairs, d) features of the chosen / rejected item of each pair.
    users : (n_pairs,) user id of each pair (object array of str).
    groups : (n_pairs,) true group of each pair's user.
    user_groups : Series indexed by user id: each user's true group.
    params : (K, d) the groups' true parameters: ``w_g`` (linear) or ``c_g`` (ideal_point).
    reward_form : "linear" or "ideal_point".
    temperature : Bradley-Terry temperature used to draw the labels.
    reward_mean, reward_scale : (K,) the standardisation of each group's raw reward.
    p_chosen : (n_pairs,) the true probability that the observed winner wins,
        ``sigmoid((r_g(chosen) - r_g(rejected)) / temperature)``.
    """

    preferences: pd.DataFrame
    items: np.ndarray
    X_chosen: np.ndarray
    X_rejected: np.ndarray
    users: np.ndarray
    groups: np.ndarray
    user_groups: pd.Series
    params: np.ndarray
    reward_form: str
    temperature: float
    reward_mean: np.ndarray
    reward_scale: np.ndarray
    p_chosen: np.ndarray

    def __len__(self) -> int:
        return len(self.preferences)

    @property
    def n_groups(self) -> int:
        return self.params.shape[0]

    def true_reward(self, x, group) -> np.ndarray:
        """Standardised true reward ``r_g(x)`` of rows ``x`` (n, d) for ``group`` (int or (n,) ints); shape (n,)."""
        x = np.asarray(x, dtype=np.float64)
        g = np.broadcast_to(np.asarray(group, dtype=np.int64), (x.shape[0],))
        return (_raw_reward(x, self.params, self.reward_form, g) - self.reward_mean[g]) / self.reward_scale[g]

    def oracle_proba(self, a, b, group) -> np.ndarray:
        """True P(a preferred to b) for users of ``group``; shape (n,)."""
        return expit((self.true_reward(a, group) - self.true_reward(b, group)) / self.temperature)

    def oracle_accuracy(self, observed: bool = False) -> float:
        """Accuracy of the Bayes-optimal ranker that knows every user's group and reward.

        ``observed=False`` (default): its *expected* accuracy over the label noise,
        ``mean(max(p, 1 - p))`` with ``p`` the generating probabilities of these pairs: the
        ceiling no model can beat on average. ``observed=True``: its accuracy on the labels
        actually drawn, ``mean(p_chosen > 0.5)`` (what a model's ``score`` on the same pairs is
        directly comparable with; it fluctuates around the expected value).
        """
        return accuracy(self.p_chosen) if observed else oracle_accuracy(self.p_chosen)

    def subset(self, rows) -> SyntheticPreferences:
        """The pairs at ``rows`` (boolean mask or integer positions), with the same ground truth."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        prefs = self.preferences.iloc[rows].reset_index(drop=True)
        kept = pd.unique(prefs["user"])
        return replace(
            self,
            preferences=prefs,
            X_chosen=self.X_chosen[rows],
            X_rejected=self.X_rejected[rows],
            users=self.users[rows],
            groups=self.groups[rows],
            user_groups=self.user_groups.loc[kept],
            p_chosen=self.p_chosen[rows],
        )

    def __repr__(self) -> str:
        return (
            f"SyntheticPreferences(n_pairs={len(self)}, n_users={len(self.user_groups)}, "
            f"n_groups={self.n_groups}, n_items={self.items.shape[0]}, n_features={self.items.shape[1]}, "
            f"reward_form={self.reward_form!r}, temperature={self.temperature})"
        )


def _raw_reward(x: np.ndarray, params: np.ndarray, form: str, g: np.ndarray) -> np.ndarray:
    if form == "linear":
        return np.einsum("ij,ij->i", x, params[g])
    diff = x - params[g]
    return -np.einsum("ij,ij->i", diff, diff)


def _group_directions(n_groups: int, n_features: int, disagreement: float, rng: np.random.Generator) -> np.ndarray:
    """(K, d) unit vectors with pairwise cosine ``1 - disagreement`` (exactly when d > K)."""
    if n_features > n_groups:
        basis, _ = np.linalg.qr(rng.standard_normal((n_features, n_groups + 1)))
        basis = basis.T  # orthonormal rows: a shared direction, then one per group
    else:  # too few dimensions for exact orthogonality: random unit directions
        basis = rng.standard_normal((n_groups + 1, n_features))
        basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    theta = np.sqrt(1.0 - disagreement) * basis[0] + np.sqrt(disagreement) * basis[1:]
    return theta / np.linalg.norm(theta, axis=1, keepdims=True)


def make_ideal_point_preferences(
    n_items: int = 200,
    n_features: int = 16,
    n_groups: int = 3,
    users_per_group: int | list[int] = 20,
    pairs_per_user: int = 50,
    reward: str = "ideal_point",
    disagreement: float = 1.0,
    temperature: float = 0.25,
    radius: float | None = None,
    seed: int = 0,
) -> SyntheticPreferences:
    """Draw a preference data set from K groups with known rewards (see the module docstring).

    Parameters
    ----------
    n_items, n_features : the item pool, features ~ N(0, I_d).
    n_groups : number K of groups.
    users_per_group : users in each group: one int for all, or a list of K ints (unequal groups).
    pairs_per_user : pairs each user judges (two distinct random items each).
    reward : "linear" (``w_g . x``) or "ideal_point" (``-||x - c_g||^2``).
    disagreement : in [0, 1]; the cosine between two groups' directions is ``1 - disagreement``.
    temperature : > 0; Bradley-Terry noise on standardised rewards (smaller = cleaner labels).
    radius : ideal-point form only: ``||c_g||``; None means ``sqrt(n_features)`` (then about two
        thirds of each reward's variance is the group's own linear part ``2 c_g . x``).
    seed : random seed.

    Returns
    -------
    SyntheticPreferences
    """
    if reward not in REWARD_FORMS:
        raise ValueError(f"reward must be one of {REWARD_FORMS}; got {reward!r}")
    if not 0.0 <= disagreement <= 1.0:
        raise ValueError(f"disagreement must be in [0, 1]; got {disagreement}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0; got {temperature}")
    if n_items < 2 or n_features < 1 or n_groups < 1 or pairs_per_user < 1:
        raise ValueError("need n_items >= 2, n_features >= 1, n_groups >= 1 and pairs_per_user >= 1")
    sizes = np.broadcast_to(np.asarray(users_per_group, dtype=np.int64), (n_groups,))
    if (sizes < 0).any() or sizes.sum() == 0:
        raise ValueError(f"users_per_group must be >= 0 with at least one user; got {users_per_group}")

    rng = np.random.default_rng(seed)
    items = rng.standard_normal((n_items, n_features))
    theta = _group_directions(n_groups, n_features, disagreement, rng)
    params = theta if reward == "linear" else (np.sqrt(n_features) if radius is None else radius) * theta

    all_groups = np.arange(n_groups)
    raw = np.stack([_raw_reward(items, params, reward, np.full(n_items, g)) for g in all_groups])  # (K, n_items)
    reward_mean, reward_scale = raw.mean(axis=1), raw.std(axis=1)
    reward_scale = np.where(reward_scale > 0, reward_scale, 1.0)
    std_reward = (raw - reward_mean[:, None]) / reward_scale[:, None]

    user_group = np.repeat(all_groups, sizes)
    user_ids = np.array([f"u{i:04d}" for i in range(user_group.size)], dtype=object)
    n_pairs = user_group.size * pairs_per_user
    pair_user = np.repeat(np.arange(user_group.size), pairs_per_user)
    g = user_group[pair_user]
    a = rng.integers(0, n_items, n_pairs)
    b = (a + rng.integers(1, n_items, n_pairs)) % n_items  # distinct from a
    p_a = expit((std_reward[g, a] - std_reward[g, b]) / temperature)
    a_wins = rng.random(n_pairs) < p_a
    chosen, rejected = np.where(a_wins, a, b), np.where(a_wins, b, a)

    users = user_ids[pair_user]
    prefs = pd.DataFrame({"user": users, "chosen": chosen, "rejected": rejected, "group": g})
    return SyntheticPreferences(
        preferences=prefs,
        items=items,
        X_chosen=items[chosen],
        X_rejected=items[rejected],
        users=users,
        groups=g,
        user_groups=pd.Series(user_group, index=pd.Index(user_ids, name="user"), name="group"),
        params=params,
        reward_form=reward,
        temperature=float(temperature),
        reward_mean=reward_mean,
        reward_scale=reward_scale,
        p_chosen=np.where(a_wins, p_a, 1.0 - p_a),
    )


def split_pairs(data: SyntheticPreferences, test_size: float = 0.2, seed: int = 0):
    """Hold out ``test_size`` of each user's pairs: returns (train, test), every user in both."""
    rows = np.arange(len(data))
    train, test = train_test_split(rows, test_size=test_size, random_state=seed, stratify=data.users)
    return data.subset(np.sort(train)), data.subset(np.sort(test))


def split_users(data: SyntheticPreferences, test_size: float = 0.2, seed: int = 0):
    """Hold out ``test_size`` of the users (stratified by group): returns (seen, unseen) data sets.

    The unseen users' pairs serve ``adapt`` (a few pairs each) and its evaluation.
    """
    ug = data.user_groups
    _, held = train_test_split(ug.index.to_numpy(), test_size=test_size, random_state=seed, stratify=ug.to_numpy())
    unseen = np.isin(data.users, held)
    return data.subset(~unseen), data.subset(unseen)


def check_shots(shots: Sequence[int], few_shots: int, pairs_per_user: int) -> None:
    """Raise ``ValueError`` unless a user with ``pairs_per_user`` pairs keeps pairs to be evaluated
    on after adapting on their first ``max(shots)`` (:func:`first_pairs_per_user`), and
    ``few_shots`` (the ``k`` where "a few own pairs" is checked) is one of ``shots``."""
    if max(shots) >= pairs_per_user:
        raise ValueError(f"pairs_per_user ({pairs_per_user}) must exceed max(shots) ({max(shots)})")
    if few_shots not in shots:
        raise ValueError(f"few_shots ({few_shots}) must be one of shots {shots}")


def first_pairs_per_user(data: SyntheticPreferences, n: int):
    """Split each user's pairs into their first ``n`` (for ``adapt``) and the rest (to evaluate)."""
    rank = data.preferences.groupby("user", sort=False).cumcount().to_numpy()
    return data.subset(rank < n), data.subset(rank >= n)
