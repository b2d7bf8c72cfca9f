"""The figures the lessons share, in one seaborn style. Each takes a tidy table (usually a result's
``to_frame()``) and returns the matplotlib axes it drew on; results' ``plot`` methods call these.

* :func:`intervals` — estimates with ``ci_low`` / ``ci_high`` whiskers, one row per label
  (bars or points), with reference lines (an oracle, chance).
* :func:`curve` — one line per series over ``x`` (layers, shots, disagreement), an optional
  interval band, reference lines.
* :func:`heatmap` — a labelled table of rates in [0, 1].
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

#: Line styles of reference lines, in the order references are given.
_REF_STYLES = [dict(color="k", ls="--", lw=1), dict(color="0.5", ls="-.", lw=1), dict(color="k", ls=":", lw=0.8)]


def set_style() -> None:
    """The lessons' seaborn theme (white grid, notebook context)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")


def _axes(ax, figsize):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=figsize)[1]


def _references(ax, references: Mapping[str, float] | None, vertical: bool) -> None:
    for (name, value), style in zip((references or {}).items(), _REF_STYLES * 3):
        (ax.axvline if vertical else ax.axhline)(value, label=name, **style)


def intervals(
    frame: pd.DataFrame,
    *,
    estimate: str = "estimate",
    label: str | None = None,
    kind: str = "bar",
    references: Mapping[str, float] | None = None,
    markers: Mapping[str, str] | None = None,
    xlabel: str | None = None,
    title: str | None = None,
    xlim: tuple[float, float] | None = None,
    ax=None,
):
    """Horizontal estimates with their intervals, first row on top.

    ``frame`` has columns ``estimate``, ``ci_low``, ``ci_high`` (labels: the index, or column
    ``label``). ``kind``: ``"bar"`` or ``"point"``. ``markers``: extra columns drawn as points
    on the same rows, ``{column: legend label}``. ``references``: ``{legend label: x}`` lines.
    """
    if kind not in ("bar", "point"):
        raise ValueError(f"kind must be 'bar' or 'point'; got {kind!r}")
    missing = [c for c in (estimate, "ci_low", "ci_high", *(markers or {})) if c not in frame.columns]
    if missing:
        raise ValueError(f"intervals() needs columns {missing}; got {list(frame.columns)}")
    labels = [str(v) for v in (frame[label] if label else frame.index)]
    y = np.arange(len(frame))
    est = frame[estimate].to_numpy(dtype=float)
    err = np.vstack([est - frame["ci_low"].to_numpy(dtype=float), frame["ci_high"].to_numpy(dtype=float) - est])
    ax = _axes(ax, (7, 0.45 * len(frame) + 1.2))
    if kind == "bar":
        ax.barh(y, est, xerr=err, color="C0", alpha=0.85, capsize=2)
    else:
        ax.errorbar(est, y, xerr=err, fmt="o", capsize=2, label=f"{estimate}, {_level(frame)} interval")
    for i, (col, name) in enumerate((markers or {}).items()):
        ax.plot(frame[col].to_numpy(dtype=float), y, "sx^D"[i % 4], color=f"C{i + 2}", label=name)
    _references(ax, references, vertical=True)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(frame) - 0.5, -0.5)
    ax.set(xlabel=xlabel or f"{estimate} ({_level(frame)} interval)", title=title)
    if xlim is not None:
        ax.set_xlim(*xlim)
    if references or markers or kind == "point":
        ax.legend(fontsize=8, loc="best")
    return ax


def _level(frame: pd.DataFrame) -> str:
    if "confidence" in frame.columns and frame["confidence"].nunique() == 1:
        return f"{float(frame['confidence'].iloc[0]):.0%}"
    return "95%"


