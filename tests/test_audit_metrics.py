"""plural_kit.audit.metrics against hand-computed values, ranges and bad input."""
import math

import numpy as np
import pytest

from plural_kit.audit.metrics import (
    AuditInputError,
    check_distribution,
    expected_value,
    normalized_entropy,
    representativeness,
    similarity,
)


def test_similarity_hand_computed():
    # M = (0.75, 0.25); KL(p||M) = log2(4/3); KL(q||M) = 0.5 log2(2/3) + 0.5 log2(2)
    jsd = 0.5 * (math.log2(4 / 3) + 0.5 * math.log2(2 / 3) + 0.5)
    assert similarity([1, 0], [0.5, 0.5]) == pytest.approx(1 - math.sqrt(jsd), abs=1e-9)
    assert similarity([1, 0], [0.5, 0.5]) == pytest.approx(0.442077, abs=1e-6)


def test_similarity_range_and_symmetry():
    assert similarity([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(1.0)
    assert similarity([1, 0, 0], [0, 0.5, 0.5]) == pytest.approx(0.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, q = rng.dirichlet(np.ones(4)), rng.dirichlet(np.ones(4))
        s = similarity(p, q)
        assert 0.0 <= s <= 1.0
        assert s == pytest.approx(similarity(q, p))


def test_representativeness_hand_computed():
    assert representativeness([1, 0, 0], [0, 1, 0]) == pytest.approx(0.5)       # W1 = 1 of max 2
    assert representativeness([1, 0, 0], [0, 0, 1]) == pytest.approx(0.0)       # opposite ends
    assert representativeness([0.5, 0, 0.5], [0, 1, 0]) == pytest.approx(0.5)   # W1 = 0.5*1 + 0.5*1
    # custom ordinal positions 1, 2, 5: moving all mass from 1 to 2 costs 1 of a span of 4
    assert representativeness([1, 0, 0], [0, 1, 0], ordinal=[1, 2, 5]) == pytest.approx(0.75)
    assert representativeness([0.1, 0.2, 0.7], [0.1, 0.2, 0.7]) == pytest.approx(1.0)


def test_normalized_entropy_hand_computed():
    assert normalized_entropy([1, 1, 0, 0]) == pytest.approx(0.5)  # log 2 / log 4
    assert normalized_entropy([2, 1, 1]) == pytest.approx(1.5 / math.log2(3))
    assert normalized_entropy([5, 0, 0]) == pytest.approx(0.0)
    assert normalized_entropy([3, 3, 3]) == pytest.approx(1.0)
    assert normalized_entropy([0.25, 0.25, 0.5]) == pytest.approx(normalized_entropy([1, 1, 2]))


def test_expected_value():
    assert expected_value([0.5, 0, 0, 0, 0.5], [1, 2, 3, 4, 5]) == pytest.approx(3.0)
    assert expected_value([0, 0, 1], [1, 2, 3]) == pytest.approx(3.0)


@pytest.mark.parametrize("p, q, match", [
    ([0.5, 0.5], [0.2, 0.3, 0.5], "option is missing"),
    ([], [], "empty distribution"),
    ([0.5, 0.6], [0.5, 0.5], "sums to 1.1"),
    ([0.2, 0.2], [0.5, 0.5], "sums to 0.4"),
    ([1.5, -0.5], [0.5, 0.5], "negative"),
    ([np.nan, 1.0], [0.5, 0.5], "NaN"),
    ([[0.5, 0.5]], [[0.5, 0.5]], "1-D"),
])
def test_bad_distributions_raise(p, q, match):
    for fn in (similarity, representativeness):
        with pytest.raises(AuditInputError, match=match):
            fn(p, q)


def test_representativeness_bad_ordinal():
    with pytest.raises(AuditInputError, match="3 positions for 2 options"):
        representativeness([0.5, 0.5], [0.5, 0.5], ordinal=[1, 2, 3])
    with pytest.raises(AuditInputError, match="all be equal"):
        representativeness([0.5, 0.5], [0.5, 0.5], ordinal=[2, 2])
    with pytest.raises(AuditInputError, match="at least two"):
        representativeness([1.0], [1.0])


def test_normalized_entropy_bad_input():
    with pytest.raises(AuditInputError, match="all zero"):
        normalized_entropy([0, 0, 0])
    with pytest.raises(AuditInputError, match="K >= 2"):
        normalized_entropy([3])
    with pytest.raises(AuditInputError, match="non-negative"):
        normalized_entropy([1, -1, 2])


def test_check_distribution_tolerance():
    assert check_distribution([0.3333333, 0.3333333, 0.3333334]).sum() == pytest.approx(1)
    with pytest.raises(AuditInputError, match="renormalise"):
        check_distribution([0.3, 0.3, 0.3])


def test_similarity_of_near_identical_distributions_is_one_not_nan():
    rng = np.random.default_rng(1)
    for _ in range(50):
        p = rng.dirichlet(np.ones(5))
        q = p * (1 + 1e-12)
        q = q / q.sum()
        assert similarity(p, q) == pytest.approx(1.0)
