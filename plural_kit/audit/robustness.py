"""Is an audit's conclusion the model's position or the prompt design's? The robustness protocol.

The same items are asked under design variants — option order (original, reversed, seeded
random permutations, each truly applied and mapped back), label style (``A.``/``1.``),
response format (label first vs ``Answer:`` pre-filled), chat template on/off, paraphrased
instruction — and the report separates the two sources of variation:

- per-variant scores (mean expected rating per item group, e.g. MFQ-2 foundation);
- the spread of each score across variants beside the spread between countries' humans;
- a permutation test per design factor (labels shuffled within item × other-factor strata);
- a statsmodels OLS/ANOVA of the item score on ``C(item)`` + the design factors, with each
  term's share of the variance (the item term is the model's position, the rest is design);
- the probability by displayed position and the correlation between original- and
  reversed-order answers (≈ −1 when the model just picks a position).

The conclusions are claims with intervals (:meth:`RobustnessResult.claims`): the design moves
the scores more than the countries differ; the design explains more of the item scores than the
items do. :meth:`RobustnessResult.verdict` says what survives: the findings about the model
(a foundation above or below the average country, the nearest country) that hold in *every*
variant, and none at all when the signal check does not hold.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plural_kit.audit.distributions import (
    AnswerDistributions,
    MultipleChoiceItem,
    PromptDesign,
    answer_distributions,
)
from plural_kit import stats, viz
from plural_kit.audit._summary import sections_summary
from plural_kit.audit.distributions import AnswerScorer
from plural_kit.audit.metrics import AuditInputError
from plural_kit.claims import Claim, Claims, claim_mean
from plural_kit.engine import Engine
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary, frame_summary

__all__ = ["RobustnessResult", "Verdict", "design_variants", "factor_permutation_test", "robustness_audit"]

FACTORS = ("order", "labels", "response", "chat_template", "instruction")


def design_variants(base: PromptDesign = PromptDesign(), *, orders: Sequence[str] = ("original", "reversed"),
                    n_random_orders: int = 0, labels: Sequence[str] = ("letters", "numbers"),
                    responses: Sequence[str] = ("label", "answer_prefix"), chat_template: Sequence[bool] = (True, False),
                    instructions: Mapping[str, str] | None = None, cross_orders: bool = False,
                    max_variants: int | None = None) -> list[PromptDesign]:
    """The design variants of the protocol, one factor changed at a time from ``base``.

    Every order in ``orders`` plus ``random0..random{n_random_orders-1}`` is applied to
    ``base``; each other level (label style, response format, chat template, each
    ``instructions`` entry ``name -> template``) is applied to ``base`` in the original order,
    or in every order when ``cross_orders``. ``max_variants`` keeps the first ones (orders
    come first). Returns unique designs.
    """
    all_orders = list(orders) + [f"random{k}" for k in range(n_random_orders)]
    if not all_orders:
        raise AuditInputError("at least one option order is needed")
    out = [base.with_(order=o) for o in all_orders]
    others = ([{"labels": v} for v in labels if v != base.labels]
              + [{"response": v} for v in responses if v != base.response]
              + [{"chat_template": v} for v in chat_template if v != base.chat_template]
              + [{"instruction": t, "instruction_name": n} for n, t in (instructions or {}).items()
                 if t != base.instruction])
    for change in others:
        for o in (all_orders if cross_orders else [base.order]):
            out.append(base.with_(order=o, **change))
    unique = list(dict.fromkeys(out))
    return unique[:max_variants] if max_variants else unique


def factor_permutation_test(frame: pd.DataFrame, factor: str, *, value: str = "expected",
                            strata: Sequence[str] = (), n_resamples: int = 999, seed: int = 0) -> tuple[float, float]:
    """``(statistic, p_value)``: does the design ``factor`` (a column of ``frame``) move ``value``?

    (Not :func:`plural_kit.stats.permutation_test`, which compares two samples: this one shuffles a
    factor's labels within strata of a long table.)

    Statistic: the variance across the factor's levels of the mean ``value`` per level, over
    rows in strata (``strata`` columns) where the factor varies. Null: within each stratum
    the factor's labels are exchangeable; they are shuffled ``n_resamples`` times.
    p = (1 + #{perm ≥ observed}) / (1 + n_resamples). NaN when the factor never varies.
    """
    df = frame[list(strata) + [factor, value]].copy()
    key = df[list(strata)].astype(str).agg("|".join, axis=1) if strata else pd.Series("all", index=df.index)
    varies = df.groupby(key)[factor].transform("nunique") > 1
    df, key = df[varies], key[varies]
    if df.empty:
        return float("nan"), float("nan")
    levels, codes = np.unique(df[factor].astype(str).to_numpy(), return_inverse=True)
    y = df[value].to_numpy(dtype=float)
    strat = pd.factorize(key)[0]

    def stat(c: np.ndarray) -> float:
        means = np.bincount(c, weights=y, minlength=len(levels)) / np.bincount(c, minlength=len(levels))
        return float(np.var(means))

    observed = stat(codes)
    rng = np.random.default_rng(seed)
    stable = np.argsort(strat, kind="stable")
    count = 0
    for _ in range(n_resamples):
        shuffled = np.lexsort((rng.random(len(y)), strat))
        perm = np.empty_like(codes)
        perm[stable] = codes[shuffled]
        count += stat(perm) >= observed - 1e-12
    return observed, (1 + count) / (1 + n_resamples)


@dataclass(repr=False)
class RobustnessResult(Result):
    """Results of :func:`robustness_audit`.

    ``item_scores``: one row per (variant, item) with the design factors, ``expected``,
    ``on_option_mass``, ``top_position``; ``scores``: variants × groups (mean expected
    rating); ``position``: variants × positions (mean probability by displayed position);
    ``spread``: per group, the range/SD across variants and, with a reference, across
    countries' humans; ``permutation``: per factor, statistic and p-value; ``anova``: the
    statsmodels type-II ANOVA table with ``share`` (sum of squares / total);
    ``order_correlation``: Pearson r of item scores between the original and reversed order
    (NaN when not both run); ``nearest``: per variant, the nearest reference country (when a
    reference is given); ``reference``: that reference (countries × groups of human means).
    """

    item_scores: pd.DataFrame
    scores: pd.DataFrame
    position: pd.DataFrame
    spread: pd.DataFrame
    permutation: pd.DataFrame
    anova: pd.DataFrame
    order_correlation: float
    nearest: pd.Series | None = None
    reference: pd.DataFrame | None = None

    title = "Robustness protocol"

    def to_frame(self) -> pd.DataFrame:
        """Per-variant scores with the design factors, mean on-option mass and position-0 probability (new)."""
        fac = self.item_scores.groupby("variant")[list(FACTORS) + ["on_option_mass"]].agg(
            {**{f: "first" for f in FACTORS}, "on_option_mass": "mean"})
        out = fac.loc[self.scores.index].join(self.scores).join(self.position[["pos_0"]])
        if self.nearest is not None:
            out["nearest_country"] = self.nearest
        return out

    def design_share(self) -> float:
        """Share of the item-score variance explained by the design factors (ANOVA)."""
        terms = [t for t in self.anova.index if t not in ("C(item)", "Residual")]
        return float(self.anova.loc[terms, "share"].sum()) if terms else 0.0

    def _matrix(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``(x, groups, variants)``: item scores (n_variants, n_items), the items' groups (n_items,)."""
        wide = self.item_scores.pivot_table(index="variant", columns="item", values="expected", aggfunc="mean")
        wide = wide.loc[self.scores.index]
        group_of = self.item_scores.drop_duplicates("item").set_index("item")["group"]
        return wide.to_numpy(), group_of.loc[wide.columns].to_numpy(), list(wide.index)

    def spread_claim(self, *, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0,
                     name: str = "design_moves_more_than_countries") -> Claim:
        """The design moves the scores more than the countries differ.

        Quantity: mean over groups of the SD of the group score across design variants, divided
        by the mean over groups of the SD of the countries' human means (> 1: the design moves a
        score more than the countries differ on it). Bootstrap CI: items resampled within each
        group (the same items for every variant) and countries resampled, in the same rounds.
        Needs a reference.
        """
        if self.reference is None:
            raise AuditInputError("spread_claim needs the reference (countries x groups) given to robustness_audit")
        x, groups, _ = self._matrix()
        ref = self.reference[list(self.scores.columns)].to_numpy()            # (C, G)
        masks = [groups == g for g in self.scores.columns]

        def ratio(items: np.ndarray, countries: np.ndarray) -> float:
            design = np.stack([x[:, items][:, m].mean(axis=1) for m in masks], axis=1)    # (V, G)
            human_sd = ref[countries].std(axis=0, ddof=1).mean()
            return design.std(axis=0, ddof=1).mean() / human_sd if human_sd > 0 else np.nan  # one country: no SD

        iv = stats.stratified_bootstrap((groups, len(ref)), ratio, confidence=confidence, n_boot=n_boot, seed=seed)
        return Claim.from_interval(
            name, "on average over the foundations, the design (option order, labels, format, template, wording) "
                  "moves the scores more than the countries differ", iv,
            quantity="design SD / between-country SD", threshold=1.0, side="greater",
            method=f"bootstrap over {x.shape[1]} items within groups and {len(ref)} countries; {x.shape[0]} variants",
            details={"groups whose design range exceeds the countries' range":
                     int((self.spread["ratio"] > 1).sum()) if "ratio" in self.spread else "n/a"})

    def share_claim(self, *, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0,
                    name: str = "design_explains_more_than_items") -> Claim:
        """The design factors explain more of the item-score variance than the items themselves.

        Quantity: (design factors' share − item share) of the type-II sums of squares of the
        ANOVA ``expected ~ C(item) + design factors``; bootstrap CI over items (each resampled item
        keeps all its variants; a repeated item counts as a new one).
        """
        factors = [t[2:-1] for t in self.anova.index if t not in ("C(item)", "Residual")]
        df = self.item_scores
        items = df["item"].unique()
        rows = {it: np.flatnonzero(df["item"].to_numpy() == it) for it in items}
        codes = {f: pd.factorize(df[f])[0] for f in factors}
        y_all = df["expected"].to_numpy(dtype=float)

        def shares(picked: np.ndarray) -> float:
            idx = np.concatenate([rows[items[i]] for i in picked])
            item_code = np.concatenate([np.full(len(rows[items[i]]), k) for k, i in enumerate(picked)])
            return _share_gap(y_all[idx], item_code, [codes[f][idx] for f in factors])

        iv = stats.stratified_bootstrap(len(items), shares, confidence=confidence, n_boot=n_boot, seed=seed)
        return Claim.from_interval(
            name, "the design factors explain more of the variance of the item scores than the items do", iv,
            quantity="design share - item share", threshold=0.0, side="greater",
            method=f"bootstrap over {len(items)} items",
            details={"design share": self.design_share(), "item share": float(self.anova.loc["C(item)", "share"])})

    def claims(self, *, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """:meth:`spread_claim` (when there is a reference) and :meth:`share_claim`."""
        kw = dict(confidence=confidence, n_boot=n_boot, seed=seed)
        out = [self.spread_claim(**kw)] if self.reference is not None else []
        return Claims(out + [self.share_claim(**kw)])

    def verdict(self, signal: Claim | bool, *, confidence: float = 0.95, n_boot: int = 1000,
                seed: int = 0) -> Verdict:
        """What survives every design variant.

        Candidate findings: each group's score above (or below) the average country (side from the
        variant-averaged score), and the nearest country. A finding is *stable* when it holds in
        every variant: the group's item scores minus the countries' average, bootstrap CI over its
        items, on the same side; the nearest country the same in every variant and ahead of the
        runner-up (items resampled within groups). It *survives* only when it is stable and
        ``signal`` (the signal check, a claim or a bool) holds: otherwise nothing survives.
        """
        if self.reference is None:
            raise AuditInputError("verdict needs the reference (countries x groups) given to robustness_audit")
        signal_holds = signal.holds if isinstance(signal, Claim) else bool(signal)
        x, groups, variants = self._matrix()
        ref = self.reference[list(self.scores.columns)]
        grand = ref.mean()
        stable = []
        for g in self.scores.columns:
            dev = x[:, groups == g] - grand[g]                                  # (V, n_items of g)
            side = "above" if dev.mean() > 0 else "below"
            outcomes = [claim_mean("g", g, d, side="greater" if side == "above" else "less",
                                   confidence=confidence, n_boot=n_boot, seed=seed).holds for d in dev]
            if all(outcomes):
                stable.append(f"{g} is {side} the average country")
        r = ref.to_numpy()
        masks = [groups == g for g in self.scores.columns]
        nearest, ahead = [], []
        for v in range(len(variants)):
            def distances(items: np.ndarray, v: int = v) -> np.ndarray:  # (C,)
                return np.abs(r - np.array([x[v, items][m].mean() for m in masks])).mean(axis=1)

            d, boot = stats.bootstrap_replicates(groups, distances, n_boot=n_boot, seed=seed)   # (C,), (n_boot, C)
            first, second = np.argsort(d, kind="stable")[:2]
            nearest.append(ref.index[first])
            gap = stats.percentile_interval(d[second] - d[first], boot[:, second] - boot[:, first],
                                            confidence=confidence)
            ahead.append(bool(gap.ci_low > 0))
        if len(set(nearest)) == 1 and all(ahead):
            stable.append(f"the nearest country is {nearest[0]}")
        return Verdict(signal_holds, stable)

    def summary(self) -> Summary:
        """A report: spread vs humans, tests, ANOVA shares, per-variant nearest country."""
        notes = [f"correlation of item scores, original vs reversed order: {self.order_correlation:.2f}",
                 "mean probability on the first-listed option: "
                 f"{self.position['pos_0'].min():.2f}-{self.position['pos_0'].max():.2f} across variants",
                 f"Variance share: items (the model's position) {self.anova.loc['C(item)', 'share']:.2f}, "
                 f"design factors {self.design_share():.2f}"]
        if self.nearest is not None:
            counts = self.nearest.value_counts()
            notes.append(f"In this run (point estimates, not a finding), nearest country per variant: {counts.to_dict()}")
        if "ratio" in self.spread:
            bad = self.spread.index[self.spread["ratio"] > 1].tolist()
            notes.append("In this run (point estimates, not a finding), scores whose design range exceeds the "
                         f"between-country range: {bad or 'none'}")
        return sections_summary(
            f"Robustness protocol: {self.scores.shape[0]} design variants x {self.item_scores['item'].nunique()} items",
            [("Spread of each score across variants vs between countries' humans:", self.spread),
             ("Permutation tests (does the factor move the item scores?):", self.permutation),
             ("ANOVA of item score on item + design factors:", self.anova)], notes)

    def to_dict(self) -> dict:
        """The variants, their scores, spread, permutation p-values, ANOVA shares, nearest country."""
        return jsonable({
            "variants": list(self.scores.index), "scores": self.scores.to_dict(orient="index"),
            "spread": self.spread.to_dict(orient="index"), "permutation_p": self.permutation["p_value"].to_dict(),
            "design_share": self.design_share(), "item_share": float(self.anova.loc["C(item)", "share"]),
            "order_correlation": self.order_correlation,
            "nearest": None if self.nearest is None else self.nearest.to_dict()})

    def _repr_fields(self) -> dict:
        return {"variants": self.scores.shape[0], "items": self.item_scores["item"].nunique(),
                "design_share": self.design_share(), "order_correlation": self.order_correlation}

    def plot(self, ax=None, title: str = "Model score per design variant", ylim: tuple[float, float] | None = None):
        """Each group's score in every variant (groups in item order) over the range of the reference
        countries' means; ``ylim``: the score scale, e.g. ``(1, 5)``."""
        long = self.scores.reset_index().melt(id_vars="variant", var_name="group", value_name="score")
        bands = None
        if self.reference is not None:
            bands = {g: (self.reference[g].min(), self.reference[g].max()) for g in self.scores.columns}
            title += " (band: range of the country means)"
        return viz.strip(long, x="group", y="score", hue="variant", order=list(dict.fromkeys(self.item_scores["group"])),
                         bands=bands, ylim=ylim, ylabel="score", title=title, ax=ax)

    def plot_position(self, ax=None):
        """Heatmap of the mean probability on each displayed position, per variant."""
        ax = viz.heatmap(self.position, cmap="rocket_r", title="Mean probability by displayed position", ax=ax)
        ax.set_xlabel("position")
        ax.tick_params(axis="y", labelsize=7)
        return ax

    def plot_all(self, ylim: tuple[float, float] | None = None, figsize: tuple[float, float] = (10, 9)) -> np.ndarray:
        """:meth:`plot` (``ylim``: the score scale) above :meth:`plot_position`; returns the (2,) axes."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 1, figsize=figsize)
        self.plot(ax=axes[0], ylim=ylim)
        self.plot_position(ax=axes[1])
        fig.tight_layout()
        return axes


def _item_frame(results: Sequence[AnswerDistributions]) -> pd.DataFrame:
    frames = []
    for res in results:
        df = res.to_frame()
        df["variant"] = res.design.name
        for f, v in res.design.factors().items():
            df[f] = v
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    out["group"] = out["group"].fillna("all")
    return out


def robustness_audit(engine: Engine | AnswerScorer, items: Sequence[MultipleChoiceItem],
                     designs: Sequence[PromptDesign], *, reference: pd.DataFrame | None = None,
                     precomputed: Sequence[AnswerDistributions] = (), n_resamples: int = 999,
                     seed: int = 0) -> RobustnessResult:
    """Run ``items`` under every design and report how much the conclusion moves.

    ``engine``: an Engine or an :class:`~plural_kit.audit.distributions.AnswerScorer`;
    ``designs``: e.g. from :func:`design_variants` (unique names); ``reference``: countries ×
    groups of human mean scores (e.g. MFQ-2 foundation means by country) for the spread
    comparison and the nearest country; ``precomputed``: distributions already computed for
    some designs (reused, not re-run).
    """
    designs = list(designs)
    names = [d.name for d in designs]
    if len(set(names)) != len(names):
        raise AuditInputError(f"design variants must be unique, got duplicates in {names}")
    if len(designs) < 2:
        raise AuditInputError("the robustness protocol needs at least two design variants")
    cached = {r.design.name: r for r in precomputed}
    items = list(items)
    results = []
    for d in designs:
        r = cached.get(d.name)
        if r is None or [it.id for it in r.items] != [it.id for it in items]:
            r = answer_distributions(engine, items, d)
        results.append(r)
    item_scores = _item_frame(results)

    scores = item_scores.pivot_table(index="variant", columns="group", values="expected", aggfunc="mean")
    scores = scores.loc[names]
    k = results[0].position_probs.shape[1]
    position = pd.DataFrame([r.position_probs.mean(axis=0) for r in results], index=names,
                            columns=[f"pos_{j}" for j in range(k)])

    spread = pd.DataFrame({"variant_range": scores.max() - scores.min(), "variant_sd": scores.std(ddof=1)})
    nearest = None
    if reference is not None:
        missing = [g for g in scores.columns if g not in reference.columns]
        if missing:
            raise AuditInputError(f"reference lacks the score columns {missing}")
        ref = reference[list(scores.columns)]
        spread["human_range"] = ref.max() - ref.min()
        spread["human_sd"] = ref.std(ddof=1)
        spread["ratio"] = spread["variant_range"] / spread["human_range"]
        dist = {v: (ref - scores.loc[v]).abs().mean(axis=1) for v in names}
        nearest = pd.Series({v: d.idxmin() for v, d in dist.items()}, name="nearest_country")

    varying = [f for f in FACTORS if item_scores[f].nunique() > 1]
    perm_rows = {}
    for f in varying:
        strata = ["item"] + [g for g in varying if g != f]
        s, p = factor_permutation_test(item_scores, f, strata=strata, n_resamples=n_resamples, seed=seed)
        perm_rows[f] = {"statistic": s, "p_value": p, "levels": item_scores[f].nunique()}
    permutation = pd.DataFrame.from_dict(perm_rows, orient="index",
                                         columns=["statistic", "p_value", "levels"])

    anova = _anova(item_scores, varying)
    corr = _order_correlation(results)
    return RobustnessResult(item_scores, scores, position, spread, permutation, anova, corr, nearest,
                            None if reference is None else reference[list(scores.columns)])


def _anova(item_scores: pd.DataFrame, factors: Sequence[str]) -> pd.DataFrame:
    import statsmodels.formula.api as smf
    from statsmodels.stats.anova import anova_lm

    formula = "expected ~ C(item)" + "".join(f" + C({f})" for f in factors)
    fit = smf.ols(formula, data=item_scores).fit()
    table = anova_lm(fit, typ=2)
    table["share"] = table["sum_sq"] / table["sum_sq"].sum()
    return table


def _order_correlation(results: Sequence[AnswerDistributions]) -> float:
    by_name = {r.design.name: r for r in results}
    for r in results:
        if r.design.order == "original":
            rev = by_name.get(r.design.with_(order="reversed").name)
            if rev is not None:
                a, b = r.expected(), rev.expected()
                if np.std(a) > 0 and np.std(b) > 0:
                    return float(np.corrcoef(a, b)[0, 1])
    return float("nan")


def _ssr(y: np.ndarray, blocks: Sequence[np.ndarray]) -> float:
    """Residual sum of squares of y on an intercept and dummy codes of each block (drop-first)."""
    cols = [np.ones((len(y), 1))]
    for c in blocks:
        levels = np.unique(c)
        if len(levels) > 1:
            cols.append((c[:, None] == levels[None, 1:]).astype(float))
    xm = np.hstack(cols)
    beta, *_ = np.linalg.lstsq(xm, y, rcond=None)
    r = y - xm @ beta
    return float(r @ r)


def _share_gap(y: np.ndarray, item: np.ndarray, factors: Sequence[np.ndarray]) -> float:
    """(sum of the factors' type-II SS − the item's type-II SS) / total of the type-II table.

    Main effects only, so each term's type-II SS is SSR(without the term) − SSR(full), as in
    statsmodels' ``anova_lm(typ=2)``; the total is the sum of those SS plus the residual SS.
    """
    blocks = [item, *factors]
    full = _ssr(y, blocks)
    ss = [_ssr(y, blocks[:i] + blocks[i + 1:]) - full for i in range(len(blocks))]
    total = sum(ss) + full
    return (sum(ss[1:]) - ss[0]) / total if total > 0 else 0.0


@dataclass(repr=False)
class Verdict(Result):
    """What survives the robustness protocol (:meth:`RobustnessResult.verdict`).

    ``survives``: the findings that hold in every design variant, empty unless the signal check
    holds; ``stable``: the findings that hold in every variant regardless of the signal check
    (when it fails they describe the prompt design, not the model's values).
    """

    signal_holds: bool
    stable: list[str]

    @property
    def survives(self) -> list[str]:
        return self.stable if self.signal_holds else []

    def line(self) -> str:
        """One line without numbers: what survives, and why nothing does when the signal check fails."""
        if not self.signal_holds:
            return ("what survives every design variant: NOTHING — the signal check does not hold, so no finding "
                    "is evidence about the model's values")
        return "what survives every design variant: " + ("; ".join(self.survives) if self.survives else "NOTHING")

    def to_frame(self) -> pd.DataFrame:
        """One row per finding stable across variants, with whether it survives (a new frame)."""
        return pd.DataFrame({"finding": list(self.stable), "survives": [self.signal_holds] * len(self.stable)},
                            columns=["finding", "survives"])

    def summary(self) -> Summary:
        return frame_summary("Findings stable across every design variant", self.to_frame(), self.line())

    def to_dict(self) -> dict:
        return {"signal_holds": bool(self.signal_holds), "survives": list(self.survives),
                "stable_across_variants": list(self.stable)}

    def _repr_fields(self) -> dict:
        return {"signal_holds": self.signal_holds, "stable": len(self.stable), "survives": len(self.survives)}

    def __str__(self) -> str:
        return self.line()