def curve(
    frame: pd.DataFrame,
    *,
    x: str,
    y: str,
    hue: str | None = None,
    band: tuple[str, str] | None = None,
    references: Mapping[str, float] | None = None,
    logx: bool = False,
    xticks: Sequence | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    ylim: tuple[float, float] | None = None,
    ax=None,
):
    """Lines of ``y`` over ``x`` (one per ``hue`` value), an optional band between the two columns
    ``band`` (e.g. ``("ci_low", "ci_high")``), and horizontal reference lines ``{label: y}``."""
    missing = [c for c in (x, y, hue, *(band or ())) if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"curve() needs columns {missing}; got {list(frame.columns)}")
    ax = _axes(ax, (6, 3.5))
    groups = frame.groupby(hue, sort=False) if hue else [(None, frame)]
    for i, (name, part) in enumerate(groups):
        part = part.sort_values(x)
        ax.plot(part[x], part[y], marker="o", color=f"C{i}", label=None if name is None else str(name))
        if band:
            ax.fill_between(part[x], part[band[0]], part[band[1]], color=f"C{i}", alpha=0.15)
    _references(ax, references, vertical=False)
    if logx:
        ax.set_xscale("symlog" if (frame[x] <= 0).any() else "log")
    if xticks is not None:
        ax.set_xticks(list(xticks), [str(t) for t in xticks])
        ax.minorticks_off()
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if hue or references:
        ax.legend(fontsize=8, loc="best")
    return ax


def heatmap(frame: pd.DataFrame, *, vmin: float = 0.0, vmax: float = 1.0, fmt: str = ".2f",
            title: str | None = None, cmap: str = "RdYlGn", ax=None):
    """An annotated heatmap of ``frame`` (rows x columns of rates)."""
    import seaborn as sns

    ax = _axes(ax, (0.9 * frame.shape[1] + 3, 0.45 * frame.shape[0] + 1.2))
    sns.heatmap(frame.astype(float), annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, cbar=False, ax=ax)
    ax.set(title=title, ylabel="")
    return ax


# -- audit figures (lesson 02) ---------------------------------------------------------------------

def boxes(frame: pd.DataFrame, *, x: str, y: str, order: Sequence | None = None, dots: pd.DataFrame | None = None,
          dots_label: str = "group means", points: Mapping[str, pd.Series] | None = None,
          ylabel: str | None = None, title: str | None = None, ax=None):
    """Boxes of ``y`` per ``x`` in a long ``frame`` (e.g. every rater's score per foundation), optional
    ``dots`` (a frame with columns ``x`` and ``y``, e.g. country means) as a strip, and ``points``
    ``{legend label: Series indexed by x}`` drawn as large markers (e.g. the model's scores)."""
    import seaborn as sns

    order = list(order) if order is not None else list(dict.fromkeys(frame[x]))
    ax = _axes(ax, (7, 4.5))
    sns.boxplot(data=frame, x=x, y=y, order=order, color="0.85", fliersize=0, ax=ax)
    if dots is not None:
        sns.stripplot(data=dots, x=x, y=y, order=order, color="C0", size=4, alpha=0.7, ax=ax, label=dots_label)
    for i, (name, series) in enumerate((points or {}).items()):
        ax.scatter(range(len(order)), series.reindex(order).to_numpy(dtype=float), marker="v^Ds"[i % 4], s=60,
                   color=f"C{i + 1}", zorder=5, label=name)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=8, loc="lower left")
    ax.set(xlabel="", ylabel=ylabel or y, title=title)
    return ax


