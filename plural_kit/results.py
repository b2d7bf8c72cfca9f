"""The result protocol: what every audit, probe, metric table and fitter summary returns.

A result is a small object in the statsmodels style:

* ``to_frame()`` — its table, a **new** DataFrame (editing it never changes the result);
* ``summary()`` — a :class:`Summary`: text in a terminal, an HTML table in Jupyter;
* ``to_dict()`` — JSON types only, what ``metrics.json`` stores;
* ``plot(ax=None)`` — where a figure fits: draws on ``ax`` (or a new one) and returns it;
* a one-line ``repr`` (the numbers live in the summary, not the repr);
* ``claims()`` — where the result supports conclusions, a :class:`~plural_kit.claims.Claims`.

Interval columns are named ``ci_low`` / ``ci_high`` (with a prefix where a table has several:
``test_ci_low``); the level of an interval is ``confidence``. :func:`check_result` asserts all of
this and is run on every result class by the test suite.
"""
from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd

from plural_kit.io import jsonable

#: Column names that mean an interval bound but break the ``ci_low`` / ``ci_high`` naming.
_BAD_BOUND_NAMES = {"low", "high", "lo", "hi", "lower", "upper", "ci_lower", "ci_upper", "ci_lo", "ci_hi"}


def _bad_bound(column) -> bool:
    c = str(column)
    return c in _BAD_BOUND_NAMES or (any(c.endswith("_" + b) for b in _BAD_BOUND_NAMES)
                                     and not c.endswith(("ci_low", "ci_high")))


class Summary(str):
    """Text that renders as HTML in Jupyter (``_repr_html_``) and prints as itself elsewhere.

    It is a ``str``: ``print(result.summary())`` and ``"x" in result.summary()`` work as for text.
    """

    def __new__(cls, text: str, html_text: str | None = None) -> Summary:
        obj = super().__new__(cls, text)
        obj._html = html_text
        return obj

    def as_text(self) -> str:
        return str.__str__(self)

    def as_html(self) -> str:
        return self._html if self._html is not None else f"<pre>{html.escape(self.as_text())}</pre>"

    def _repr_html_(self) -> str:
        return self.as_html()

    def __repr__(self) -> str:  # shown as text, not as a quoted string with \n escapes
        return self.as_text()


def frame_summary(title: str, frame: pd.DataFrame, notes: str | list[str] = (), float_digits: int = 3) -> Summary:
    """A :class:`Summary` of ``frame`` under ``title``, with optional lines of ``notes`` below."""
    notes = [notes] if isinstance(notes, str) else list(notes)
    shown = frame.round(float_digits)
    text = "\n".join([title, shown.to_string(), *notes])
    body = shown.to_html(border=0, na_rep="")
    foot = "".join(f"<p>{html.escape(n)}</p>" for n in notes)
    return Summary(text, f"<div><b>{html.escape(title)}</b>{body}{foot}</div>")


class Result:
    """Base class of result objects (see the module docstring for the protocol).

    Subclasses implement ``to_frame`` and, where they differ from the defaults, ``summary``,
    ``to_dict`` and ``_repr_fields``. Dataclass subclasses pass ``repr=False`` so the short
    repr here is kept.
    """

    #: Title of the default summary.
    title: str = ""

    def to_frame(self) -> pd.DataFrame:
        raise NotImplementedError(f"{type(self).__name__} must implement to_frame()")

    def summary(self) -> Summary:
        return frame_summary(self.title or type(self).__name__, self.to_frame())

    def to_dict(self) -> dict[str, Any]:
        """JSON types: the table as ``{"table": records}`` plus the claims where there are any."""
        out: dict[str, Any] = {"table": jsonable(self.to_frame().reset_index().to_dict(orient="records"))}
        if hasattr(self, "claims"):
            out["claims"] = self.claims().to_dict()
        return out

    def _repr_fields(self) -> dict[str, Any]:
        """A few scalars for the one-line repr (default: the table's shape)."""
        rows, cols = self.to_frame().shape
        return {"rows": rows, "columns": cols}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={_short(v)}" for k, v in self._repr_fields().items())
        return f"<{type(self).__name__}: {fields}>"

    def _repr_html_(self) -> str:
        return self.summary().as_html()


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    s = str(v)
    return s if len(s) <= 40 else s[:37] + "..."


def check_result(result: Result, *, plot: bool | None = None) -> None:
    """Assert that ``result`` follows the result protocol (raises ``AssertionError`` naming the breach).

    ``plot``: also draw it (default: when the class has a ``plot`` method).
    """
    name = type(result).__name__
    assert isinstance(result, Result), f"{name} is not a plural_kit.results.Result"
    frame = result.to_frame()
    assert isinstance(frame, pd.DataFrame), f"{name}.to_frame() returned {type(frame).__name__}"
    again = result.to_frame()
    assert frame is not again, f"{name}.to_frame() returns the same object twice (must be a new frame)"
    before = again.copy(deep=True)
    numeric = [j for j, t in enumerate(frame.dtypes) if pd.api.types.is_float_dtype(t)]
    if numeric and len(frame):
        frame.iloc[:, numeric[0]] = frame.iloc[:, numeric[0]] + 1.0  # in place where frames share memory
    frame["__scratch__"] = 0
    pd.testing.assert_frame_equal(result.to_frame(), before, obj=f"{name}.to_frame() after editing a copy")
    bad = sorted(str(c) for c in [*before.columns, *before.index.names] if _bad_bound(c))
    assert not bad, f"{name}.to_frame() names interval bounds {bad}; use ci_low / ci_high"
    s = result.summary()
    assert isinstance(s, Summary), f"{name}.summary() returned {type(s).__name__}, not a Summary"
    assert s.as_text().strip(), f"{name}.summary() is empty"
    assert s._repr_html_().lstrip().startswith("<"), f"{name}.summary() has no HTML"
    d = result.to_dict()
    assert isinstance(d, dict), f"{name}.to_dict() returned {type(d).__name__}"
    json.dumps(d, allow_nan=False)  # JSON types only (non-finite floats as None)
    r = repr(result)
    assert "\n" not in r and len(r) <= 200, f"{name} repr is {len(r)} characters or several lines: {r[:80]!r}"
    if hasattr(result, "claims"):
        from plural_kit.claims import Claims

        assert isinstance(result.claims(), Claims), f"{name}.claims() is not a Claims"
    if plot is None:
        plot = hasattr(result, "plot")
    if plot:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        try:
            assert result.plot(ax=ax) is ax, f"{name}.plot(ax=ax) did not return ax"
            new = result.plot()
            assert hasattr(new, "figure"), f"{name}.plot() did not return matplotlib axes"
            plt.close(new.figure)
        finally:
            plt.close(fig)
