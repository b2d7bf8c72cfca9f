"""Linear probes by layer with a held-out-source split, a shuffled-label control task
(selectivity, Hewitt & Liang 2019) and a bag-of-words lexical baseline."""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from plural_kit import stats, viz
from plural_kit.claims import Claim, Claims, claim_paired
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary, frame_summary


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


#: Default tolerance of :func:`group_split`: each side's share of positives is within this of the overall share.
BALANCE_TOL = 0.1


def group_split(y, groups, test_size: float = 0.3, seed: int = 0, max_tries: int = 200,
                balance_tol: float = BALANCE_TOL):
    """Split row indices so that no group (source) is in both splits, both splits hold both classes
    and each keeps the overall class balance.

    Seeded :class:`~sklearn.model_selection.GroupShuffleSplit` draws are tried in turn; the first
    whose train and test shares of positives are both within ``balance_tol`` of the overall share
    is returned as ``(train_idx, test_idx)``. When none is (one-class sources: three of eight
    sources cannot hold half the positives), seeded
    :class:`~sklearn.model_selection.StratifiedGroupKFold` folds of about ``test_size`` each are
    tried, and the balanced one whose size is nearest ``test_size`` is returned. Whole sources move
    together, so when nothing found is that balanced the most balanced split with both classes on
    each side is returned with a warning that names the shares (chance on the held-out side is then its majority rate,
    which :class:`ProbeResult` uses). Raises when the groups cannot give a split with both classes
    on each side (for example when one class comes from a single source).
    """
    y = check_binary_labels(y)
    groups = np.asarray(groups, dtype=object)
    if len(groups) != len(y):
        raise ValueError(f"groups has {len(groups)} entries for {len(y)} labels")
    if pd.isna(groups).any():
        raise ValueError("groups contains missing values: every row needs a source")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1); got {test_size}")
    if not (isinstance(balance_tol, (int, float)) and 0.0 <= balance_tol <= 1.0):
        raise ValueError(f"balance_tol must be a number in [0, 1]; got {balance_tol!r}")
    for c in (0, 1):
        n_src = len(set(groups[y == c]))
        if n_src < 2:
            raise ValueError(
                f"class {c} comes from {n_src} source(s); a held-out-source split needs at least 2 "
                "sources per class (pass finer `groups`)")
    overall = float(y.mean())

    def deviation(train, test) -> float:
        if len(set(y[train])) < 2 or len(set(y[test])) < 2:
            return np.inf
        return max(abs(y[train].mean() - overall), abs(y[test].mean() - overall))

    # 1. seeded shuffles of whole sources, the first balanced one (the split a balanced draw always gave)
    splitter = GroupShuffleSplit(n_splits=max_tries, test_size=test_size, random_state=seed)
    candidates = []
    for train, test in splitter.split(np.zeros(len(y)), y, groups):
        dev = deviation(train, test)
        if dev <= balance_tol + 1e-12:
            return np.sort(train), np.sort(test)
        candidates.append((dev, train, test))
    # 2. class-pure sources often make every shuffle unbalanced (3 of 8 one-class sources: 33% or 67%):
    # stratified group folds of about test_size each, the balanced fold nearest test_size
    k = max(2, round(1.0 / test_size))
    n_groups = len(set(groups))
    if n_groups >= k:
        for t in range(max(1, max_tries // k)):
            folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed + t).split(
                np.zeros(len(y)), y, groups)
            for train, test in folds:
                candidates.append((deviation(train, test), train, test))
    fine = [c for c in candidates if c[0] <= balance_tol + 1e-12]
    if fine:
        _, train, test = min(fine, key=lambda c: (abs(len(c[2]) / len(y) - test_size), c[0]))
        return np.sort(train), np.sort(test)
    usable = [c for c in candidates if np.isfinite(c[0])]
    if not usable:
        raise ValueError(f"no split of {n_groups} sources into train/test with both classes on each side "
                         f"in {max_tries} draws; change test_size or the groups")
    _, train, test = min(usable, key=lambda c: c[0])
    warnings.warn(
        f"group_split: no split of whole sources keeps the class balance within {balance_tol:g} "
        f"(overall {overall:.0%} positive); using the most balanced one found: train "
        f"{y[train].mean():.0%}, held-out {y[test].mean():.0%} positive (chance on the held-out side is "
        f"its majority rate); pass finer `groups` or a larger balance_tol", UserWarning, stacklevel=2)
    return np.sort(train), np.sort(test)


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


def cv_accuracy(X, y, *, groups=None, n_splits: int = 5, C: float = 1.0, seed: int = 0) -> float:
    """Mean cross-validated accuracy of a :class:`LinearProbe` on ``X`` (n, d), labels ``y`` (n,).

    With ``groups`` and at least ``n_splits`` groups per class the folds are grouped
    (:class:`~sklearn.model_selection.StratifiedGroupKFold`: no group on both sides of a fold),
    otherwise stratified by label only. ``n_splits`` is capped by the smaller class.
    """
    X, y = np.asarray(X, dtype=np.float64), check_binary_labels(y)
    k = int(min(n_splits, np.bincount(y, minlength=2).min()))
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 rows per class; got {np.bincount(y, minlength=2)}")
    g = None if groups is None else np.asarray(groups, dtype=object)
    if g is not None and min(len(set(g[y == c])) for c in (0, 1)) >= k:
        folds = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y, g)
    else:
        folds = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(X, y)
    accs = []
    for tr, te in folds:
        if len(set(y[tr])) < 2:
            continue
        accs.append(float((LinearProbe(C=C, random_state=seed).fit(X[tr], y[tr]).predict(X[te]) == y[te]).mean()))
    return float(np.mean(accs)) if accs else float("nan")