def strip(frame: pd.DataFrame, *, x: str, y: str, hue: str, order: Sequence | None = None,
          bands: Mapping[str, tuple[float, float]] | None = None, ylim: tuple[float, float] | None = None,
          ylabel: str | None = None, title: str | None = None, ax=None):
    """One dot per row of a long ``frame`` at category ``x``, coloured by ``hue``, over shaded
    ``bands`` ``{category: (low, high)}`` (e.g. the range of the countries' means)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    order = list(order) if order is not None else list(dict.fromkeys(frame[x]))
    ax = _axes(ax, (8, 4.5))
    for i, cat in enumerate(order):
        if bands and cat in bands:
            lo, hi = bands[cat]
            ax.add_patch(plt.Rectangle((i - 0.4, lo), 0.8, hi - lo, color="C0", alpha=0.15))
    sns.stripplot(data=frame, x=x, y=y, hue=hue, order=order, size=7, jitter=0.2, ax=ax)
    ax.set(xlabel="", ylabel=ylabel or y, title=title)
    ax.tick_params(axis="x", labelsize=8)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    return ax


def arrows(frame: pd.DataFrame, *, start: str, end: str, good: str | None = None,
           labels: Mapping[str, str] | None = None, xlabel: str | None = None, title: str | None = None, ax=None):
    """Per row (labels: the index), an arrow from column ``start`` to column ``end``; green where the
    boolean column ``good`` is true. ``labels``: legend names of the two ends."""
    labels = {start: start, end: end, **(labels or {})}
    ax = _axes(ax, (7, 0.45 * len(frame) + 1.5))
    y = np.arange(len(frame))
    ok = frame[good].to_numpy(dtype=bool) if good else np.zeros(len(frame), dtype=bool)
    for i, (a, b) in enumerate(zip(frame[start].to_numpy(dtype=float), frame[end].to_numpy(dtype=float))):
        ax.annotate("", xy=(b, i), xytext=(a, i), arrowprops=dict(arrowstyle="->", color="C2" if ok[i] else "0.4"))
    ax.scatter(frame[start], y, color="0.4", label=labels[start], zorder=3)
    ax.scatter(frame[end], y, color="C3", label=labels[end], zorder=3)
    ax.set_yticks(y, [str(v) for v in frame.index])
    ax.set_ylim(len(frame) - 0.5, -0.5)
    ax.set(xlabel=xlabel or f"{start} -> {end}", title=title)
    ax.legend(fontsize=8)
    return ax


def versus(frame: pd.DataFrame, *, x: str, y: str, diagonal: bool = True, lims: tuple[float, float] | None = None,
           xlabel: str | None = None, ylabel: str | None = None, title: str | None = None, ax=None):
    """``y`` against ``x``, one point per row, with the diagonal ``y = x`` (points above it: ``y`` larger)."""
    ax = _axes(ax, (4.5, 4.5))
    ax.scatter(frame[x], frame[y])
    if diagonal:
        lo, hi = lims or (float(min(frame[x].min(), frame[y].min())), float(max(frame[x].max(), frame[y].max())))
        ax.plot([lo, hi], [lo, hi], color="0.5", lw=1)
    if lims is not None:
        ax.set(xlim=lims, ylim=lims)
    ax.set(xlabel=xlabel or x, ylabel=ylabel or y, title=title)
    return ax


def bars(frame: pd.DataFrame, *, ylabel: str | None = None, title: str | None = None, ax=None):
    """Grouped vertical bars: one group per row of ``frame``, one bar per column (legend)."""
    ax = _axes(ax, (9, 3))
    frame.plot.bar(ax=ax)
    ax.set(ylabel=ylabel, title=title)
    return ax


def scatter(frame: pd.DataFrame, *, x: str, y: str, hue: str | None = None, style: str | None = None,
            title: str | None = None, ax=None):
    """Points ``(x, y)`` coloured by ``hue`` and marked by ``style`` (columns of ``frame``), no ticks:
    for 2-D projections such as the principal components of user vectors."""
    import seaborn as sns

    missing = [c for c in (x, y, hue, style) if c is not None and c not in frame.columns]
    if missing:
        raise ValueError(f"scatter() needs columns {missing}; got {list(frame.columns)}")
    ax = _axes(ax, (4.5, 3.8))
    sns.scatterplot(data=frame, x=x, y=y, hue=hue, style=style, s=40, alpha=0.8, ax=ax,
                    markers={"seen": "o", "unseen": "X"} if style and set(frame[style]) <= {"seen", "unseen"}
                    else True)
    ax.set(title=title, xticks=[], yticks=[], xlabel="", ylabel="")
    if hue or style:
        ax.legend(fontsize=7, loc="best")
    return ax
