"""A reward conditioned on a stated preference (the Janus idea): ``r(s, y) = s^T A y``.

``s`` is the embedding of a stated value ("I want short answers"), ``y`` that of a response.
:func:`condition` turns each (statement, response) pair into the features ``s ⊗ y`` (the row-wise
outer product, flattened), on which a linear Bradley-Terry reward is exactly ``s^T A y`` with
``A`` the (k, d) reshaped weights: one model for every value, able to score a value it never saw
if that value's embedding is a combination of the seen ones.
"""
from __future__ import annotations

import numpy as np

from plural_kit.reward.base import check_features


def condition(statements, responses) -> np.ndarray:
    """``s_i ⊗ y_i`` for each row: ``statements`` (n, k), ``responses`` (n, d) -> (n, k * d) float64."""
    s = check_features(statements, "statements")
    y = check_features(responses, "responses")
    if s.shape[0] != y.shape[0]:
        raise ValueError(f"'statements' has {s.shape[0]} rows and 'responses' {y.shape[0]}: one statement per response")
    return np.einsum("ik,id->ikd", s, y).reshape(s.shape[0], -1)