@dataclass(repr=False)
class ProbeResult(Result):
    """Per-layer probe accuracies (see :meth:`to_frame`), the split, the lexical baseline and the
    per-prompt correctness on the held-out rows (``test_correct[layer]``, ``control_correct[layer]``,
    ``lexical_correct``: arrays (n_test,) of 0/1) from which the claims are computed."""

    frame: pd.DataFrame
    train_idx: np.ndarray = field(repr=False)
    test_idx: np.ndarray = field(repr=False)
    probes: dict = field(repr=False, default_factory=dict)
    lexical: dict | None = None
    test_correct: dict = field(repr=False, default_factory=dict)
    control_correct: dict = field(repr=False, default_factory=dict)
    lexical_correct: np.ndarray | None = field(repr=False, default=None)
    chance: float = 0.5
    confidence: float = 0.95

    title = "linear probe by layer"

    def to_frame(self) -> pd.DataFrame:
        """One row per layer: training cross-validation accuracy (``cv_acc``), test accuracy with
        Wilson CI, control accuracies, selectivity with bootstrap CI."""
        return self.frame.copy()

    @property
    def best_layer(self) -> int:
        """Layer with the highest held-out task accuracy (earliest on ties). Chosen on the test
        set, so its accuracy is optimistic: claims use :meth:`selected_layer` instead."""
        return int(self.frame["test_acc"].idxmax())

    def selected_layer(self, layers: Sequence[int] | None = None) -> int:
        """Layer with the highest cross-validated accuracy on the *training* prompts (earliest on
        ties), among ``layers`` (default: all probed layers). The held-out prompts play no part."""
        f = self.frame if layers is None else self.frame.loc[[int(l) for l in layers]]
        if f.empty:
            raise ValueError("no candidate layers to select from")
        if f["cv_acc"].isna().all():
            raise ValueError("no cross-validated accuracy: the training split is too small")
        return int(f["cv_acc"].idxmax())

    def accuracy_claim(self, name: str, statement: str, layer: int | None = None) -> Claim:
        """Held-out accuracy at ``layer`` (default :meth:`selected_layer`) above chance (the test
        set's majority rate), Wilson interval over the held-out prompts."""
        layer = self.selected_layer() if layer is None else int(layer)
        correct = self.test_correct[layer]
        iv = stats.wilson_interval(int(correct.sum()), len(correct), confidence=self.confidence)
        return Claim.from_interval(name, statement, iv, quantity="held-out accuracy", threshold=self.chance,
                                   method=f"Wilson, {int(correct.sum())}/{len(correct)} held-out prompts",
                                   details={"layer": layer})

    def claims(self, prefix: str = "probe", what: str = "the label", *, layer: int | None = None,
               where: str = "at the layer chosen by cross-validation on the training prompts",
               layer0: bool = False, n_boot: int = 1000, seed: int = 0) -> Claims:
        """Three claims at ``layer`` (default :meth:`selected_layer`, chosen on the training prompts):

        * ``{prefix}_decodable``: held-out accuracy above chance (Wilson);
        * ``{prefix}_selective``: the probe beats its shuffled-label control task (selectivity,
          paired bootstrap over the held-out prompts);
        * ``{prefix}_beats_lexical``: the probe beats the bag-of-words baseline (paired bootstrap
          over the held-out prompts; only when the result has a lexical baseline).

        ``what`` names the property in the statements, e.g. ``"harmfulness"``; ``where`` says how
        the layer was chosen (pass it with ``layer``; no layer number: it goes in the details).
        ``layer0``: add the sanity check ``{prefix}_layer0_decodable`` (the embeddings at the last
        position, the same template token for every prompt, should not decode anything; needs
        layer 0 among the probed layers).
        """
        layer = self.selected_layer() if layer is None else int(layer)
        at = where
        out = [self.accuracy_claim(f"{prefix}_decodable",
                                   f"{what} is linearly decodable above chance on held-out prompts, {at}", layer)]
        correct = self.test_correct[layer]
        out.append(claim_paired(
            f"{prefix}_selective", f"the {what} probe beats its shuffled-label control task on held-out prompts, {at}",
            correct, self.control_correct[layer], quantity="selectivity", n_boot=n_boot, seed=seed,
            confidence=self.confidence, details={"layer": layer}))
        if self.lexical_correct is not None:
            out.append(claim_paired(
                f"{prefix}_beats_lexical",
                f"the {what} probe beats a bag-of-words classifier of the prompt text on the same held-out prompts, {at}",
                correct, self.lexical_correct, quantity="accuracy gain over bag-of-words", n_boot=n_boot,
                seed=seed, confidence=self.confidence,
                details={"layer": layer, "bag_of_words_acc": float(self.lexical_correct.mean())}))
        if layer0:
            if 0 not in self.test_correct:
                raise ValueError("layer0=True needs layer 0 among the probed layers")
            out.append(self.accuracy_claim(
                f"{prefix}_layer0_decodable", "the embeddings at the last position (layer 0, the same template "
                f"token for every prompt) decode {what} above chance", layer=0))
        return Claims(out)

    def summary(self) -> Summary:
        f = self.frame
        best = self.best_layer
        r = f.loc[best]
        notes = [
            f"{len(self.train_idx)} train / {len(self.test_idx)} held-out prompts, {len(f)} layers; "
            f"test_ci: {self.confidence:.0%} Wilson, selectivity_ci: {self.confidence:.0%} paired bootstrap",
            f"best held-out layer {best} (optimistic): accuracy {r.test_acc:.3f} "
            f"[{r.test_ci_low:.3f}, {r.test_ci_high:.3f}], control {r.control_test_acc:.3f}, "
            f"selectivity {r.selectivity:.3f}",
            f"layer chosen on the training prompts (cross-validation): {self.selected_layer()}",
            f"control task train accuracy (memorisation capacity): mean {f.control_train_acc.mean():.3f}",
        ]
        if self.lexical is not None:
            notes.append(f"lexical bag-of-words baseline on the same split: {self.lexical['test_acc']:.3f} "
                         f"[{self.lexical['test_ci_low']:.3f}, {self.lexical['test_ci_high']:.3f}]")
        cols = ["cv_acc", "test_acc", "test_ci_low", "test_ci_high", "control_train_acc", "control_test_acc",
                "selectivity"]
        return frame_summary(self.title, f[cols], notes)

    def to_dict(self) -> dict:
        """The per-layer table, the split sizes, the selected and best layers, the lexical baseline."""
        return jsonable({
            "table": self.frame.to_dict(orient="records"), "n_train": len(self.train_idx),
            "n_test": len(self.test_idx), "selected_layer": self.selected_layer(),
            "best_test_layer": self.best_layer, "chance": self.chance, "confidence": self.confidence,
            "lexical": self.lexical})

    def _repr_fields(self) -> dict:
        return {"layers": len(self.frame), "n_train": len(self.train_idx), "n_test": len(self.test_idx),
                "best_test_acc": float(self.frame["test_acc"].max())}

    def plot(self, ax=None):
        """Held-out accuracy by layer with its Wilson band, the control task (held-out and training),
        the bag-of-words baseline and chance (:func:`plural_kit.viz.curve`)."""
        f = self.frame
        series = {"probe, held-out": ("test_acc", True), "control task (shuffled labels), held-out":
                  ("control_test_acc", False), "control task, training set": ("control_train_acc", False)}
        long = pd.concat([pd.DataFrame({
            "layer": f["layer"].to_numpy(), "accuracy": f[col].to_numpy(), "series": name,
            "ci_low": f["test_ci_low"].to_numpy() if band else np.nan,
            "ci_high": f["test_ci_high"].to_numpy() if band else np.nan}) for name, (col, band) in series.items()],
            ignore_index=True)
        refs = {"bag-of-words baseline": self.lexical["test_acc"]} if self.lexical is not None else {}
        return viz.curve(long, x="layer", y="accuracy", hue="series", band=("ci_low", "ci_high"),
                         references={**refs, "chance": self.chance}, xlabel="layer (0 = embeddings)",
                         ylim=(0.0, 1.02), ax=ax,
                         title=f"linear probe by layer ({self.confidence:.0%} Wilson band)")


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
    confidence: float = 0.95,
    cv_folds: int = 5,
) -> ProbeResult:
    """Fit a :class:`LinearProbe` and a control probe at every layer, evaluate on held-out sources.

    activations: ``{layer: array (n, d)}``, rows aligned with ``y`` (0/1) and ``groups`` (sources).
    The split is :func:`group_split` on ``groups`` after dropping duplicate ``texts`` (when given),
    or the explicit ``train_idx``/``test_idx``, which must not share a prompt or a group.
    The control task relabels the rows with :func:`control_labels` within each split; selectivity = task accuracy -
    control accuracy on the held-out rows. With ``texts`` a bag-of-words baseline uses the same split.
    ``cv_acc`` is :func:`cv_accuracy` on the training rows only (``cv_folds`` folds, grouped by
    ``groups`` where each class has enough of them): :meth:`ProbeResult.selected_layer` picks the
    layer with it, so the held-out rows never choose the layer they are scored on.
    Intervals (``test_ci_*``: Wilson; ``selectivity_ci_*``: paired bootstrap over the held-out
    prompts, ``n_boot`` resamples) are at level ``confidence``.
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
    rows, probes, test_correct, control_correct = [], {}, {}, {}
    g_train = None if groups is None else np.asarray(groups, dtype=object)[train_idx]
    for layer in layers:
        X = np.asarray(activations[layer])
        task = LinearProbe(C=C, random_state=seed).fit(X[train_idx], y[train_idx])
        ctrl = LinearProbe(C=C, random_state=seed).fit(X[train_idx], y_ctrl[train_idx])
        correct = (task.predict(X[test_idx]) == y[test_idx]).astype(float)
        ctrl_correct = (ctrl.predict(X[test_idx]) == y_ctrl[test_idx]).astype(float)
        acc = stats.wilson_interval(int(correct.sum()), len(correct), confidence=confidence)
        sel = stats.paired_difference(correct, ctrl_correct, confidence=confidence, n_boot=n_boot, seed=seed)
        cv = (cv_accuracy(X[train_idx], y[train_idx], groups=g_train, n_splits=cv_folds, C=C, seed=seed)
              if np.bincount(y[train_idx], minlength=2).min() >= 2 else float("nan"))
        rows.append({
            "layer": layer, "cv_acc": cv,
            "train_acc": accuracy_score(y[train_idx], task.predict(X[train_idx])),
            "test_acc": correct.mean(), "test_ci_low": acc.ci_low, "test_ci_high": acc.ci_high,
            "control_train_acc": accuracy_score(y_ctrl[train_idx], ctrl.predict(X[train_idx])),
            "control_test_acc": ctrl_correct.mean(),
            "selectivity": correct.mean() - ctrl_correct.mean(),
            "selectivity_ci_low": sel.ci_low, "selectivity_ci_high": sel.ci_high,
        })
        probes[layer], test_correct[layer], control_correct[layer] = task, correct, ctrl_correct
    lexical, lexical_correct = None, None
    if texts is not None:
        pred = lexical_baseline(texts, y, train_idx, test_idx, C=C)
        lexical_correct = (pred == y[test_idx]).astype(float)
        iv = stats.wilson_interval(int(lexical_correct.sum()), len(test_idx), confidence=confidence)
        lexical = {"test_acc": iv.estimate, "test_ci_low": iv.ci_low, "test_ci_high": iv.ci_high}
    frame = pd.DataFrame(rows).set_index("layer", drop=False)
    frame.index.name = None
    share = float(y[test_idx].mean())
    return ProbeResult(frame=frame, train_idx=train_idx, test_idx=test_idx, probes=probes, lexical=lexical,
                       test_correct=test_correct, control_correct=control_correct,
                       lexical_correct=lexical_correct, chance=max(share, 1 - share), confidence=confidence)
