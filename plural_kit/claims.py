"""Claims: a lesson's conclusions as statements the package checks against their evidence.

A :class:`Claim` says "``quantity`` is above (or below) ``threshold``" and carries the estimate of
that quantity with its confidence interval. Its outcome is one of three:

* ``"holds"`` — the whole interval lies on the claimed side of the threshold;
* ``"does not hold"`` — the whole interval lies on the other side;
* ``"not distinguishable"`` — the interval contains the threshold: the data cannot tell.

The outcome depends on the interval, not on the last decimals of the estimate, so a lesson that
prints only claims and their outcomes says the same thing in bf16 and fp32, on any CPU or GPU
(unless the evidence itself sits on the edge, which the interval then shows).

>>> c = Claim.from_interval("gap", "one reward falls short of the oracle",
...                         stats.Interval(0.12, 0.08, 0.16), threshold=0.0)
>>> c.outcome
'holds'

A lesson collects its claims in :class:`Claims`, prints them (``print(claims)``: one line each,
``claim <name>: <OUTCOME> — <statement> | evidence: …``), and stores ``claims.to_dict()`` in
``metrics.json``; its test reads the outcomes from there.
"""
from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from plural_kit import stats
from plural_kit.results import Result, Summary

__all__ = ["HOLDS", "NOT_DISTINGUISHABLE", "DOES_NOT_HOLD", "OUTCOMES", "Claim", "Claims",
           "claim_mean", "claim_paired", "claim_difference", "claim_proportion", "claims_for"]

HOLDS = "holds"
DOES_NOT_HOLD = "does not hold"
NOT_DISTINGUISHABLE = "not distinguishable"
OUTCOMES = (HOLDS, DOES_NOT_HOLD, NOT_DISTINGUISHABLE)

Side = Literal["greater", "less"]


@dataclass(frozen=True)
class Claim:
    """``quantity`` is ``side`` (``"greater"`` or ``"less"``) than ``threshold``, with its evidence.

    Attributes: ``name`` (an identifier, the key in ``metrics.json``), ``statement`` (plain words,
    what holds when the claim holds), ``quantity`` (what ``estimate`` measures, e.g. "selectivity"),
    ``estimate``, ``ci_low``, ``ci_high``, ``confidence``, ``threshold``, ``side``, ``method`` (how
    the interval was computed, e.g. "paired bootstrap over 24 prompts") and ``details`` (extra
    evidence shown on the line, e.g. ``{"layer": 14}``: numbers that may change with the machine
    but not the outcome).
    """

    name: str
    statement: str
    quantity: str
    estimate: float
    ci_low: float
    ci_high: float
    threshold: float = 0.0
    side: Side = "greater"
    confidence: float = 0.95
    method: str = ""
    details: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.side not in ("greater", "less"):
            raise ValueError(f"side must be 'greater' or 'less'; got {self.side!r}")
        if not self.name.isidentifier():
            raise ValueError(f"a claim's name must be an identifier (it is a key in metrics.json); got {self.name!r}")
        if not (math.isnan(self.ci_low) or math.isnan(self.ci_high)) and self.ci_low > self.ci_high:
            raise ValueError(f"claim {self.name!r}: ci_low {self.ci_low} is above ci_high {self.ci_high}")

    @classmethod
    def from_interval(cls, name: str, statement: str, interval: stats.Interval, *, quantity: str = "estimate",
                      threshold: float = 0.0, side: Side = "greater", method: str = "",
                      details: dict | None = None) -> Claim:
        """A claim from a :class:`plural_kit.stats.Interval`."""
        est, low, high, conf = interval
        return cls(name, statement, quantity, float(est), float(low), float(high), float(threshold), side,
                   float(conf), method, dict(details or {}))

    @property
    def outcome(self) -> str:
        """``"holds"``, ``"does not hold"`` or ``"not distinguishable"`` (also when there is no interval)."""
        low, high, t = self.ci_low, self.ci_high, self.threshold
        if math.isnan(low) or math.isnan(high):
            return NOT_DISTINGUISHABLE
        above, below = low > t, high < t
        if self.side == "greater":
            return HOLDS if above else DOES_NOT_HOLD if below else NOT_DISTINGUISHABLE
        return HOLDS if below else DOES_NOT_HOLD if above else NOT_DISTINGUISHABLE

    @property
    def holds(self) -> bool:
        return self.outcome == HOLDS

    def evidence(self) -> str:
        """``quantity 0.60, 95% CI [0.41, 0.77] vs > 0 (method; key value, …)``."""
        sign = ">" if self.side == "greater" else "<"
        extra = "; ".join([self.method] * bool(self.method)
                          + [f"{k} {_fmt(v)}" for k, v in self.details.items()])
        return (f"{self.quantity} {_fmt(self.estimate)}, {self.confidence:.0%} CI [{_fmt(self.ci_low)}, "
                f"{_fmt(self.ci_high)}] vs {sign} {self.threshold:g}" + (f" ({extra})" if extra else ""))

    def line(self) -> str:
        """One printed line; everything after ``| evidence:`` is numbers, the rest is stable."""
        return f"claim {self.name}: {self.outcome.upper()} — {self.statement} | evidence: {self.evidence()}"

    def to_dict(self) -> dict:
        return {**asdict(self), "outcome": self.outcome}

    def __str__(self) -> str:
        return self.line()


