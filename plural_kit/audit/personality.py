"""A model's personality among real people, and aligning a model to one person.

**The audit.** Each IPIP-NEO statement is put to the model as a multiple-choice item ("How
accurately does this statement describe you?", five options from *Very inaccurate* to *Very
accurate*) and answered by next-token probabilities over the option labels
(:mod:`plural_kit.scoring` through :func:`~plural_kit.audit.distributions.answer_distributions`).
The item's value is the *keyed* expected rating (reverse-keyed items count 6 - rating), so a
domain score is the mean over its items, as for people (:mod:`plural_kit.data.papi`). The
profile is placed among the 300 PAPI respondents (percentile per domain, nearest respondents)
and compared with groups (sex, age, country) by the MFQ audit's comparisons
(:func:`~plural_kit.audit.mfq.compare_with_countries`,
:func:`~plural_kit.audit.mfq.nearest_country_claim`); design sensitivity is the robustness
protocol of the cultural audit (:func:`~plural_kit.audit.robustness.robustness_audit`) on the
same items.

**Personality alignment** (Zhu et al. 2025): given a person's answers to some items, predict
their answers to the rest. :func:`personality_alignment` scores, by the mean absolute error on
the held-out items (rating points), the population mean, the person's own domain means (keyed
back to each statement), the population mean moved by the person's domain offsets, a persona prompt built from their profile and, optionally, activation
steering along difference-in-means trait directions with a per-person strength chosen on the
person's training items (:func:`steered_answers`, the PAS idea on the engine's hooks).
:func:`alignment_study` runs the baselines on many people and the persona prompt on a few
(:func:`persona_ratings`: every person's prompts in one batched engine call).

**Item structure**: :func:`item_structure` compares people's item dissimilarities with a
model's (:mod:`plural_kit.audit.rsa`), with two halves of the people as the ceiling.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from plural_kit import stats, viz
from plural_kit.audit.distributions import (
    AnswerDistributions,
    AnswerScorer,
    LogprobScorer,
    MultipleChoiceItem,
    PromptDesign,
    answer_distributions,
    build_prompt,
    check_scorer_output,
)
from plural_kit.audit.metrics import AuditInputError
from plural_kit.audit.mfq import (
    CountryComparison,
    compare_with_countries,
    foundation_scores,
    nearest_country_claim,
    position_claim,
)
from plural_kit.audit.rsa import (
    RSAResult,
    answer_dissimilarity,
    cosine_dissimilarity,
    rsa,
)
from plural_kit.claims import Claim, Claims, claim_paired
from plural_kit.data.papi import (
    DOMAIN_NAMES,
    DOMAINS,
    PAPI,
    domain_distributions,
    personality_scores,
)
from plural_kit.engine import Engine
from plural_kit.io import jsonable
from plural_kit.probes.directions import activation_addition, mean_difference
from plural_kit.results import Result, Summary, frame_summary

__all__ = ["IPIP_INSTRUCTION", "IPIP_OPTIONS", "AlignmentResult", "AlignmentStudy", "ItemStructure",
           "PersonalityProfile", "alignment_study", "item_answers", "item_structure", "persona_prompt",
           "persona_ratings", "personality_alignment", "personality_items", "personality_profile", "statement",
           "steered_answers", "trait_directions"]

IPIP_OPTIONS = ("Very inaccurate", "Moderately inaccurate", "Neither accurate nor inaccurate", "Moderately accurate",
                "Very accurate")
IPIP_INSTRUCTION = 'How accurately does this statement describe you?\n\nStatement: "{text}"\n'
PERSONA = "You are a person with this personality: {traits}. Answer every question as this person would."
_LEVELS = ((-np.inf, "very low"), (-1.0, "low"), (-1 / 3, "average"), (1 / 3, "high"), (1.0, "very high"))


def statement(text: str) -> str:
    """The IPIP phrase as a first-person sentence: "Worry about things." -> "I worry about things."."""
    text = str(text).strip()
    return text if text.startswith("I ") else "I " + text[:1].lower() + text[1:]


def personality_items(items: pd.DataFrame, *, n_per_domain: int | None = None, keyed: bool = True
                      ) -> list[MultipleChoiceItem]:
    """MultipleChoiceItems from :attr:`plural_kit.data.papi.PAPI.items` (questionnaire order).

    ``keyed``: values 1..5 for a +keyed item and 5..1 for a reverse-keyed one (expected value =
    keyed rating, what domain scores average); else 1..5 for every item (the rating itself).
    ``n_per_domain``: the first n items of each domain.
    """
    missing = {"item", "text", "domain", "key"} - set(items.columns)
    if missing:
        raise AuditInputError(f"personality items lack columns {sorted(missing)}")
    df = items if n_per_domain is None else items.groupby("domain", sort=False).head(int(n_per_domain))
    up = (1, 2, 3, 4, 5)
    return [MultipleChoiceItem(str(r.item), statement(r.text), IPIP_OPTIONS,
                               up if (r.key > 0 or not keyed) else up[::-1], str(r.domain)) for r in df.itertuples()]


def item_answers(runs: Sequence[AnswerDistributions]) -> pd.Series:
    """Order-averaged expected value per item (index: item id) of the same items under several designs."""
    if not runs:
        raise AuditInputError("no answer distributions")
    ids = [it.id for it in runs[0].items]
    return pd.Series(np.mean([r.expected() for r in runs], axis=0), index=ids)


@dataclass(repr=False)
class PersonalityProfile(Result):
    """The model's Big-Five profile among the PAPI respondents (:func:`personality_profile`).

    ``runs``: the keyed items' answer distributions, one per option order; ``people``: people ×
    domains (their scores); ``who``: one row per person (``person, sex, age, country``);
    ``groups``: ``{by: tidy distributions}`` (:func:`plural_kit.data.papi.domain_distributions`).
    """

    runs: list[AnswerDistributions]
    people: pd.DataFrame
    who: pd.DataFrame
    groups: dict[str, pd.DataFrame]

    title = "Personality profile (mean keyed rating 1-5 per domain) among 300 people"

    @property
    def scores(self) -> pd.Series:
        """Order-averaged domain scores (domains in :data:`DOMAINS` order)."""
        s = foundation_scores(self.runs)
        return s.reindex([d for d in DOMAINS if d in s.index])

    def to_frame(self) -> pd.DataFrame:
        """Per domain: the model's score (per order and averaged), the people's mean and SD, the model's
        percentile among them (share of people at or below it, %) and z-score."""
        s = self.scores
        out = pd.DataFrame({r.design.order: foundation_scores(r).reindex(s.index) for r in self.runs})
        out["model"] = s
        ppl = self.people[s.index]
        out["people_mean"], out["people_sd"] = ppl.mean(), ppl.std(ddof=1)
        out["percentile"] = [100.0 * np.mean(ppl[d].to_numpy() <= s[d]) for d in s.index]
        out["z"] = (out["model"] - out["people_mean"]) / out["people_sd"]
        out.index = pd.Index(s.index, name="domain")
        return out

    def nearest(self, k: int = 5) -> pd.DataFrame:
        """The ``k`` respondents whose domain profiles are nearest the model's (mean |difference|, points)."""
        s = self.scores
        d = (self.people[s.index] - s).abs().mean(axis=1)
        out = self.who.set_index("person").loc[self.people.index].assign(distance=d.to_numpy())
        return out.sort_values("distance").head(k)

    def compare(self, by: str = "sex", *, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0
                ) -> CountryComparison:
        """Distance to each group's people (:func:`~plural_kit.audit.mfq.compare_with_countries`)."""
        return compare_with_countries(self.scores, self._groups(by), by=by, confidence=confidence, n_boot=n_boot,
                                      seed=seed)

    def _groups(self, by: str) -> pd.DataFrame:
        if by not in self.groups:
            raise AuditInputError(f"no groups {by!r}; have {sorted(self.groups)}")
        return self.groups[by]

    def claims(self, *, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> Claims:
        """:func:`~plural_kit.audit.mfq.position_claim` and, per grouping, whether one group is nearer the
        model than every other (:func:`~plural_kit.audit.mfq.nearest_country_claim`)."""
        out = [position_claim(self.runs)]
        for by in self.groups:
            c = nearest_country_claim(self.runs, self._groups(by), by=by, confidence=confidence, n_boot=n_boot,
                                      seed=seed, name=f"nearest_{by}_ahead")
            out.append(Claim(c.name, f"one {by} group's people are nearer the model's Big-Five profile than every "
                             "other's", c.quantity, c.estimate, c.ci_low, c.ci_high, c.threshold, c.side, c.confidence,
                             c.method.replace("foundations", "domains").replace("countries", "groups"), c.details))
        return Claims(out)

    def summary(self) -> Summary:
        near = self.nearest(3)
        return frame_summary(self.title, self.to_frame(), [
            "nearest respondents: " + "; ".join(f"{r.sex}, {r.age}, {r.country} ({r.distance:.2f})"
                                                for r in near.itertuples())], float_digits=2)

    def to_dict(self) -> dict:
        return jsonable({"profile": self.to_frame().to_dict(orient="index"),
                         "nearest": self.nearest(5).reset_index().to_dict(orient="records")})

    def _repr_fields(self) -> dict:
        return {"items": len(self.runs[0].items), "orders": len(self.runs), "people": len(self.people)}

    def plot(self, ax=None, title: str = "The model among 300 people (boxes: people)"):
        """Boxes of the people's domain scores with the model's profile in each order and averaged."""
        frame = self.to_frame()
        long = self.people[frame.index].melt(var_name="foundation", value_name="scores")
        points = {**{f"model ({r.design.order})": frame[r.design.order] for r in self.runs},
                  "model (order-averaged)": frame["model"]}
        return viz.boxes(long, x="foundation", y="scores", order=list(frame.index), points=points,
                         ylabel="domain score (1-5)", title=title, ax=ax)


def personality_profile(engine: Engine | AnswerScorer, items: Sequence[MultipleChoiceItem], data: PAPI,
                        design: PromptDesign | None = None, *, orders: Sequence[str] = ("original", "reversed"),
                        by: Sequence[str] = ("sex", "age", "country"), min_group: int = 9) -> PersonalityProfile:
    """Ask the keyed ``items`` (:func:`personality_items`) in every order and place the profile among
    ``data``'s people and groups ``by`` (groups of at least ``min_group`` people)."""
    if not orders:
        raise AuditInputError("at least one option order is needed")
    design = design or PromptDesign(instruction=IPIP_INSTRUCTION, instruction_name="ipip")
    runs = [answer_distributions(engine, items, design.with_(order=o)) for o in orders]
    people = personality_scores(data)
    groups = {b: domain_distributions(data, b, min_size=min_group) for b in by}
    return PersonalityProfile(runs, people, data.people, groups)


# ------------------------------------------------------------------------------------------ alignment
def persona_prompt(profile: pd.Series, population: pd.DataFrame) -> str:
    """A system prompt describing a person by their domain scores relative to ``population`` (people ×
    domains): "very low" ... "very high" by z-score (cuts at -1, -1/3, 1/3, 1)."""
    z = (profile - population.mean()) / population.std(ddof=1)
    words = []
    for d in profile.index:
        level = [name for cut, name in _LEVELS if z[d] >= cut][-1]
        words.append(f"{level} in {DOMAIN_NAMES.get(d, d).lower()}")
    return PERSONA.format(traits=", ".join(words))


def _domain_predictions(keyed_train: np.ndarray, domains: np.ndarray, keys: np.ndarray, train: np.ndarray,
                        test: np.ndarray) -> np.ndarray:
    """(P, n_test) raw-rating predictions from each person's keyed domain means on the training items."""
    out = np.empty((keyed_train.shape[0], test.size))
    for t, col in enumerate(test):
        same = domains[train] == domains[col]
        m = np.nanmean(keyed_train[:, same], axis=1)
        out[:, t] = m if keys[col] > 0 else 6 - m
    return out


@dataclass(repr=False)
class AlignmentResult(Result):
    """Result of :func:`personality_alignment`: ``errors`` (people × methods, mean absolute error on
    the person's held-out items, rating points), ``predictions`` (long: person, item, method,
    prediction, answer) and the baseline the claims compare with."""

    errors: pd.DataFrame
    predictions: pd.DataFrame
    baseline: str = "population mean"
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0

    title = "Personality alignment: error on held-out items"

    def to_frame(self) -> pd.DataFrame:
        """Per method: mean error over people with its bootstrap interval over people (a new frame)."""
        rows = {}
        for m in self.errors.columns:
            iv = stats.bootstrap_ci(self.errors[m].to_numpy(), confidence=self.confidence, n_boot=self.n_boot,
                                    seed=self.seed)
            rows[m] = {"mae": iv.estimate, "ci_low": iv.ci_low, "ci_high": iv.ci_high}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "method"
        return out

    def claim(self, method: str, baseline: str | None = None, name: str | None = None) -> Claim:
        """``method`` predicts people's held-out answers better than ``baseline``: the error difference
        (baseline - method), paired bootstrap over people."""
        baseline = baseline or self.baseline
        for m in (method, baseline):
            if m not in self.errors.columns:
                raise AuditInputError(f"no method {m!r}; methods: {list(self.errors.columns)}")
        slug = lambda s: re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")
        return claim_paired(name or f"{slug(method)}_beats_{slug(baseline)}",
                            f"the {method} predicts a person's held-out answers better than the {baseline}",
                            self.errors[baseline].to_numpy(), self.errors[method].to_numpy(),
                            quantity="error reduction (points)", confidence=self.confidence, n_boot=self.n_boot,
                            seed=self.seed, method=f"paired bootstrap over {len(self.errors)} people")

    def claims(self) -> Claims:
        """One :meth:`claim` per method against the baseline."""
        return Claims([self.claim(m) for m in self.errors.columns if m != self.baseline])

    def summary(self) -> Summary:
        return frame_summary(f"{self.title} ({len(self.errors)} people, "
                             f"{self.predictions['item'].nunique()} held-out items)", self.to_frame())

    def _repr_fields(self) -> dict:
        return {"people": len(self.errors), "methods": len(self.errors.columns)}

    def plot(self, ax=None, title: str = "Error on a person's held-out items"):
        """Mean error per method with its interval (points)."""
        return viz.intervals(self.to_frame(), estimate="mae", kind="point", ax=ax,
                             xlabel="mean |prediction - answer| (rating points)", title=title)


def persona_ratings(engine: Engine | AnswerScorer, items: Sequence[MultipleChoiceItem], systems: Sequence[str],
                    design: PromptDesign, *, orders: Sequence[str] = ("original", "reversed")) -> np.ndarray:
    """Expected ratings (n_systems, n_items) of ``items`` under each system prompt, averaged over
    ``orders``: every (order, system, item) prompt goes through the engine in one batched call."""
    if not systems or not orders:
        raise AuditInputError("persona_ratings needs at least one system prompt and one order")
    items = list(items)
    scorer = engine if isinstance(engine, AnswerScorer) else LogprobScorer(engine)
    built = [build_prompt(it, design.with_(order=o, system=s), scorer, item_index=i)
             for o in orders for s in systems for i, it in enumerate(items)]
    every = items * (len(orders) * len(systems))
    pos, _ = check_scorer_output(scorer.score([b[0] for b in built], [b[2] for b in built]), every)
    probs = np.empty_like(pos)
    np.put_along_axis(probs, np.stack([b[1] for b in built]), pos, axis=1)   # back to the original option order
    rating = (probs * np.array([it.ordinal for it in every], dtype=float)).sum(axis=1)
    return rating.reshape(len(orders), len(systems), len(items)).mean(axis=0)


def personality_alignment(data: PAPI, people: Sequence, *, train_items: Sequence[str] | None = None,
                          test_items: Sequence[str] | None = None, engine: Engine | AnswerScorer | None = None,
                          design: PromptDesign | None = None, orders: Sequence[str] = ("original", "reversed"),
                          steering: Mapping | None = None, confidence: float = 0.95, n_boot: int = 1000,
                          seed: int = 0) -> AlignmentResult:
    """Predict ``people``'s answers to ``test_items`` from their answers to ``train_items``.

    Defaults: train on the IPIP-NEO-120 short form, test on the other 180 (the paper's split).
    Methods: ``population mean`` (every other respondent's mean answer per item), ``own domain
    means`` (the person's keyed mean over their training items of the item's domain, keyed back),
    ``own offset`` (the population mean of the item moved by how far the person's domain
    mean lies from everyone else's, in the item's direction, clipped to 1-5);
    with an ``engine`` also ``persona prompt`` (:func:`persona_prompt` as the system prompt, the
    expected rating averaged over ``orders``); with ``steering`` (the keyword arguments of
    :func:`steered_answers` other than the person) also ``steering``.
    """
    items = data.items.set_index("item")
    train = list(items.index[items["short_form"]]) if train_items is None else list(train_items)
    test = [i for i in items.index if i not in set(train)] if test_items is None else list(test_items)
    if not train or not test or set(train) & set(test):
        raise AuditInputError("train_items and test_items must be non-empty and disjoint")
    raw = data.matrix()
    people = list(people)
    missing = [p for p in people if p not in raw.index]
    if missing:
        raise AuditInputError(f"people {missing[:5]} are not in the data")
    keys, domains = items["key"].to_numpy(), items["domain"].to_numpy()
    col = {c: k for k, c in enumerate(raw.columns)}
    tr, te = np.array([col[c] for c in train]), np.array([col[c] for c in test])
    keyed = np.where(keys > 0, raw.to_numpy(), 6 - raw.to_numpy())
    scores = personality_scores(data)
    preds: dict[str, np.ndarray] = {}
    others = ~raw.index.isin(people)
    preds["population mean"] = np.tile(np.nanmean(raw.to_numpy()[others][:, te], axis=0), (len(people), 1))
    rows = raw.index.get_indexer(people)
    preds["own domain means"] = _domain_predictions(keyed[rows][:, tr], domains, keys, tr, te)
    shift = preds["own domain means"] - _domain_predictions(keyed[others][:, tr], domains, keys, tr, te).mean(axis=0)
    preds["own offset"] = np.clip(preds["population mean"] + shift, 1, 5)
    if engine is not None or steering:
        design = design or PromptDesign(instruction=IPIP_INSTRUCTION, instruction_name="ipip")
        test_mc = personality_items(data.items.set_index("item").loc[test].reset_index(), keyed=False)
    if engine is not None:
        population = scores[others]
        own = pd.DataFrame(_train_domain_scores(keyed[rows][:, tr], domains[tr]), index=people)
        preds["persona prompt"] = persona_ratings(engine, test_mc, [persona_prompt(own.loc[p], population)
                                                                   for p in people], design, orders=orders)
    if steering:
        train_mc = personality_items(data.items.set_index("item").loc[train].reset_index(), keyed=False)
        preds["steering"] = np.stack([steered_answers(person_train=raw.to_numpy()[r, tr], train_items=train_mc,
                                                      test_items=test_mc, person_scores=_zscores(keyed[r, tr], domains[tr], scores[others]),
                                                      design=design, **steering) for r in rows])
    truth = raw.to_numpy()[rows][:, te]
    errors = pd.DataFrame({m: np.nanmean(np.abs(p - truth), axis=1) for m, p in preds.items()},
                          index=pd.Index(people, name="person"))
    long = pd.concat([pd.DataFrame({"person": np.repeat(people, len(test)), "item": np.tile(test, len(people)),
                                    "method": m, "prediction": p.ravel(), "answer": truth.ravel()})
                      for m, p in preds.items()], ignore_index=True)
    return AlignmentResult(errors, long, confidence=confidence, n_boot=n_boot, seed=seed)


def _train_domain_scores(keyed: np.ndarray, domains: np.ndarray) -> dict[str, np.ndarray]:
    return {d: np.nanmean(keyed[:, domains == d], axis=1) for d in DOMAINS if (domains == d).any()}


def _zscores(keyed: np.ndarray, domains: np.ndarray, population: pd.DataFrame) -> pd.Series:
    own = pd.Series({d: np.nanmean(keyed[domains == d]) for d in DOMAINS if (domains == d).any()})
    return (own - population[own.index].mean()) / population[own.index].std(ddof=1)


# ------------------------------------------------------------------------------------------ steering
def trait_directions(engine: Engine, items: Sequence[MultipleChoiceItem], keys: Sequence[int], *, layer: int,
                     design: PromptDesign | None = None) -> dict[str, np.ndarray]:
    """Difference-in-means direction per domain at the output of block ``layer``: the last-token hidden
    state of each item prompt followed by the trait-high answer ("Very accurate" for a +keyed item,
    "Very inaccurate" for a reverse-keyed one) minus the same with the trait-low answer.

    ``items``: unkeyed :func:`personality_items` (their ``group`` is the domain); ``keys``: (n,) ±1.
    Returns ``{domain: (d,) float32}``.
    """
    design = design or PromptDesign(instruction=IPIP_INSTRUCTION, instruction_name="ipip", chat_template=False,
                                    response="answer_prefix")
    keys = np.asarray(keys)
    if len(keys) != len(items):
        raise AuditInputError(f"{len(keys)} keys for {len(items)} items")
    scorer = engine if isinstance(engine, AnswerScorer) else None
    prompts = [build_prompt(it, design, scorer, item_index=i)[0] for i, it in enumerate(items)]
    high = [p + " " + (IPIP_OPTIONS[-1] if k > 0 else IPIP_OPTIONS[0]) for p, k in zip(prompts, keys)]
    low = [p + " " + (IPIP_OPTIONS[0] if k > 0 else IPIP_OPTIONS[-1]) for p, k in zip(prompts, keys)]
    h = np.asarray(engine.hidden_states(high + low, layers=layer)[layer], dtype=np.float32)
    h_high, h_low = h[:len(items)], h[len(items):]
    groups = np.array([it.group for it in items])
    return {str(d): mean_difference(h_high[groups == d], h_low[groups == d]) for d in dict.fromkeys(groups)}


def steered_answers(*, engine: Engine, directions: Mapping[str, np.ndarray], layer: int, person_scores: pd.Series,
                    person_train: np.ndarray, train_items: Sequence[MultipleChoiceItem],
                    test_items: Sequence[MultipleChoiceItem], strengths: Sequence[float] = (0.0, 0.5, 1.0, 2.0),
                    design: PromptDesign | None = None) -> np.ndarray:
    """A person's predicted ratings of ``test_items`` (n_test,) under activation steering.

    The person's vector is ``sum_d z_d * directions[d]`` (``person_scores``: their z-score per domain);
    it is added at block ``layer`` with each strength of ``strengths``; the strength whose expected
    ratings of ``train_items`` are nearest ``person_train`` (mean absolute error, NaN answers
    skipped) is used for the test items.
    """
    design = design or PromptDesign(instruction=IPIP_INSTRUCTION, instruction_name="ipip")
    vec = sum(float(person_scores[d]) * np.asarray(v, dtype=np.float32) for d, v in directions.items()
              if d in person_scores.index)
    if not len(strengths):
        raise AuditInputError("strengths is empty")
    best, best_err = None, np.inf
    for alpha in strengths:
        with activation_addition(engine, vec, layer, alpha=float(alpha)):
            err = float(np.nanmean(np.abs(answer_distributions(engine, train_items, design).expected() - person_train)))
        if err < best_err - 1e-12:
            best, best_err = float(alpha), err
    with activation_addition(engine, vec, layer, alpha=best):
        return answer_distributions(engine, test_items, design).expected()


# ------------------------------------------------------------------------------------------ the lesson's studies
@dataclass(repr=False)
class AlignmentStudy(Result):
    """:func:`alignment_study`: the baselines on many people (``baselines``) and, with a model, the
    persona prompt on a few people and items (``persona``, with the population mean on the same ones)."""

    baselines: AlignmentResult
    persona: AlignmentResult | None = None
    example_prompt: str = ""

    title = "Personality alignment: error on a person's held-out items"

    def _parts(self) -> list[AlignmentResult]:
        return [r for r in (self.baselines, self.persona) if r is not None]

    def to_frame(self) -> pd.DataFrame:
        """Per (people x items, method): mean error with its interval over people (a new frame)."""
        frames = []
        for r in self._parts():
            f = r.to_frame().reset_index()
            f.insert(0, "sample", f"{len(r.errors)} people x {r.predictions['item'].nunique()} items")
            frames.append(f)
        return pd.concat(frames, ignore_index=True)

    def claims(self) -> Claims:
        """The baselines' claims and, with a model, ``persona_prompt_beats_population_mean``."""
        out = list(self.baselines.claims())
        return Claims(out + ([self.persona.claim("persona prompt")] if self.persona is not None else []))

    def to_dict(self) -> dict:
        return jsonable({"table": self.to_frame().to_dict(orient="records"), "claims": self.claims().to_dict()})

    def _repr_fields(self) -> dict:
        return {"people": len(self.baselines.errors), "persona_people": 0 if self.persona is None
                else len(self.persona.errors)}

    def plot(self, ax=None, title: str | None = None):
        """Mean error per method and sample with its interval (points)."""
        f = self.to_frame()
        f.index = f["method"] + " (" + f["sample"] + ")"
        return viz.intervals(f, estimate="mae", kind="point", ax=ax, title=title or self.title,
                             xlabel="mean |prediction - answer| (rating points)")


def alignment_study(data: PAPI, *, n_people: int = 60, engine: Engine | AnswerScorer | None = None,
                    design: PromptDesign | None = None, orders: Sequence[str] = ("original", "reversed"),
                    n_persona_people: int = 4, n_persona_items: int = 4, confidence: float = 0.95,
                    n_boot: int = 1000, seed: int = 0) -> AlignmentStudy:
    """:func:`personality_alignment` for ``n_people`` drawn people (short form -> the other 180 items)
    and, with an ``engine``, for the first ``n_persona_people`` of them with a persona prompt on
    ``n_persona_items`` drawn held-out items (each costs ``len(orders)`` prompts)."""
    rng = np.random.default_rng(seed)
    ids = data.people["person"].to_numpy()
    if not 0 < n_persona_people <= n_people <= len(ids):
        raise AuditInputError(f"need 0 < n_persona_people <= n_people <= {len(ids)}; got {n_persona_people}, "
                              f"{n_people}")
    chosen = ids[rng.permutation(len(ids))]
    kw = {"confidence": confidence, "n_boot": n_boot, "seed": seed}
    baselines = personality_alignment(data, chosen[:n_people], **kw)
    if engine is None:
        return AlignmentStudy(baselines)
    held_out = data.items.loc[~data.items["short_form"], "item"].to_numpy()
    persona = personality_alignment(data, chosen[:n_persona_people], engine=engine, design=design, orders=orders,
                                    test_items=rng.choice(held_out, n_persona_items, replace=False), **kw)
    scores = personality_scores(data)
    return AlignmentStudy(baselines, persona, persona_prompt(scores.loc[chosen[0]], scores))


@dataclass(repr=False)
class ItemStructure(Result):
    """:func:`item_structure`: RSA of people's item structure against the model's (``model``) and,
    as a ceiling, between two halves of the people (``ceiling``)."""

    model: RSAResult
    ceiling: RSAResult

    title = "How human-like is the model's item structure? (Spearman RSA)"

    def to_frame(self) -> pd.DataFrame:
        """One row per comparison: rho with its interval over items and the Mantel p-value (a new frame)."""
        rows = {f"{r.names[0]} vs {r.names[1]}": {**r.interval.to_dict(), "p_value": r.p_value}
                for r in (self.ceiling, self.model)}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "comparison"
        return out

    def claims(self) -> Claims:
        """``people_halves_agree`` and ``hidden_states_like_people``."""
        return Claims([self.ceiling.claim("people_halves_agree", "two halves of the people give the same item "
                                          "structure"),
                       self.model.claim("hidden_states_like_people", "the model's hidden states place items as "
                                        "people's answers do (Spearman RSA above 0)")])

    def to_dict(self) -> dict:
        return jsonable({"model": self.model.to_dict(), "ceiling": self.ceiling.to_dict()})

    def _repr_fields(self) -> dict:
        return {"items": len(self.model.rdm_a), "rho": self.model.rho, "ceiling": self.ceiling.rho}

    def plot(self, ax=None, title: str | None = None):
        """Over the pairs of items, as ranks (what Spearman's rho compares; 0 = the closest pair): the
        people's dissimilarity (x) against the other half's and the model's (y), each with its rho."""
        ax = viz._axes(ax, (6, 4.5))
        for r in (self.ceiling, self.model):
            f = r.to_frame()[list(r.names)].rank(pct=True)
            ax.scatter(f[r.names[0]], f[r.names[1]], s=10, alpha=0.5,
                       label=f"{r.names[1]} vs {r.names[0]} (rho = {r.rho:.2f})")
        ax.set(xlabel="people's dissimilarity (rank, 0-1)", ylabel="other dissimilarity (rank, 0-1)",
               title=title or self.title)
        ax.legend(loc="upper left", markerscale=2)
        return ax


def item_structure(data: PAPI, vectors: np.ndarray, *, n_per_domain: int = 12, n_permutations: int = 999,
                   confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> ItemStructure:
    """RSA over the first ``n_per_domain`` items of each domain: people's ``1 - correlation`` of answers
    (:func:`~plural_kit.audit.rsa.answer_dissimilarity`) against the cosine distance of ``vectors``
    ((300, d), one row per item of ``data.items``, e.g. hidden states), and odd against even people."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) != len(data.items):
        raise AuditInputError(f"vectors must be ({len(data.items)}, d), one row per item; got {vectors.shape}")
    chosen = data.items.groupby("domain", sort=False).head(int(n_per_domain))
    answers = data.matrix()[chosen["item"]].to_numpy()
    kw = {"labels": chosen["item"], "n_permutations": n_permutations, "confidence": confidence, "n_boot": n_boot,
          "seed": seed}
    rows = data.items.index.get_indexer(chosen.index)
    model = rsa(answer_dissimilarity(answers), cosine_dissimilarity(vectors[rows]), names=("people", "hidden states"),
                **kw)
    ceiling = rsa(answer_dissimilarity(answers[::2]), answer_dissimilarity(answers[1::2]),
                  names=("people (odd)", "people (even)"), **kw)
    return ItemStructure(model, ceiling)
