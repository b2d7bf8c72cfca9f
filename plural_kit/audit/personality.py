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
back to each statement), the population mean moved by the person's domain offsets, a persona
prompt built from their profile and, optionally, activation steering along difference-in-means
trait directions with a per-person strength chosen on the person's training items
(:func:`steered_answers`, the PAS idea on the engine's hooks). :func:`alignment_study` runs the
baselines on many people and the persona prompt (and steering) on a few
(:func:`persona_ratings`: every person's prompts in one batched engine call).

**Reward models of real people**: :func:`preference_study` fits BT, MixtureBT, PAL and VPL to
pairs "this statement describes me more than that one" from each person's ratings, on held-out
statements and on people never seen (few-shot), and asks whether the groups found follow sex,
age or the Big Five.

**Item structure**: :func:`item_structure` compares people's item dissimilarities with a
model's hidden states and its answers across persona prompts (:mod:`plural_kit.audit.rsa`), with
two halves of the people as the ceiling, and each person's own structure with all of them.
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
    person_rsa,
    rsa,
)
from plural_kit.claims import Claim, Claims, claim_mean, claim_paired
from plural_kit.data.papi import (
    DOMAIN_NAMES,
    DOMAINS,
    PAPI,
    domain_distributions,
    make_papi_preferences,
    personality_scores,
    user_covariates,
)
from plural_kit.engine import Engine
from plural_kit.io import jsonable
from plural_kit.probes.directions import activation_addition, mean_difference
from plural_kit.results import Result, Summary, frame_summary
from plural_kit.reward import PAL, VPL, BradleyTerry, MixtureBT
from plural_kit.reward.evaluation import FewShotCurves, few_shot_curves
from plural_kit.reward.experiments import (
    ModelComparison,
    UserRepresentations,
    compare_models,
    reduce_embeddings,
    text_pairs,
    user_representations,
)

__all__ = ["IPIP_INSTRUCTION", "IPIP_OPTIONS", "AlignmentResult", "AlignmentStudy", "ItemStructure",
           "PersonalityProfile", "PreferenceStudy", "alignment_study", "item_answers", "item_structure",
           "persona_prompt", "persona_ratings", "personality_alignment", "personality_items",
           "personality_profile", "preference_study", "statement", "steered_answers", "trait_directions"]

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
    prediction, answer), with steering the strength chosen for each person (``strengths``), and
    the baseline the claims compare with."""

    errors: pd.DataFrame
    predictions: pd.DataFrame
    strengths: pd.Series | None = None
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
        chosen = {"strengths": ", ".join(f"{v:g}" for v in self.strengths)} \
            if method == "steering" and self.strengths is not None else {}
        return claim_paired(name or f"{slug(method)}_beats_{slug(baseline)}",
                            f"the {method} predicts a person's held-out answers better than the {baseline}",
                            self.errors[baseline].to_numpy(), self.errors[method].to_numpy(),
                            quantity="error reduction (points)", confidence=self.confidence, n_boot=self.n_boot,
                            seed=self.seed, method=f"paired bootstrap over {len(self.errors)} people",
                            details=chosen)

    def claims(self) -> Claims:
        """One :meth:`claim` per method against the baseline."""
        return Claims([self.claim(m) for m in self.errors.columns if m != self.baseline])

    def summary(self) -> Summary:
        notes = [] if self.strengths is None else [
            "steering strength chosen per person: " + ", ".join(f"{v:g}" for v in self.strengths)]
        return frame_summary(f"{self.title} ({len(self.errors)} people, "
                             f"{self.predictions['item'].nunique()} held-out items)", self.to_frame(), notes)

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
                          steering: Mapping | None = None, steering_items: Sequence[str] | None = None,
                          confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> AlignmentResult:
    """Predict ``people``'s answers to ``test_items`` from their answers to ``train_items``.

    Defaults: train on the IPIP-NEO-120 short form, test on the other 180 (the paper's split).
    Methods: ``population mean`` (every other respondent's mean answer per item), ``own domain
    means`` (the person's keyed mean over their training items of the item's domain, keyed back),
    ``own offset`` (the population mean of the item moved by how far the person's domain
    mean lies from everyone else's, in the item's direction, clipped to 1-5);
    with an ``engine`` also ``persona prompt`` (:func:`persona_prompt` as the system prompt, the
    expected rating averaged over ``orders``); with ``steering`` (the keyword arguments of
    :func:`steered_answers` other than the person and the items) also ``steering``, its strength
    chosen on the person's answers to ``steering_items`` (a subset of ``train_items``; default all).
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
        test_mc = personality_items(items.loc[test].reset_index(), keyed=False)
    if engine is not None:
        population = scores[others]
        own = pd.DataFrame(_train_domain_scores(keyed[rows][:, tr], domains[tr]), index=people)
        preds["persona prompt"] = persona_ratings(engine, test_mc, [persona_prompt(own.loc[p], population)
                                                                   for p in people], design, orders=orders)
    strengths = None
    if steering:
        search = train if steering_items is None else list(steering_items)
        if not search or not set(search) <= set(train):
            raise AuditInputError("steering_items must be a non-empty subset of train_items")
        cols = np.array([col[c] for c in search])
        search_mc = personality_items(items.loc[search].reset_index(), keyed=False)
        steered = [steered_answers(person_train=raw.to_numpy()[r, cols], train_items=search_mc, test_items=test_mc,
                                   person_scores=_zscores(keyed[r, tr], domains[tr], scores[others]), design=design,
                                   return_strength=True, **steering) for r in rows]
        preds["steering"] = np.stack([a for a, _ in steered])
        strengths = pd.Series([b for _, b in steered], index=pd.Index(people, name="person"), name="strength")
    truth = raw.to_numpy()[rows][:, te]
    errors = pd.DataFrame({m: np.nanmean(np.abs(p - truth), axis=1) for m, p in preds.items()},
                          index=pd.Index(people, name="person"))
    long = pd.concat([pd.DataFrame({"person": np.repeat(people, len(test)), "item": np.tile(test, len(people)),
                                    "method": m, "prediction": p.ravel(), "answer": truth.ravel()})
                      for m, p in preds.items()], ignore_index=True)
    return AlignmentResult(errors, long, strengths, confidence=confidence, n_boot=n_boot, seed=seed)


def _item_vectors(data: PAPI, vectors) -> np.ndarray:
    """``vectors`` as an array, checked to be (n_items, d): one row per item of ``data.items``."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or len(vectors) != len(data.items):
        raise AuditInputError(f"vectors must be ({len(data.items)}, d), one row per item; got {vectors.shape}")
    return vectors


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

    Balanced over keys: within a domain the +keyed and the reverse-keyed items' mean differences
    weigh equally, so the answer words' own direction ("accurate" against "inaccurate", the same
    for every item) cancels and what remains is the trait's. A domain whose items are all keyed
    one way keeps the words' direction (``AuditInputError``: give both keys).

    ``items``: unkeyed :func:`personality_items` (their ``group`` is the domain); ``keys``: (n,) ±1.
    Returns ``{domain: (d,) float32}``.
    """
    design = design or PromptDesign(instruction=IPIP_INSTRUCTION, instruction_name="ipip", chat_template=False,
                                    response="answer_prefix")
    keys = np.asarray(keys)
    if len(keys) != len(items):
        raise AuditInputError(f"{len(keys)} keys for {len(items)} items")
    groups = np.array([it.group for it in items])
    one_way = [str(d) for d in dict.fromkeys(groups) if len(set(np.sign(keys[groups == d]))) < 2]
    if one_way:
        raise AuditInputError(f"domains {one_way} have items of one key only: their direction would be the answer "
                              "words', not the trait's; give +keyed and reverse-keyed items of each")
    scorer = engine if isinstance(engine, AnswerScorer) else None
    prompts = [build_prompt(it, design, scorer, item_index=i)[0] for i, it in enumerate(items)]
    high = [p + " " + (IPIP_OPTIONS[-1] if k > 0 else IPIP_OPTIONS[0]) for p, k in zip(prompts, keys)]
    low = [p + " " + (IPIP_OPTIONS[0] if k > 0 else IPIP_OPTIONS[-1]) for p, k in zip(prompts, keys)]
    h = np.asarray(engine.hidden_states(high + low, layers=layer)[layer], dtype=np.float32)
    h_high, h_low = h[:len(items)], h[len(items):]
    return {str(d): np.mean([mean_difference(h_high[(groups == d) & (np.sign(keys) == k)],
                                             h_low[(groups == d) & (np.sign(keys) == k)]) for k in (1, -1)],
                            axis=0).astype(np.float32) for d in dict.fromkeys(groups)}


def steered_answers(*, engine: Engine, directions: Mapping[str, np.ndarray], layer: int, person_scores: pd.Series,
                    person_train: np.ndarray, train_items: Sequence[MultipleChoiceItem],
                    test_items: Sequence[MultipleChoiceItem], strengths: Sequence[float] = (0.0, 4.0, 16.0, 64.0),
                    design: PromptDesign | None = None, return_strength: bool = False
                    ) -> np.ndarray | tuple[np.ndarray, float]:
    """A person's predicted ratings of ``test_items`` (n_test,) under activation steering.

    The person's vector is ``sum_d z_d * directions[d]`` (``person_scores``: their z-score per domain);
    it is added at block ``layer`` with each strength of ``strengths``; the strength whose expected
    ratings of ``train_items`` are nearest ``person_train`` (mean absolute error, NaN answers
    skipped) is used for the test items (``return_strength``: also return that strength). The
    strengths multiply the directions as they are (their norm is the model's own scale: a small
    model's trait directions can be far shorter than its residual stream, hence the wide default).
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
        answers = answer_distributions(engine, test_items, design).expected()
    return (answers, best) if return_strength else answers


# ------------------------------------------------------------------------------------------ the lesson's studies
@dataclass(repr=False)
class AlignmentStudy(Result):
    """:func:`alignment_study`: the baselines on many people (``baselines``) and, with a model, the
    persona prompt (and activation steering) on a few people and items (``persona``, with the
    baselines on the same ones)."""

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
        """The baselines' claims and, with a model, ``persona_prompt_beats_population_mean`` (and
        ``steering_beats_population_mean``)."""
        model = [] if self.persona is None else [m for m in ("persona prompt", "steering")
                                                 if m in self.persona.errors.columns]
        return Claims(list(self.baselines.claims()) + [self.persona.claim(m) for m in model])

    def to_dict(self) -> dict:
        strengths = None if self.persona is None else self.persona.strengths
        return jsonable({"table": self.to_frame().to_dict(orient="records"), "claims": self.claims().to_dict(),
                         "steering_strengths": None if strengths is None else strengths.to_dict()})

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
                    n_persona_people: int = 4, n_persona_items: int = 4, steering_layer: int | None = None,
                    strengths: Sequence[float] = (0.0, 4.0, 16.0, 64.0), n_steering_items: int = 2,
                    confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> AlignmentStudy:
    """:func:`personality_alignment` for ``n_people`` drawn people (short form -> the other 180 items)
    and, with an ``engine``, for the first ``n_persona_people`` of them with a persona prompt on
    ``n_persona_items`` drawn held-out items (each costs ``len(orders)`` prompts).

    With a ``steering_layer`` also activation steering at the output of that block: trait
    directions (:func:`trait_directions`) from the 120 short-form items (no one's answers), each
    person's strength (of ``strengths``) chosen on their answers to the first ``n_steering_items``
    short-form items of each domain (``len(strengths) * 5 * n_steering_items`` prompts a person).
    """
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
    steering, search = None, None
    if steering_layer is not None:
        short = data.items[data.items["short_form"]]
        directions = trait_directions(engine, personality_items(short, keyed=False), short["key"].to_numpy(),
                                      layer=steering_layer)
        steering = dict(engine=engine, directions=directions, layer=steering_layer, strengths=strengths)
        search = short.groupby("domain", sort=False).head(n_steering_items)["item"].tolist()
    persona = personality_alignment(data, chosen[:n_persona_people], engine=engine, design=design, orders=orders,
                                    test_items=rng.choice(held_out, n_persona_items, replace=False),
                                    steering=steering, steering_items=search, **kw)
    scores = personality_scores(data)
    return AlignmentStudy(baselines, persona, persona_prompt(scores.loc[chosen[0]], scores))


@dataclass(repr=False)
class ItemStructure(Result):
    """:func:`item_structure`: RSA of people's item structure against the model's hidden states
    (``model``), its answers across persona prompts (``persona``, with an engine) and, as a
    ceiling, between two halves of the people (``ceiling``); ``people``: per person, their rho
    with the other people and with each model RDM (:func:`~plural_kit.audit.rsa.person_rsa`)."""

    model: RSAResult
    ceiling: RSAResult
    people: pd.DataFrame
    persona: RSAResult | None = None
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0

    title = "How human-like is the model's item structure? (Spearman RSA)"

    def _rsas(self) -> list[RSAResult]:
        return [r for r in (self.ceiling, self.model, self.persona) if r is not None]

    def to_frame(self) -> pd.DataFrame:
        """One row per comparison: rho with its interval over items and the Mantel p-value, then the
        per-person mean rho per reference with its interval over people (a new frame)."""
        rows = {f"{r.names[0]} vs {r.names[1]}": {**r.interval.to_dict(), "p_value": r.p_value}
                for r in self._rsas()}
        for ref in self.people.columns:
            iv = stats.bootstrap_ci(self.people[ref].dropna().to_numpy(), confidence=self.confidence,
                                    n_boot=self.n_boot, seed=self.seed)
            rows[f"each person vs {ref}"] = {**iv.to_dict(), "p_value": np.nan}
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "comparison"
        return out

    def claims(self) -> Claims:
        """``people_halves_agree``, ``hidden_states_like_people``, with an engine
        ``persona_answers_like_people``, and per person ``hidden_states_like_each_person`` and
        ``others_nearer_a_person_than_hidden_states``."""
        kw = {"confidence": self.confidence, "n_boot": self.n_boot, "seed": self.seed}
        both = self.people[["other people", "hidden states"]].dropna()
        out = [self.ceiling.claim("people_halves_agree", "two halves of the people give the same item structure"),
               self.model.claim("hidden_states_like_people", "the model's hidden states place items as people's "
                                "answers do (Spearman RSA above 0)")]
        if self.persona is not None:
            out.append(self.persona.claim("persona_answers_like_people", "the model's answers across persona "
                                          "prompts place items as people's answers do (Spearman RSA above 0)"))
        method = f"bootstrap over {len(both)} people"
        return Claims(out + [
            claim_mean("hidden_states_like_each_person", "the hidden states' item structure follows each person's "
                       "own (mean per-person Spearman rho above 0)", both["hidden states"].to_numpy(),
                       quantity="mean per-person rho", method=method, **kw),
            claim_paired("others_nearer_a_person_than_hidden_states", "a person's item structure is nearer the "
                         "other people's than the model's hidden states'", both["other people"].to_numpy(),
                         both["hidden states"].to_numpy(), quantity="rho difference", method=method, **kw)])

    def to_dict(self) -> dict:
        return jsonable({**{k: r.to_dict() for k, r in (("model", self.model), ("ceiling", self.ceiling),
                                                        ("persona", self.persona)) if r is not None},
                         "people": self.people.describe().to_dict()})

    def _repr_fields(self) -> dict:
        return {"items": len(self.model.rdm_a), "rho": self.model.rho, "ceiling": self.ceiling.rho,
                "people": len(self.people)}

    def plot(self, ax=None, kind: str = "pairs", title: str | None = None):
        """``kind="pairs"``: over the pairs of items, as ranks (what Spearman's rho compares; 0 = the
        closest pair), the people's dissimilarity (x) against the other half's and the model's (y),
        each with its rho. ``kind="people"``: each person's rho with each reference (boxes)."""
        if kind == "people":
            long = self.people.melt(var_name="reference", value_name="rho").dropna()
            ax = viz.boxes(long, x="reference", y="rho", ylabel="Spearman rho with the person's own structure",
                           title=title or f"Each of {len(self.people)} people", ax=ax)
            ax.axhline(0, color="0.5", lw=0.8)
            return ax
        if kind != "pairs":
            raise ValueError(f"kind must be 'pairs' or 'people'; got {kind!r}")
        ax = viz._axes(ax, (6, 4.5))
        for r in self._rsas():
            f = r.to_frame()[list(r.names)].rank(pct=True)
            ax.scatter(f[r.names[0]], f[r.names[1]], s=10, alpha=0.5,
                       label=f"{r.names[1]} vs {r.names[0]} (rho = {r.rho:.2f})")
        ax.set(xlabel="people's dissimilarity (rank, 0-1)", ylabel="other dissimilarity (rank, 0-1)",
               title=title or self.title)
        ax.legend(loc="upper left", markerscale=2, fontsize=8)
        return ax


def item_structure(data: PAPI, vectors: np.ndarray, *, n_per_domain: int = 12,
                   engine: Engine | AnswerScorer | None = None, design: PromptDesign | None = None,
                   orders: Sequence[str] = ("original",), n_personas: int = 8, n_permutations: int = 999,
                   confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> ItemStructure:
    """RSA over the first ``n_per_domain`` items of each domain: people's ``1 - correlation`` of answers
    (:func:`~plural_kit.audit.rsa.answer_dissimilarity`) against the cosine distance of ``vectors``
    ((300, d), one row per item of ``data.items``, e.g. hidden states), and odd against even people.

    With an ``engine`` also the model's answers across persona prompts: ``n_personas`` drawn people's
    :func:`persona_prompt` (their Big-Five profile) as system prompts, the expected rating of each item
    (:func:`persona_ratings` over ``orders``), and the ``1 - correlation`` of items across personas.
    Per person (:func:`~plural_kit.audit.rsa.person_rsa`): each respondent's own structure against
    the other people's, the hidden states' and (with an engine) the persona answers'.
    """
    vectors = _item_vectors(data, vectors)
    chosen = data.items.groupby("domain", sort=False).head(int(n_per_domain))
    matrix = data.matrix()[chosen["item"]]
    answers = matrix.to_numpy()
    kw = {"labels": chosen["item"], "n_permutations": n_permutations, "confidence": confidence, "n_boot": n_boot,
          "seed": seed}
    rows = data.items.index.get_indexer(chosen.index)
    people_rdm, hidden = answer_dissimilarity(answers), cosine_dissimilarity(vectors[rows])
    model = rsa(people_rdm, hidden, names=("people", "hidden states"), **kw)
    ceiling = rsa(answer_dissimilarity(answers[::2]), answer_dissimilarity(answers[1::2]),
                  names=("people (odd)", "people (even)"), **kw)
    refs, persona = {"hidden states": hidden}, None
    if engine is not None:
        if not 3 <= n_personas <= len(matrix):
            raise AuditInputError(f"n_personas must be between 3 and {len(matrix)}; got {n_personas}")
        scores = personality_scores(data)
        who = np.random.default_rng(seed).choice(scores.index.to_numpy(), n_personas, replace=False)
        ratings = persona_ratings(engine, personality_items(chosen, keyed=False),
                                  [persona_prompt(scores.loc[p], scores) for p in who],
                                  design or PromptDesign(instruction=IPIP_INSTRUCTION, instruction_name="ipip"),
                                  orders=orders)
        refs["persona answers"] = answer_dissimilarity(ratings)
        persona = rsa(people_rdm, refs["persona answers"], names=("people", "persona answers"), **kw)
    people = person_rsa(answers, refs, index=matrix.index)
    return ItemStructure(model, ceiling, people, persona, confidence, n_boot, seed)


@dataclass(repr=False)
class PreferenceStudy(Result):
    """:func:`preference_study`: reward models of real people. ``comparison``: the fitters on the
    seen people's held-out pairs; ``curves``: people never seen in training, after a few of their
    own pairs; ``groups``: the mixtures' clusters of people (seen and adapted); ``covariates``:
    per user sex, age, country and Big-Five scores (:func:`~plural_kit.data.papi.user_covariates`)."""

    comparison: ModelComparison
    curves: FewShotCurves
    groups: UserRepresentations
    covariates: pd.DataFrame
    confidence: float = 0.95
    n_boot: int = 1000
    seed: int = 0

    title = "Reward models of real people"

    def to_frame(self) -> pd.DataFrame:
        """The comparison's table (accuracy with its interval over users, per model)."""
        return self.comparison.to_frame()

    def claims(self) -> Claims:
        """``bt_beats_chance``; ``<model>_beats_bt`` per pluralistic model; ``bt_few_shot_gain``
        (the largest shot against none); and whether MixtureBT's two groups follow sex
        (ARI), differ in age or in a Big-Five domain (:func:`group_difference_claim`)."""
        kw = {"confidence": self.confidence, "n_boot": self.n_boot, "seed": self.seed}
        m, k = self.comparison, max(self.curves.shots)
        out = [m.claim("bt_beats_chance", "one BT reward ranks a seen person's held-out pairs better than chance",
                       "BT", threshold=0.5, **kw)]
        out += [m.claim(f"{name.lower()}_beats_bt", f"{name} beats one BT reward on real people's held-out pairs",
                        name, "BT", **kw) for name in m.models if name != "BT"]
        out.append(self.curves.gain_claim("bt_few_shot_gain", "a person's own pairs make BT more accurate for "
                                          "them", "BT", k, **kw))
        if "MixtureBT" in self.groups.clusters:
            g, who = self.groups, self.covariates
            out += [g.ari_claim("mixture_groups_follow_sex", "MixtureBT's two groups of people follow their sex",
                                "MixtureBT", **kw),
                    g.difference_claim("mixture_groups_differ_in_age", "MixtureBT's two groups of people differ "
                                       "in age", "MixtureBT", who["age"], **kw),
                    g.difference_claim("mixture_groups_differ_in_big_five", "MixtureBT's two groups of people "
                                       "differ in a Big-Five domain", "MixtureBT", who[list(DOMAINS)], **kw)]
        return Claims(out)

    def to_dict(self) -> dict:
        return jsonable({"comparison": self.comparison.to_dict(), "few_shot": self.curves.to_dict(),
                         "groups": self.groups.to_dict(), "claims": self.claims().to_dict()})

    def _repr_fields(self) -> dict:
        return {"models": list(self.comparison.models), "shots": list(self.curves.shots)}

    def plot(self, ax=None, title: str | None = None):
        """Seen people's held-out accuracy per model (left) and the few-shot curves of unseen people
        (right); ``ax``: a pair of axes (default: a new figure). Returns the axes."""
        import matplotlib.pyplot as plt

        axes = plt.subplots(1, 2, figsize=(12, 3.8))[1] if ax is None else ax
        self.comparison.plot(ax=axes[0], references={"chance": 0.5}, xlim=(0.4, 1.0),
                             title=title or "seen people, held-out statements")
        self.curves.plot(ax=axes[1])
        plt.tight_layout()
        return axes


def preference_study(data: PAPI, vectors: np.ndarray, *, models: Mapping[str, object] | None = None,
                     n_people: int = 40, n_unseen: int = 20, shots: Sequence[int] = (0, 5, 20),
                     n_components: int = 16, vpl_steps: int = 200, device: str = "auto", confidence: float = 0.95,
                     n_boot: int = 1000, seed: int = 0) -> PreferenceStudy:
    """Reward models fitted to real people's pairs (:func:`~plural_kit.data.papi.make_papi_preferences`).

    ``vectors``: (300, d), one row per item of ``data.items`` (e.g. hidden states), standardised and
    reduced to ``n_components`` principal components fitted on the training statements only
    (:func:`~plural_kit.reward.experiments.reduce_embeddings`). ``models``: ``{name: unfitted
    model}`` with a ``"BT"`` (default: BradleyTerry, MixtureBT(2), PAL(2), VPL(latent 2,
    ``vpl_steps``)), fitted on ``n_people`` seen people and compared on their held-out pairs;
    then ``adapt``-ed to ``n_unseen`` new people with each of ``shots`` of their own pairs.
    """
    vectors = _item_vectors(data, vectors)
    models = dict(models or {"BT": BradleyTerry(device=device),
                             "MixtureBT": MixtureBT(n_components=2, random_state=seed, device=device),
                             "PAL": PAL(n_prototypes=2, random_state=seed, device=device),
                             "VPL": VPL(latent_dim=2, n_steps=vpl_steps, random_state=seed, device=device)})
    if "BT" not in models:
        raise AuditInputError(f"models must include a 'BT' baseline; got {list(models)}")
    prefs = make_papi_preferences(data, n_people=n_people, n_unseen=n_unseen, n_adapt_pairs=max(max(shots), 1),
                                  seed=seed)
    split = {s: prefs[prefs["split"] == s] for s in ("train", "test", "unseen_adapt", "unseen_test")}
    fit_on = pd.unique(split["train"][["chosen", "rejected"]].to_numpy().ravel())
    X = reduce_embeddings(vectors, data.items["text"].tolist(), fit_on=fit_on, n_components=n_components, seed=seed)
    comparison = compare_models(models, text_pairs(X, split["train"]), text_pairs(X, split["test"]),
                                confidence=confidence, n_boot=n_boot, seed=seed)
    curves = few_shot_curves(dict(comparison.models), shots, pool=text_pairs(X, split["unseen_adapt"]),
                             evaluation=text_pairs(X, split["unseen_test"]))
    who = user_covariates(data)
    clustering = {m: curves[m].adapted for m in models if getattr(curves[m].adapted, "_group_weights", False)}
    groups = user_representations(clustering, who["sex"], n_groups=2, seen=split["train"]["user"], seed=seed)
    return PreferenceStudy(comparison, curves, groups, who, confidence, n_boot, seed)