def _fmt(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return "nan" if math.isnan(v) else f"{v:.3g}" if abs(v) < 1e-2 and v != 0 else f"{v:.2f}"
    return str(v)


class Claims(Result):
    """An ordered collection of claims with unique names: ``claims["name"]``, ``len``, iteration."""

    def __init__(self, claims: Iterable[Claim] = ()):
        self._claims: dict[str, Claim] = {}
        for c in claims:
            self.add(c)

    def add(self, claim: Claim) -> Claim:
        """Add ``claim`` (its name must be new) and return it."""
        if not isinstance(claim, Claim):
            raise TypeError(f"Claims holds Claim objects; got {type(claim).__name__}")
        if claim.name in self._claims:
            raise ValueError(f"a claim named {claim.name!r} is already in this collection")
        self._claims[claim.name] = claim
        return claim

    def extend(self, claims: Iterable[Claim]) -> Claims:
        """:meth:`add` each of ``claims`` and return them as a new :class:`Claims` (``print`` it: one
        line each)."""
        new = Claims(claims)                                   # checks types and repeated names first
        taken = [c.name for c in new if c.name in self._claims]
        if taken:
            raise ValueError(f"claims named {taken} are already in this collection")
        for c in new:
            self.add(c)
        return new

    def __getitem__(self, name: str) -> Claim:
        try:
            return self._claims[name]
        except KeyError:
            raise KeyError(f"no claim {name!r}; claims: {list(self._claims)}") from None

    def __iter__(self) -> Iterator[Claim]:
        return iter(self._claims.values())

    def __len__(self) -> int:
        return len(self._claims)

    def outcomes(self) -> dict[str, str]:
        """``{name: outcome}``."""
        return {c.name: c.outcome for c in self}

    def to_frame(self) -> pd.DataFrame:
        """One row per claim (a new frame): outcome, statement, estimate, interval, threshold, method."""
        cols = ["name", "outcome", "statement", "quantity", "estimate", "ci_low", "ci_high", "confidence",
                "threshold", "side", "method"]
        return pd.DataFrame([{k: c.to_dict()[k] for k in cols} for c in self], columns=cols).set_index("name")

    def to_dict(self) -> dict[str, dict]:
        """``{name: claim.to_dict()}`` for ``metrics.json``."""
        return {c.name: c.to_dict() for c in self}

    def summary(self) -> Summary:
        """One line per claim (text); a table of claim, outcome, statement, evidence (HTML)."""
        rows = "".join(
            f"<tr><td><code>{html.escape(c.name)}</code></td><td><b>{html.escape(c.outcome)}</b></td>"
            f"<td>{html.escape(c.statement)}</td><td>{html.escape(c.evidence())}</td></tr>" for c in self)
        table = ("<table><thead><tr><th>claim</th><th>outcome</th><th>statement</th><th>evidence</th></tr>"
                 f"</thead><tbody>{rows}</tbody></table>")
        return Summary("\n".join(c.line() for c in self), table)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        counts = pd.Series([c.outcome for c in self], dtype=object).value_counts()
        return f"<Claims: {len(self)} ({', '.join(f'{n} {o}' for o, n in counts.items()) or 'none'})>"


def claims_for(make: Callable[..., Claim], models: Mapping[str, str | tuple[str, str]], name: str,
               statement: str, *args, **kwargs) -> Claims:
    """The same claim about each of several models, in the order of ``models``.

    For each ``key: model`` (or ``key: (label, model)``) of ``models``:
    ``make(name.format(key=key), statement.format(model=label), model, *args, **kwargs)``; the label
    (default: the model's name) is how the statement names the model. ``make`` is a claim method
    of a result, e.g. ``claims_for(comparison.claim, {"pal": "PAL"}, "{key}_beats_bt",
    "{model} beats one BT reward", "BT")`` is ``Claims([comparison.claim("pal_beats_bt", "PAL beats
    one BT reward", "PAL", "BT")])``.
    """
    out = Claims()
    for key, model in models.items():
        label, model = model if isinstance(model, tuple) else (model, model)
        out.add(make(name.format(key=key), statement.format(model=label), model, *args, **kwargs))
    return out


# -- constructors for the common kinds of evidence ------------------------------------------------

def claim_mean(name: str, statement: str, values, *, quantity: str = "mean", threshold: float = 0.0,
               side: Side = "greater", statistic: Callable = np.mean, confidence: float = 0.95,
               n_boot: int = 1000, seed: int = 0, method: str | None = None, details: dict | None = None) -> Claim:
    """``statistic(values)`` vs ``threshold``, bootstrap interval over the values (n,).

    ``method`` names the resampling on the printed line (default: "bootstrap over n")."""
    values = np.asarray(values, dtype=np.float64)
    iv = stats.bootstrap_ci(values, statistic, confidence=confidence, n_boot=n_boot, seed=seed)
    return Claim.from_interval(name, statement, iv, quantity=quantity, threshold=threshold, side=side,
                               method=method or f"bootstrap over {values.shape[0]}", details=details)


def claim_paired(name: str, statement: str, a, b, *, quantity: str = "mean difference",
                 threshold: float = 0.0, side: Side = "greater", statistic: Callable = np.mean,
                 confidence: float = 0.95, n_boot: int = 1000, seed: int = 0, method: str | None = None,
                 details: dict | None = None) -> Claim:
    """``statistic(a - b)`` vs ``threshold`` for paired observations, bootstrap over the pairs."""
    iv = stats.paired_difference(a, b, statistic, confidence=confidence, n_boot=n_boot, seed=seed)
    return Claim.from_interval(name, statement, iv, quantity=quantity, threshold=threshold, side=side,
                               method=method or f"paired bootstrap over {np.shape(a)[0]}", details=details)


def claim_difference(name: str, statement: str, a, b, *, quantity: str = "difference of means",
                     threshold: float = 0.0, side: Side = "greater", statistic: Callable = np.mean,
                     confidence: float = 0.95, n_boot: int = 1000, seed: int = 0,
                     method: str | None = None, details: dict | None = None) -> Claim:
    """``statistic(a) - statistic(b)`` vs ``threshold`` for independent samples."""
    iv = stats.difference_ci(a, b, statistic, confidence=confidence, n_boot=n_boot, seed=seed)
    return Claim.from_interval(name, statement, iv, quantity=quantity, threshold=threshold, side=side,
                               method=method or f"bootstrap over {np.shape(a)[0]} and {np.shape(b)[0]}",
                               details=details)


def claim_proportion(name: str, statement: str, k: int, n: int, *, quantity: str = "proportion",
                     threshold: float = 0.5, side: Side = "greater", confidence: float = 0.95,
                     details: dict | None = None) -> Claim:
    """The proportion ``k / n`` vs ``threshold``, Wilson interval."""
    iv = stats.wilson_interval(k, n, confidence=confidence)
    return Claim.from_interval(name, statement, iv, quantity=quantity, threshold=threshold, side=side,
                               method=f"Wilson, {int(k)}/{int(n)}", details=details)
