"""Item-level Bradley-Terry with statistical inference (standard errors, confidence intervals).

For a small set of items compared pairwise, ``P(i beats j) = sigmoid(s_i - s_j)`` with one
strength ``s_i`` per item. It is a logistic regression without intercept on a design with
``+1`` in the winner's column and ``-1`` in the loser's; one item is the reference
(``s_ref = 0``) because only differences are identified. Fitted by maximum likelihood with
:class:`statsmodels.discrete.discrete_model.Logit`, which gives the standard errors.
The MLE exists only when every item can be reached from every other one through "beat"
relations (the comparison graph is strongly connected); otherwise the error names the problem.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit
from scipy.stats import norm

from plural_kit.data.schema import validate_preferences
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary


@dataclass(frozen=True, repr=False)
class BTInferenceResult(Result):
    """Item strengths (log-odds scale, reference item = 0) with their uncertainty (a Result).

    Attributes
    ----------
    strengths : Series indexed by item, the estimated ``s_i`` (0 for the reference).
    std_errors : Series indexed by item, standard errors (0 for the reference).
    reference : the reference item.
    confidence : level of the intervals.
    n_pairs : number of comparisons used.
    fit_result : the statsmodels ``LogitResults`` (non-reference items only).
    """

    strengths: pd.Series
    std_errors: pd.Series
    reference: object
    confidence: float
    n_pairs: int
    fit_result: object

    title = "Bradley-Terry item strengths"

    def conf_int(self) -> pd.DataFrame:
        """Wald intervals ``s_i -/+ z * se_i`` (DataFrame with ``ci_low``, ``ci_high``), indexed by item."""
        z = norm.ppf(0.5 + self.confidence / 2)
        return pd.DataFrame(
            {"ci_low": self.strengths - z * self.std_errors, "ci_high": self.strengths + z * self.std_errors}
        )

    def win_probability(self, i, j) -> float:
        """Estimated P(item ``i`` beats item ``j``)."""
        return float(expit(self.strengths[i] - self.strengths[j]))

    def to_frame(self) -> pd.DataFrame:
        """One row per item, strongest first: ``strength``, ``std_error``, ``ci_low``, ``ci_high``, ``p_value``."""
        ci = self.conf_int()
        with np.errstate(divide="ignore", invalid="ignore"):
            p = 2 * norm.sf(np.abs(self.strengths / self.std_errors))
        frame = pd.DataFrame(
            {"strength": self.strengths, "std_error": self.std_errors, "ci_low": ci["ci_low"],
             "ci_high": ci["ci_high"], "p_value": np.where(self.std_errors > 0, p, np.nan)}
        )
        frame.index.name = "item"
        return frame.sort_values("strength", ascending=False)

    def summary(self) -> Summary:
        """The statsmodels summary table (strengths relative to the reference item), text and HTML."""
        table = self.fit_result.summary(
            yname="first item wins", title=f"{self.title} (reference: {self.reference!r})",
            alpha=1 - self.confidence,
        )
        return Summary(table.as_text(), table.as_html())

    def to_dict(self) -> dict[str, Any]:
        """JSON types: the table as records plus the reference item, the level and the number of pairs."""
        return {
            "table": jsonable(self.to_frame().reset_index().to_dict(orient="records")),
            "reference": jsonable(self.reference), "confidence": self.confidence, "n_pairs": self.n_pairs,
        }

    def plot(self, ax=None):
        """Strengths with their intervals (:func:`plural_kit.viz.intervals`), strongest on top; returns the axes."""
        from plural_kit import viz

        return viz.intervals(
            self.to_frame(), estimate="strength", kind="point",
            xlabel=f"strength (log-odds vs {self.reference!r}, {self.confidence:.0%} CI)", title=self.title, ax=ax,
        )

    def _repr_fields(self) -> dict[str, Any]:
        return {"items": len(self.strengths), "n_pairs": self.n_pairs, "reference": self.reference,
                "confidence": self.confidence}


def bradley_terry_inference(
    data,
    rejected=None,
    *,
    reference=None,
    confidence: float = 0.95,
) -> BTInferenceResult:
    """Fit item strengths with standard errors from pairwise outcomes.

    Parameters
    ----------
    data : a preference table (DataFrame with ``chosen`` and ``rejected`` item ids; the users
        are pooled), or a sequence of winning item ids (then pass ``rejected``).
    rejected : the losing item ids when ``data`` is a sequence.
    reference : the item whose strength is fixed at 0; default: the first item in sorted order.
    confidence : level of the Wald intervals.

    Raises
    ------
    ValueError
        naming items that never won or never lost, or a comparison graph that is not strongly
        connected (the strengths are then not identifiable: infinite MLE).
    """
    if isinstance(data, pd.DataFrame):
        if rejected is not None:
            raise ValueError("pass either a preference DataFrame or (chosen, rejected) sequences, not both")
        table = validate_preferences(data)
        chosen, rejected = table["chosen"].to_numpy(), table["rejected"].to_numpy()
    else:
        if rejected is None:
            raise ValueError("'rejected' is required when 'data' is a sequence of chosen items")
        table = validate_preferences(pd.DataFrame({"user": 0, "chosen": list(data), "rejected": list(rejected)}))
        chosen, rejected = table["chosen"].to_numpy(), table["rejected"].to_numpy()
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    items = pd.Index(pd.unique(np.concatenate([chosen, rejected]))).sort_values()
    if reference is None:
        reference = items[0]
    elif reference not in items:
        raise ValueError(f"reference item {reference!r} does not appear in the comparisons")
    n_items, n = len(items), len(chosen)
    win, lose = items.get_indexer(chosen), items.get_indexer(rejected)

    wins, losses = np.bincount(win, minlength=n_items), np.bincount(lose, minlength=n_items)
    for counts, what in ((losses, "lost"), (wins, "won")):
        if (counts == 0).any():
            bad = items[counts == 0][:5].tolist()
            raise ValueError(
                f"item(s) {bad} never {what}: their strength is infinite and has no standard error. "
                "Add comparisons, or fit a penalised model (plural_kit.reward.BradleyTerry with alpha > 0)"
            )
    graph = coo_matrix((np.ones(n), (lose, win)), shape=(n_items, n_items))
    n_comp, _ = connected_components(graph, directed=True, connection="strong")
    if n_comp > 1:
        raise ValueError(
            f"the comparison graph splits into {n_comp} strongly connected parts: some items are never "
            "compared with, or never beaten by, the others, so their relative strengths are not identifiable"
        )

    X = np.zeros((n, n_items))
    rows = np.arange(n)
    X[rows, win], X[rows, lose] = 1.0, -1.0
    # alternate the orientation of the pairs so the outcome has both classes (same likelihood)
    flip = rows % 2 == 1
    X[flip] *= -1.0
    y = (~flip).astype(np.float64)
    ref = items.get_loc(reference)
    keep = [i for i in range(n_items) if i != ref]
    exog = pd.DataFrame(X[:, keep], columns=[str(it) for it in items[keep]])
    fit = sm.Logit(y, exog).fit(disp=0)
    strengths = np.zeros(n_items)
    se = np.zeros(n_items)
    strengths[keep], se[keep] = fit.params.to_numpy(), fit.bse.to_numpy()
    return BTInferenceResult(
        strengths=pd.Series(strengths, index=items, name="strength"),
        std_errors=pd.Series(se, index=items, name="std_error"),
        reference=reference,
        confidence=confidence,
        n_pairs=n,
        fit_result=fit,
    )
