"""A reward conditioned on a stated value: the features s ⊗ y and the unseen-values experiment."""
import numpy as np
import pytest

from plural_kit.results import check_result
from plural_kit.reward import BradleyTerry
from plural_kit.reward.conditioned import condition
from plural_kit.reward.worlds import stated_values


def test_condition_is_the_row_wise_outer_product():
    s = np.array([[1.0, 2.0], [0.0, -1.0]])
    y = np.array([[3.0, 4.0, 5.0], [1.0, 1.0, 2.0]])
    np.testing.assert_array_equal(condition(s, y), [[3, 4, 5, 6, 8, 10], [0, 0, 0, -1, -1, -2]])
    # a linear reward on these features is s^T A y with A the reshaped weights
    rng = np.random.default_rng(0)
    A = rng.standard_normal((2, 3))
    np.testing.assert_allclose(condition(s, y) @ A.ravel(), np.einsum("ik,kd,id->i", s, A, y))


def test_condition_validates():
    with pytest.raises(ValueError, match="one statement per response"):
        condition(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="'statements' must be a 2-D array"):
        condition(np.zeros(2), np.zeros((2, 2)))
    with pytest.raises(ValueError, match="'responses' has NaN"):
        condition(np.zeros((1, 2)), np.array([[np.nan, 1.0]]))


def test_a_conditioned_reward_recovers_a_planted_bilinear_reward():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((3, 4))
    s, a, b = rng.standard_normal((4000, 3)), rng.standard_normal((4000, 4)), rng.standard_normal((4000, 4))
    margin = np.einsum("ik,kd,id->i", s, A, a - b) * 3.0
    wins = rng.random(4000) < 1 / (1 + np.exp(-margin))
    chosen, rejected = np.where(wins[:, None], a, b), np.where(wins[:, None], b, a)
    model = BradleyTerry(alpha=1e-3, device="cpu").fit(condition(s, chosen), condition(s, rejected))
    got = model.coef_.reshape(3, 4)
    cos = (got * A).sum() / np.linalg.norm(got) / np.linalg.norm(A)
    assert cos > 0.99


def test_stated_values_generalise_to_unseen_values():
    result = stated_values(n_values=16, n_unseen=6, pairs_per_value=80, seed=0, device="cpu")
    check_result(result)
    acc = result.to_frame()["accuracy"]
    assert acc["conditioned"] > acc["one reward"] + 0.1
    claim = result.claims(n_boot=200)["conditioned_generalises"]
    assert claim.outcome == "holds" and "6 unseen values" in claim.method
    with pytest.raises(ValueError, match="n_unseen must be in"):
        stated_values(n_values=4, n_unseen=4)
