import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve

from plural_kit import metrics, stats

P = np.array([0.95, 0.65, 0.35, 0.15])


def test_hand_computed_values():
    assert metrics.accuracy(P) == 0.5
    assert metrics.log_loss(P) == pytest.approx(-np.mean(np.log(P)))
    # symmetrised events: bins 0 (.05), 1 (.15), 3 (.35 twice), 6 (.65 twice), 8 (.85), 9 (.95)
    # |gap|: .05, .85, .15, .15, .85, .05 weighted by counts 1, 1, 2, 2, 1, 1 -> 2.4 / 8
    assert metrics.expected_calibration_error(P) == pytest.approx(0.3)
    curve = metrics.reliability_curve(P)
    assert curve["count"].tolist() == [1, 1, 2, 2, 1, 1]
    y = np.r_[np.ones(4), np.zeros(4)]
    frac, mean = calibration_curve(y, np.r_[P, 1 - P], n_bins=10)
    np.testing.assert_allclose(curve["fraction_positive"], frac)
    np.testing.assert_allclose(curve["mean_predicted"], mean)
    assert metrics.oracle_accuracy([0.9, 0.2]) == pytest.approx(0.85)
    assert metrics.accuracy([0.5]) == 0.0  # a tie is not a correct ranking


def test_per_user_and_group_accuracy():
    users = ["a", "a", "b", "b"]
    groups = ["g1", "g1", "g2", "g2"]
    per_user = metrics.per_user_accuracy(P, users, groups)
    assert per_user.loc["a", "accuracy"] == 1.0 and per_user.loc["b", "accuracy"] == 0.0
    assert per_user["n_pairs"].tolist() == [2, 2]
    assert per_user.loc["b", "group"] == "g2"
    by_group = metrics.group_accuracy(P, groups)
    assert by_group.to_dict() == {"g1": 1.0, "g2": 0.0}
    assert metrics.worst_group_accuracy(np.array([0.9, 0.8, 0.7, 0.2]), groups) == 0.5
    with pytest.raises(ValueError, match="more than one group"):
        metrics.per_user_accuracy(P, users, ["g1", "g2", "g2", "g2"])


def test_calibrated_probabilities_have_small_ece():
    rng = np.random.default_rng(0)
    p_true = rng.random(20_000)
    a_wins = rng.random(20_000) < p_true
    p_chosen = np.where(a_wins, p_true, 1 - p_true)
    assert metrics.expected_calibration_error(p_chosen) < 0.02
    # overconfident probabilities are not
    sharp = np.where(p_chosen > 0.5, 0.99, 0.01)
    assert metrics.expected_calibration_error(sharp) > 0.15


def test_bad_input():
    with pytest.raises(ValueError, match="probabilities"):
        metrics.accuracy([0.2, 1.3])
    with pytest.raises(ValueError, match="probabilities"):
        metrics.log_loss([0.2, np.nan])
    with pytest.raises(ValueError, match="one entry per pair"):
        metrics.per_user_accuracy(P, ["a"])
    with pytest.raises(ValueError, match="missing"):
        metrics.group_accuracy(P, ["a", None, "b", "b"])


def test_intervals_of_metrics_come_from_stats():
    """One bootstrap (plural_kit.stats): paired rows through a metric, ci_low / ci_high."""
    assert not hasattr(metrics, "bootstrap_ci") and not hasattr(metrics, "BootstrapCI")
    rng = np.random.default_rng(1)
    values = rng.random(400) < 0.7
    groups = np.where(np.arange(400) < 200, "x", "y")
    probs = np.where(values, 0.8, 0.3)
    paired = stats.bootstrap_ci((probs, groups), metrics.worst_group_accuracy, n_boot=200, seed=0)
    assert isinstance(paired, stats.Interval)
    assert paired.estimate == metrics.worst_group_accuracy(probs, groups)
    assert paired.ci_low <= paired.estimate <= paired.ci_high < 1.0
    assert isinstance(metrics.per_user_accuracy(P, list("abab")), pd.DataFrame)
