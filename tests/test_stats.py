"""plural_kit.stats: one interval vocabulary, seeded, validated."""
import numpy as np
import pytest

from plural_kit import stats


def test_bootstrap_ci_covers_the_mean_and_is_seeded():
    x = np.random.default_rng(0).normal(1.0, 1.0, size=200)
    iv = stats.bootstrap_ci(x, seed=3)
    assert iv.ci_low < x.mean() < iv.ci_high and iv.confidence == 0.95
    assert 0.7 < iv.ci_low and iv.ci_high < 1.3
    assert iv == stats.bootstrap_ci(x, seed=3)
    assert iv != stats.bootstrap_ci(x, seed=4)
    wide = stats.bootstrap_ci(x, confidence=0.99, seed=3)
    assert wide.ci_low < iv.ci_low and wide.ci_high > iv.ci_high


def test_bootstrap_ci_edge_cases_and_errors():
    assert stats.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0, 0.95)
    one = stats.bootstrap_ci([5.0])
    assert one.estimate == 5.0 and np.isnan(one.ci_low) and np.isnan(one.ci_high)
    with pytest.raises(ValueError, match="no values"):
        stats.bootstrap_ci([])
    with pytest.raises(ValueError, match="NaN"):
        stats.bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="confidence"):
        stats.bootstrap_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="same length"):
        stats.bootstrap_ci((np.ones(3), np.ones(4)), lambda a, b: 0.0)


def test_paired_difference_sees_a_shift_that_independent_samples_hide():
    rng = np.random.default_rng(1)
    base = rng.normal(0, 5, size=60)  # large item effects, a small consistent shift
    a, b = base + 0.5 + rng.normal(0, 0.1, 60), base
    assert stats.paired_difference(a, b).ci_low > 0.4
    indep = stats.difference_ci(a, b)
    assert indep.ci_low < 0 < indep.ci_high
    with pytest.raises(ValueError, match="one value of each condition per pair"):
        stats.paired_difference(a, b[:10])


def test_wilson_interval_matches_statsmodels_and_guards_the_ends():
    from statsmodels.stats.proportion import proportion_confint

    iv = stats.wilson_interval(7, 20)
    assert (iv.ci_low, iv.ci_high) == pytest.approx(proportion_confint(7, 20, alpha=0.05, method="wilson"))
    assert stats.wilson_interval(0, 10).ci_low == 0.0 and stats.wilson_interval(10, 10).ci_high == 1.0
    with pytest.raises(ValueError, match="between 0 and n"):
        stats.wilson_interval(11, 10)
    with pytest.raises(ValueError, match="n >= 1"):
        stats.wilson_interval(0, 0)


def test_permutation_test_separates_shifted_from_equal_samples():
    rng = np.random.default_rng(2)
    assert stats.permutation_test(rng.normal(0, 1, 40), rng.normal(1, 1, 40), n_resamples=999) < 0.01
    assert stats.permutation_test(rng.normal(0, 1, 40), rng.normal(0, 1, 40), n_resamples=999) > 0.01
    same = rng.normal(0, 1, 30)
    assert stats.permutation_test(same + 1, same, paired=True, n_resamples=999) < 0.01
