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


def test_bootstrap_indices_stay_within_their_stratum_and_are_seeded():
    strata = np.array(["a", "b", "a", "c", "b", "a"])
    idx = stats.bootstrap_indices(strata, n_boot=200, seed=1)
    assert idx.shape == (200, 6)
    assert (strata[idx] == strata[None, :]).all()            # slot j always holds a row of j's stratum
    assert (idx[:, 3] == 3).all()                             # a stratum of one row never changes
    assert len(np.unique(idx[:, 0])) == 3                     # ... while a stratum of three is resampled
    np.testing.assert_array_equal(idx, stats.bootstrap_indices(strata, n_boot=200, seed=1))
    assert stats.bootstrap_indices(4, n_boot=5, seed=0).max() <= 3
    with pytest.raises(ValueError, match="n_boot"):
        stats.bootstrap_indices(strata, n_boot=0)


def test_stratified_bootstrap_matches_the_spread_of_a_group_mean():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, 100), rng.normal(10, 1, 100)])
    groups = np.repeat([0, 1], 100)
    # the mean of the two group means: resampling within groups keeps each group's weight fixed
    iv = stats.stratified_bootstrap(groups, lambda i: x[i][groups == 0].mean() + x[i][groups == 1].mean(),
                                    n_boot=500, seed=0)
    se = np.sqrt(2 / 100)
    assert iv.estimate == pytest.approx(x[:100].mean() + x[100:].mean())
    assert iv.ci_high - iv.ci_low == pytest.approx(2 * 1.96 * se, rel=0.25)
    assert iv == stats.stratified_bootstrap(groups, lambda i: x[i][groups == 0].mean() + x[i][groups == 1].mean(),
                                            n_boot=500, seed=0)
    with pytest.raises(ValueError, match="scalar"):
        stats.stratified_bootstrap(groups, lambda i: x[i][:2], n_boot=10)


def test_bootstrap_replicates_resample_several_samples_in_the_same_rounds():
    a, b = np.arange(5.0), np.arange(7.0)
    est, reps = stats.bootstrap_replicates((5, 7), lambda i, j: np.array([a[i].mean(), b[j].mean()]),
                                           n_boot=300, seed=2)
    np.testing.assert_allclose(est, [2.0, 3.0])
    assert reps.shape == (300, 2)
    assert abs(np.corrcoef(reps.T)[0, 1]) < 0.2               # independent samples
    assert reps[:, 0].std() > 0 and reps[:, 1].std() > 0


def test_percentile_interval_widens_to_the_estimate_and_drops_undefined_rounds():
    reps = np.r_[np.linspace(1.0, 2.0, 101), np.nan]
    iv = stats.percentile_interval(1.5, reps, confidence=0.9)
    assert iv.ci_low == pytest.approx(1.05) and iv.ci_high == pytest.approx(1.95) and iv.confidence == 0.9
    assert stats.percentile_interval(0.0, reps).ci_low == 0.0  # a biased statistic: reach the estimate
    assert np.isnan(stats.percentile_interval(1.0, [np.nan]).ci_low)
    with pytest.raises(ValueError, match="confidence"):
        stats.percentile_interval(1.0, reps, confidence=95)
