"""Linear probes by layer with a held-out-source split, a shuffled-label control task
(selectivity, Hewitt & Liang 2019) and a bag-of-words lexical baseline."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GroupShuffleSplit
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from statsmodels.stats.proportion import proportion_confint


def check_binary_labels(y, n: int | None = None, name: str = "y") -> np.ndarray:
    """Return ``y`` as an int array of 0/1 labels, or raise naming the problem."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D; got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} labels for {n} rows")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError(f"{name} contains NaN labels")
    bad = set(np.unique(arr).tolist()) - {0, 1, True, False}
    if bad:
        raise ValueError(f"{name} must hold labels in {{0, 1}}; found {sorted(map(str, bad))[:5]}")
    return arr.astype(int)


def normalize_prompt(text: str) -> str:
    """Key used to detect duplicate prompts: case-folded, whitespace collapsed."""
    return re.sub(r"\s+", " ", str(text)).strip().casefold()


def dedupe_prompts(texts: Sequence[str], y=None) -> np.ndarray:
    """Indices of the first occurrence of each prompt (after :func:`normalize_prompt`).

    With labels ``y``, a prompt that appears with two different labels raises ``ValueError``.
    """
    first: dict[str, int] = {}
    keep = []
    for i, t in enumerate(texts):
        key = normalize_prompt(t)
        if key in first:
            if y is not None and y[first[key]] != y[i]:
                raise ValueError(f"prompt {t[:60]!r} appears with both labels {y[first[key]]} and {y[i]}")
            continue
        first[key] = i
        keep.append(i)
    return np.asarray(keep, dtype=int)


def group_split(y, groups, test_size: float = 0.3, seed: int = 0, max_tries: int = 200):
    """Split row indices so that no group (source) is in both splits and both splits hold both classes.

    A :class:`~sklearn.model_selection.GroupShuffleSplit` is redrawn (seeded) until each side has
    both labels. Returns ``(train_idx, test_idx)``. Raises when the groups cannot give such a split
    (for example when one class comes from a single source).
    """
    y = check_binary_labels(y)
    groups = np.asarray(groups, dtype=object)
    if len(groups) != len(y):
        raise ValueError(f"groups has {len(groups)} entries for {len(y)} labels")
    if pd.isna(groups).any():
        raise ValueError("groups contains missing values: every row needs a source")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1); got {test_size}")
    for c in (0, 1):
        n_src = len(set(groups[y == c]))
        if n_src < 2:
            raise ValueError(
                f"class {c} comes from {n_src} source(s); a held-out-source split needs at least 2 "
                "sources per class (pass finer `groups`)")
    splitter = GroupShuffleSplit(n_splits=max_tries, test_size=test_size, random_state=seed)
    for train, test in splitter.split(np.zeros(len(y)), y, groups):
        if len(set(y[train])) == 2 and len(set(y[test])) == 2:
            return np.sort(train), np.sort(test)
    raise ValueError(f"no split of {len(set(groups))} sources into train/test with both classes on each side "
                     f"in {max_tries} draws; change test_size or the groups")


def control_labels(y, seed: int = 0) -> np.ndarray:
    """The control task: a seeded permutation of the labels (same class balance, no signal).

    Hewitt & Liang give each *word type* a fixed random label, so types seen in training
    can be recalled on test. Prompts here are unique and de-duplicated across splits, so
    the held-out control accuracy is chance by construction and selectivity reduces to
    held-out accuracy above chance; the probe's capacity to memorise shows in the control
    task's *training* accuracy, which ``ProbeResult`` reports beside it.
    """
    y = check_binary_labels(y)
    return np.random.default_rng(seed).permutation(y)


