import numpy as np
import pytest

from plural_kit.data.schema import validate_preferences
from plural_kit.data.synthetic import (
    check_shots,
    first_pairs_per_user,
    make_ideal_point_preferences,
    quadratic_features,
    split_pairs,
    split_users,
)


@pytest.mark.parametrize("reward", ["linear", "ideal_point"])
def test_shapes_schema_and_ground_truth(reward):
    data = make_ideal_point_preferences(
        n_items=50, n_features=6, n_groups=3, users_per_group=4, pairs_per_user=10, reward=reward, seed=3
    )
    assert len(data) == 3 * 4 * 10
    validate_preferences(data.preferences)
    prefs = data.preferences
    assert list(prefs.columns) == ["user", "chosen", "rejected", "group"]
    np.testing.assert_array_equal(data.X_chosen, data.items[prefs["chosen"]])
    np.testing.assert_array_equal(data.X_rejected, data.items[prefs["rejected"]])
    np.testing.assert_array_equal(data.user_groups.loc[data.users].to_numpy(), data.groups)
    assert data.params.shape == (3, 6)
    # the stored probabilities are the generating ones
    np.testing.assert_allclose(data.p_chosen, data.oracle_proba(data.X_chosen, data.X_rejected, data.groups))
    # rewards are standardised over the items
    for g in range(3):
        r = data.true_reward(data.items, g)
        assert abs(r.mean()) < 1e-9 and abs(r.std() - 1) < 1e-9


@pytest.mark.parametrize("disagreement", [0.0, 0.5, 1.0])
def test_disagreement_sets_the_cosine_between_groups(disagreement):
    data = make_ideal_point_preferences(n_features=8, n_groups=3, reward="linear", disagreement=disagreement)
    w = data.params / np.linalg.norm(data.params, axis=1, keepdims=True)
    cos = w @ w.T
    np.testing.assert_allclose(cos[np.triu_indices(3, 1)], 1 - disagreement, atol=1e-12)


def test_reproducible_and_seed_dependent():
    a = make_ideal_point_preferences(seed=1)
    b = make_ideal_point_preferences(seed=1)
    c = make_ideal_point_preferences(seed=2)
    assert a.preferences.equals(b.preferences)
    assert not a.preferences.equals(c.preferences)


def test_oracle_accuracy_definitions():
    data = make_ideal_point_preferences(n_groups=2, users_per_group=100, pairs_per_user=50, temperature=0.5)
    p = data.p_chosen
    assert data.oracle_accuracy() == pytest.approx(np.mean(np.maximum(p, 1 - p)))
    assert data.oracle_accuracy(observed=True) == pytest.approx(np.mean(p > 0.5))
    # the observed accuracy of the true ranking fluctuates around its expectation
    assert abs(data.oracle_accuracy(True) - data.oracle_accuracy()) < 0.02
    noisier = make_ideal_point_preferences(n_groups=2, users_per_group=100, pairs_per_user=50, temperature=2.0)
    assert noisier.oracle_accuracy() < data.oracle_accuracy() - 0.1


def test_ideal_point_is_linear_in_quadratic_features():
    data = make_ideal_point_preferences(n_items=40, n_features=5, reward="ideal_point", seed=4)
    q = quadratic_features(data.items)
    assert q.shape == (40, 6)
    for g in range(data.n_groups):
        # -||x - c||^2 = 2 c.x - ||x||^2 - ||c||^2: weights [2c, -1] on [x, ||x||^2], up to the standardisation
        w = np.r_[2 * data.params[g], -1.0] / data.reward_scale[g]
        r = data.true_reward(data.items, g)
        np.testing.assert_allclose(r - r.mean(), q @ w - (q @ w).mean(), atol=1e-9)
    with pytest.raises(ValueError, match="2-D"):
        quadratic_features(np.ones(3))


def test_unequal_groups_and_errors():
    data = make_ideal_point_preferences(n_groups=3, users_per_group=[5, 2, 1], pairs_per_user=3)
    assert data.user_groups.value_counts().sort_index().tolist() == [5, 2, 1]
    with pytest.raises(ValueError, match="reward must be one of"):
        make_ideal_point_preferences(reward="quadratic")
    with pytest.raises(ValueError, match="disagreement"):
        make_ideal_point_preferences(disagreement=1.5)
    with pytest.raises(ValueError, match="temperature"):
        make_ideal_point_preferences(temperature=0)
    with pytest.raises(ValueError, match="users_per_group"):
        make_ideal_point_preferences(users_per_group=0)


def test_splits():
    data = make_ideal_point_preferences(n_groups=3, users_per_group=10, pairs_per_user=20)
    train, test = split_pairs(data, test_size=0.25, seed=0)
    assert len(train) + len(test) == len(data)
    assert set(train.users) == set(test.users) == set(data.users)
    assert (test.preferences.groupby("user").size() == 5).all()
    seen, unseen = split_users(data, test_size=0.3, seed=0)
    assert not set(seen.users) & set(unseen.users)
    assert unseen.user_groups.value_counts().tolist() == [3, 3, 3]
    few, rest = first_pairs_per_user(unseen, 4)
    assert (few.preferences.groupby("user").size() == 4).all()
    assert len(few) + len(rest) == len(unseen)


def test_check_shots_needs_pairs_left_and_few_shots_among_shots():
    check_shots([1, 5, 19], 5, pairs_per_user=20)  # 19 adapt pairs leave one to evaluate on
    with pytest.raises(ValueError, match=r"pairs_per_user \(20\) must exceed max\(shots\) \(20\)"):
        check_shots([5, 20], 5, pairs_per_user=20)
    with pytest.raises(ValueError, match=r"few_shots \(3\) must be one of shots \[1, 5\]"):
        check_shots([1, 5], 3, pairs_per_user=20)


def test_data_does_not_import_the_reward_models():
    """Imports run one way: reward uses data, never the reverse."""
    import subprocess
    import sys

    code = "import sys, plural_kit.data.synthetic; print(sorted(m for m in sys.modules if 'reward' in m))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
