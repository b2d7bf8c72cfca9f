"""Steering to a country: asked to answer as someone from country X, does the model move toward X's people?

The baseline is a neutral persona ("You are a person.") with the same prompt in every other
respect, not the model's default system prompt: a persona of any kind changes how a small
model answers, and only the country's name should differ. Per country we compare the distance
from the model's foundation profile to that country's human mean profile under the neutral and
the country persona; ``delta = d_neutral − d_country`` (> 0: moved toward), with a bootstrap CI
over (item, option order) answers, resampled within each foundation, the same resample for every
persona. Each order counts as its own answer: a persona effect that is the small difference of
two large, opposite effects in the two orders (as for a model that answers by position) is not
mistaken for a precise one.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plural_kit import stats, viz
from plural_kit.audit.distributions import AnswerScorer, MultipleChoiceItem, PromptDesign, answer_distributions
from plural_kit.audit.metrics import MFQ_SCALE, AuditInputError, check_scores
from plural_kit.claims import Claim, Claims
from plural_kit.engine import Engine
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary, frame_summary

__all__ = ["NEUTRAL_PERSONA", "COUNTRY_PERSONA", "SteeringResult", "steering_audit", "steering_from_scores"]

NEUTRAL_PERSONA = "You are a person."
COUNTRY_PERSONA = "You are a person from {country}."


@dataclass(repr=False)
class SteeringResult(Result):
    """Result of :func:`steering_audit`.

    ``table``: per country ``d_neutral``, ``d_steered`` (mean |model − human mean| over
    groups, rating points), ``delta`` and its CI (``ci_low``, ``ci_high``), ``moved_toward``
    (CI above 0), ``rank_neutral``/``rank_steered`` (rank of the country among all reference
    countries by distance, 1 = nearest); ``profiles``: personas × groups (model scores);
    ``item_scores``: per (item, order) answer (rows ``"<item id>|<order>"``) and persona, the expected
    rating; ``delta_boot``:
    (n_boot, countries) bootstrap replicates of ``delta`` (the same item resamples for every
    country).
    """

    table: pd.DataFrame
    profiles: pd.DataFrame
    item_scores: pd.DataFrame
    delta_boot: pd.DataFrame | None = None
    confidence: float = 0.95

    @property
    def n_moved(self) -> int:
        return int(self.table["moved_toward"].sum())

    def to_frame(self) -> pd.DataFrame:
        """Per country (a copy): distances neutral and steered, delta with its interval, ranks."""
        return self.table.copy()

    def _boot(self) -> pd.DataFrame:
        if self.delta_boot is None:
            raise AuditInputError("this SteeringResult has no bootstrap replicates (delta_boot)")
        return self.delta_boot

    def pooled_claim(self, name: str = "steering_moves_toward_country") -> Claim:
        """Asked to answer as someone from a country, the model moves toward that country's
        people, on average over the countries asked: mean ``delta`` over countries (rating
        points), bootstrap CI over answers (resampled within groups, the same for every country)."""
        iv = stats.percentile_interval(self.table["delta"].mean(), self._boot().to_numpy().mean(axis=1),
                                       confidence=self.confidence)
        return Claim.from_interval(
            name, "asked to answer as someone from a country, the model moves toward that country's people "
                  "(on average over the countries asked)", iv, quantity="mean distance reduction (points)",
            threshold=0.0, side="greater",
            method=f"bootstrap over {len(self.item_scores)} answers within groups; {len(self.table)} countries",
            details={"countries whose own interval is above 0": self.n_moved})

    def country_claim(self, country: str, name: str | None = None) -> Claim:
        """The same for one country: its ``delta`` with the bootstrap CI over answers."""
        if country not in self.table.index:
            raise AuditInputError(f"{country!r} was not steered to; countries: {list(self.table.index)}")
        r = self.table.loc[country]
        slug = "".join(ch if ch.isalnum() else "_" for ch in country.lower()).strip("_")
        return Claim(name or f"steering_moves_{slug}",
                     f"asked to answer as someone from {country}, the model moves toward {country}'s people",
                     "distance reduction (points)", float(r["delta"]), float(r["ci_low"]), float(r["ci_high"]),
                     threshold=0.0, side="greater", confidence=self.confidence, method=f"bootstrap over {len(self.item_scores)} answers within groups",
                     details={"rank neutral": int(r["rank_neutral"]), "rank steered": int(r["rank_steered"])})

    def claims(self, per_country: bool = False) -> Claims:
        """:meth:`pooled_claim`, and :meth:`country_claim` for every country when ``per_country``."""
        out = [self.pooled_claim()]
        if per_country:
            out += [self.country_claim(c) for c in self.table.index]
        return Claims(out)

    def summary(self) -> Summary:
        return frame_summary(
            f"Steering vs the neutral persona {NEUTRAL_PERSONA!r}: distance to each country's people, neutral and "
            f"steered; delta = reduction with its {self.confidence:.0%} CI (evidence; the conclusion is the steering "
            "claim)", self.table[["d_neutral", "d_steered", "delta", "ci_low", "ci_high", "rank_neutral",
                                  "rank_steered"]], float_digits=2)

    def to_dict(self) -> dict:
        return jsonable({"countries": list(self.table.index), "n_moved": self.n_moved,
                         "table": self.table.to_dict(orient="index"), "claims": self.claims().to_dict()})

    def _repr_fields(self) -> dict:
        return {"countries": len(self.table), "n_moved": self.n_moved,
                "mean_delta": float(self.table["delta"].mean())}

    def plot(self, ax=None, title: str = "Steering toward each country"):
        """Per country an arrow from the neutral to the steered distance (green: moved toward it)."""
        return viz.arrows(self.table, start="d_neutral", end="d_steered", good="moved_toward",
                          labels={"d_neutral": "neutral persona", "d_steered": "'a person from <country>'"},
                          xlabel="distance to the country's people (points)", title=title, ax=ax)


def steering_audit(engine: Engine | AnswerScorer, items: Sequence[MultipleChoiceItem], countries: Sequence[str], reference: pd.DataFrame, *,
                   design: PromptDesign = PromptDesign(), orders: Sequence[str] = ("original", "reversed"),
                   neutral: str = NEUTRAL_PERSONA, persona: str = COUNTRY_PERSONA, confidence: float = 0.95,
                   n_boot: int = 1000, seed: int = 0, neutral_results=None) -> SteeringResult:
    """Ask ``items`` as the neutral persona and as someone from each of ``countries``.

    ``reference``: countries × groups of human mean scores (e.g. :func:`plural_kit.audit.mfq.human_means`);
    every country asked must be a row. Each persona is asked in every order of ``orders``
    (scores averaged). ``neutral_results``: already computed neutral-persona distributions to reuse.
    """
    items = list(items)
    countries = list(countries)
    if not countries:
        raise AuditInputError("no countries to steer to")
    unknown = [c for c in countries if c not in reference.index]
    if unknown:
        raise AuditInputError(f"countries {unknown} are not in the reference (have {list(reference.index)})")
    if "{country}" not in persona:
        raise AuditInputError("persona must contain the placeholder {country}")
    groups = list(dict.fromkeys(it.group for it in items))
    missing = [g for g in groups if g not in reference.columns]
    if missing:
        raise AuditInputError(f"reference lacks the groups {missing}")
    ref = reference[groups]

    def ask(system: str):
        return [answer_distributions(engine, items, design.with_(system=system, order=o)) for o in orders]

    personas = {"neutral": neutral_results or ask(neutral)}
    for c in countries:
        personas[c] = ask(persona.format(country=c))
    # one row per (item, order): the unit the bootstrap resamples (balanced, so group means are order-averaged)
    item_scores = pd.DataFrame({p: np.concatenate([r.expected() for r in res]) for p, res in personas.items()},
                               index=[f"{it.id}|{o}" for o in orders for it in items])
    values = np.concatenate([it.ordinal for it in items])
    return steering_from_scores(item_scores, [it.group for _ in orders for it in items], ref,
                                confidence=confidence, n_boot=n_boot, seed=seed,
                                scale=(float(values.min()), float(values.max())))


def steering_from_scores(item_scores: pd.DataFrame, groups: Sequence[str], reference: pd.DataFrame, *,
                         confidence: float = 0.95, n_boot: int = 1000, seed: int = 0,
                         scale: tuple[float, float] | None = MFQ_SCALE) -> SteeringResult:
    """The statistics of :func:`steering_audit` from item scores already computed.

    ``item_scores``: answers × personas (a ``"neutral"`` column and one column per country, the
    expected rating of each answer, e.g. one row per item and option order); ``groups``: each
    row's group (n_rows,); ``reference``: countries × groups of human means; ``scale``: the rating
    scale every item score and human mean must lie on (default the MFQ-2 1–5 ratings; ``None``: any
    finite number). The bootstrap resamples rows within groups.
    """
    if "neutral" not in item_scores.columns:
        raise AuditInputError("item_scores needs a 'neutral' column")
    if item_scores.empty:
        raise AuditInputError("item_scores has no rows")
    countries = [c for c in item_scores.columns if c != "neutral"]
    if not countries:
        raise AuditInputError("item_scores has no country column beside 'neutral'")
    group_of = np.asarray(groups)
    if group_of.shape != (len(item_scores),):
        raise AuditInputError(f"{group_of.size} groups for {len(item_scores)} items")
    names = list(dict.fromkeys(group_of))
    missing = [g for g in names if g not in reference.columns]
    if missing:
        raise AuditInputError(f"reference lacks the groups {missing}")
    unknown = [c for c in countries if c not in reference.index]
    if unknown:
        raise AuditInputError(f"countries {unknown} are not in the reference (have {list(reference.index)})")
    ref = reference[names]
    for col in item_scores.columns:
        check_scores(item_scores[col].to_numpy(), f"item scores of {col!r}", scale=scale,
                     labels=item_scores.index)
    for c in ref.index:
        check_scores(ref.loc[c].to_numpy(), f"reference human means of {c!r}", scale=scale, labels=names)
    profiles = pd.DataFrame({g: item_scores[group_of == g].mean() for g in names})
    x = item_scores[["neutral", *countries]].to_numpy()                        # (n_rows, 1 + C)
    human = ref.loc[countries].to_numpy()                                       # (C, G)
    masks = [group_of == g for g in names]

    def delta(rows: np.ndarray) -> np.ndarray:  # (C,): d_neutral - d_steered per country
        prof = np.stack([x[rows][m].mean(axis=0) for m in masks], axis=1)      # (1 + C, G)
        return np.abs(prof[0] - human).mean(axis=1) - np.abs(prof[1:] - human).mean(axis=1)

    _, delta_boot = stats.bootstrap_replicates(group_of, delta, n_boot=n_boot, seed=seed)   # (n_boot, C)
    dist_n = (ref - profiles.loc["neutral"]).abs().mean(axis=1)
    rows = {}
    for ci, c in enumerate(countries):
        dist_s = (ref - profiles.loc[c]).abs().mean(axis=1)
        iv = stats.percentile_interval(dist_n[c] - dist_s[c], delta_boot[:, ci], confidence=confidence)
        rows[c] = {"d_neutral": float(dist_n[c]), "d_steered": float(dist_s[c]), "delta": iv.estimate,
                   "ci_low": iv.ci_low, "ci_high": iv.ci_high, "moved_toward": bool(iv.ci_low > 0),
                   "rank_neutral": int(dist_n.rank(method="min")[c]), "rank_steered": int(dist_s.rank(method="min")[c])}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "country"
    return SteeringResult(table, profiles, item_scores, pd.DataFrame(delta_boot, columns=countries), confidence)