def wilson_interval(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes out of ``n``."""
    if n <= 0:
        raise ValueError("a confidence interval needs n >= 1")
    lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
    p = k / n
    return float(min(lo, p)), float(max(hi, p))  # guard against rounding at k = 0 or n


class LinearProbe(ClassifierMixin, BaseEstimator):
    """Logistic-regression probe on activations (n, d), standardised features.

    Fitted attributes: ``pipeline_``, ``coef_`` (d,) in standardised units, ``direction_`` (d,)
    the unit-norm weight vector in the input space (zeros if the features are constant), ``classes_``.
    """

    def __init__(self, C: float = 1.0, standardize: bool = True, max_iter: int = 2000, random_state: int = 0):
        self.C = C
        self.standardize = standardize
        self.max_iter = max_iter
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n, d); got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise ValueError("X contains NaN or infinite values")
        y = check_binary_labels(y, len(X))
        if len(set(y)) < 2:
            raise ValueError("y holds a single class; a probe needs both 0 and 1")
        steps = [StandardScaler()] if self.standardize else []
        lr = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        self.pipeline_ = make_pipeline(*steps, lr).fit(X, y)
        self.classes_ = lr.classes_
        self.coef_ = lr.coef_[0].copy()
        w = self.coef_ / self.pipeline_[0].scale_ if self.standardize else self.coef_
        norm = np.linalg.norm(w)
        self.direction_ = w / norm if norm > 0 else np.zeros_like(w)  # constant features: no direction
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X):
        return self.pipeline_.predict(np.asarray(X, dtype=np.float64))

    def predict_proba(self, X):
        return self.pipeline_.predict_proba(np.asarray(X, dtype=np.float64))


def lexical_baseline(texts: Sequence[str], y, train_idx, test_idx, C: float = 1.0) -> np.ndarray:
    """Bag-of-words logistic regression on the same split; returns its test predictions."""
    y = check_binary_labels(y, len(texts))
    texts = np.asarray(list(texts), dtype=object)
    model = make_pipeline(CountVectorizer(lowercase=True, min_df=1),
                          LogisticRegression(C=C, max_iter=2000))
    model.fit(texts[train_idx], y[train_idx])
    return model.predict(texts[test_idx])


def _bootstrap_diff(correct_a: np.ndarray, correct_b: np.ndarray, n_boot: int, seed: int, alpha: float):
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct_a), size=(n_boot, len(correct_a)))
    diffs = correct_a[idx].mean(1) - correct_b[idx].mean(1)
    return tuple(np.quantile(diffs, [alpha / 2, 1 - alpha / 2]).tolist())


@dataclass
class ProbeResult:
    """Per-layer probe accuracies (see :meth:`to_frame`), the split and the lexical baseline."""

    frame: pd.DataFrame
    train_idx: np.ndarray = field(repr=False)
    test_idx: np.ndarray = field(repr=False)
    probes: dict = field(repr=False, default_factory=dict)
    lexical: dict | None = None

    def to_frame(self) -> pd.DataFrame:
        """One row per layer: test accuracy with Wilson CI, control accuracies, selectivity with bootstrap CI."""
        return self.frame.copy()

    @property
    def best_layer(self) -> int:
        """Layer with the highest held-out task accuracy (earliest on ties)."""
        return int(self.frame["test_acc"].idxmax())

    def summary(self) -> str:
        f = self.frame
        best = self.best_layer
        r = f.loc[best]
        lines = [
            f"linear probe: {len(self.train_idx)} train / {len(self.test_idx)} held-out prompts, {len(f)} layers",
            f"best layer {best}: held-out accuracy {r.test_acc:.3f} [{r.test_ci_low:.3f}, {r.test_ci_high:.3f}], "
            f"control {r.control_test_acc:.3f}, selectivity {r.selectivity:.3f}",
            f"control task train accuracy (memorisation capacity): mean {f.control_train_acc.mean():.3f}",
        ]
        if self.lexical is not None:
            lines.append(f"lexical bag-of-words baseline on the same split: {self.lexical['test_acc']:.3f} "
                         f"[{self.lexical['test_ci_low']:.3f}, {self.lexical['test_ci_high']:.3f}]")
        return "\n".join(lines)


def probe_by_layer(
    activations: Mapping[int, np.ndarray],
    y,
    *,
    groups=None,
    train_idx=None,
    test_idx=None,
    texts: Sequence[str] | None = None,
    test_size: float = 0.3,
    C: float = 1.0,
    seed: int = 0,
    n_boot: int = 1000,
    alpha: float = 0.05,
) -> ProbeResult:
    """Fit a :class:`LinearProbe` and a control probe at every layer, evaluate on held-out sources.

    activations: ``{layer: array (n, d)}``, rows aligned with ``y`` (0/1) and ``groups`` (sources).
    The split is :func:`group_split` on ``groups`` after dropping duplicate ``texts`` (when given),
    or the explicit ``train_idx``/``test_idx``, which must not share a prompt or a group.
    The control task relabels the rows with :func:`control_labels` within each split; selectivity = task accuracy -
    control accuracy on the held-out rows. With ``texts`` a bag-of-words baseline uses the same split.
    """
    if not activations:
        raise ValueError("activations is empty: pass {layer: array (n, d)}")
    layers = sorted(activations)
    n = len(next(iter(activations.values())))
    for layer in layers:
        if np.asarray(activations[layer]).shape[0] != n:
            raise ValueError(f"layer {layer} has {np.asarray(activations[layer]).shape[0]} rows, expected {n}")
    y = check_binary_labels(y, n)
    if texts is not None and len(texts) != n:
        raise ValueError(f"texts has {len(texts)} entries for {n} rows")
    if (train_idx is None) != (test_idx is None):
        raise ValueError("pass both train_idx and test_idx, or neither")
    if train_idx is None:
        if groups is None:
            raise ValueError("pass `groups` (the source of each prompt) or an explicit train_idx/test_idx")
        keep = dedupe_prompts(texts, y) if texts is not None else np.arange(n)
        tr, te = group_split(y[keep], np.asarray(groups, dtype=object)[keep], test_size=test_size, seed=seed)
        train_idx, test_idx = keep[tr], keep[te]
    else:
        train_idx, test_idx = np.asarray(train_idx, dtype=int), np.asarray(test_idx, dtype=int)
        if set(train_idx) & set(test_idx):
            raise ValueError("train_idx and test_idx share rows")
        if texts is not None:
            shared = {normalize_prompt(texts[i]) for i in train_idx} & {normalize_prompt(texts[i]) for i in test_idx}
            if shared:
                raise ValueError(f"{len(shared)} prompt(s) appear in both splits, e.g. {next(iter(shared))[:60]!r}")
        if groups is not None:
            g = np.asarray(groups, dtype=object)
            if len(g) != n or pd.isna(g).any():
                raise ValueError("groups must give a source for every row (no missing values)")
            shared = set(g[train_idx]) & set(g[test_idx])
            if shared:
                raise ValueError(f"sources in both splits: {sorted(map(str, shared))[:5]}")
    # permuted within each split, so both keep their class balance: a permutation across the split
    # would leave the control's training majority the test minority (held-out accuracy below chance)
    y_ctrl = y.copy()
    y_ctrl[train_idx] = control_labels(y[train_idx], seed=seed)
    y_ctrl[test_idx] = control_labels(y[test_idx], seed=seed + 1)
    rows, probes = [], {}
    for layer in layers:
        X = np.asarray(activations[layer])
        task = LinearProbe(C=C, random_state=seed).fit(X[train_idx], y[train_idx])
        ctrl = LinearProbe(C=C, random_state=seed).fit(X[train_idx], y_ctrl[train_idx])
        correct = (task.predict(X[test_idx]) == y[test_idx]).astype(float)
        ctrl_correct = (ctrl.predict(X[test_idx]) == y_ctrl[test_idx]).astype(float)
        lo, hi = wilson_interval(int(correct.sum()), len(correct), alpha)
        s_lo, s_hi = _bootstrap_diff(correct, ctrl_correct, n_boot, seed, alpha)
        rows.append({
            "layer": layer,
            "train_acc": accuracy_score(y[train_idx], task.predict(X[train_idx])),
            "test_acc": correct.mean(), "test_ci_low": lo, "test_ci_high": hi,
            "control_train_acc": accuracy_score(y_ctrl[train_idx], ctrl.predict(X[train_idx])),
            "control_test_acc": ctrl_correct.mean(),
            "selectivity": correct.mean() - ctrl_correct.mean(),
            "selectivity_ci_low": s_lo, "selectivity_ci_high": s_hi,
        })
        probes[layer] = task
    lexical = None
    if texts is not None:
        pred = lexical_baseline(texts, y, train_idx, test_idx, C=C)
        k = int((pred == y[test_idx]).sum())
        lo, hi = wilson_interval(k, len(test_idx), alpha)
        lexical = {"test_acc": k / len(test_idx), "test_ci_low": lo, "test_ci_high": hi}
    frame = pd.DataFrame(rows).set_index("layer", drop=False)
    frame.index.name = None
    return ProbeResult(frame=frame, train_idx=train_idx, test_idx=test_idx, probes=probes, lexical=lexical)
