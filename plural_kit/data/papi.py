"""Real people's personalities: the PAPI test set (Zhu et al. 2025) of the IPIP-NEO-300.

300 respondents (a subset of J. A. Johnson's public IPIP-NEO data) rated each of the 300
IPIP-NEO statements ("Worry about things.") from 1 (very inaccurate as a description of
oneself) to 5 (very accurate), with their sex, age and country. Each item belongs to one of 30
facets and one of the Big-Five domains (O, C, E, A, N) and has a key: +1 counts toward its
facet, -1 (reverse-keyed) against it, so the keyed answer of a reverse-keyed item is
``6 - answer``. A domain (or facet) score is the mean keyed answer over its items.

Files (``papi/`` in the data home, fetched from zhu-minjun/PAlign at a pinned commit with a
sha256 check, see :mod:`plural_kit.data.home`): ``Test-set.json`` (the respondents) and
``mpi_300.csv`` (the items). An answer of 0 in the file means "not answered" and is dropped.

Two facts about the files that their documentation does not state, both checked on the data:

* ``mpi_300.csv`` lists the items in the order of the IPIP-NEO item-key spreadsheet — the 120
  items of the short form first (:data:`IPIP120_ITEMS`, the ``train_index`` of the repository's
  ``mpi_300_split.json``), then the other 180 by item number — so its row r is *not* item
  ``i{r+1}``. With this mapping a facet's items correlate 0.5-0.7 with their domain, against
  0.1-0.4 when row r is taken for item r+1.
* The answers in ``Test-set.json`` are already *keyed* (Johnson's data are scored so that 5 means
  more of the facet): the file's value for "Am relaxed most of the time" (reverse-keyed,
  Neuroticism) correlates +0.46 with "Worry about things". The loader turns them back into the
  rating the person gave the statement (``answer = 6 - value`` for reverse-keyed items), so
  that ``answer`` means what the statement says and the keyed score is ``6 - answer`` again.

Pairs for reward models (:func:`make_papi_preferences`): a person who rated statement a above
statement b says "a describes me more than b"; ties are dropped.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from plural_kit import stats, viz
from plural_kit.data._io import parse, stamp
from plural_kit.data.schema import validate_preferences

__all__ = [
    "DOMAINS",
    "DOMAIN_NAMES",
    "IPIP120_ITEMS",
    "PAPI",
    "domain_distributions",
    "group_summaries",
    "keyed_answers",
    "load_papi",
    "make_papi_preferences",
    "personality_scores",
    "plot_domain_scores",
    "user_covariates",
]

#: the Big-Five domains in the file's letters, and their names
DOMAINS: tuple[str, ...] = ("O", "C", "E", "A", "N")
DOMAIN_NAMES: dict[str, str] = {"O": "Openness", "C": "Conscientiousness", "E": "Extraversion",
                                "A": "Agreeableness", "N": "Neuroticism"}
SEX = {1: "male", 2: "female"}
#: item numbers (of the 300) of the IPIP-NEO-120 short form, in the order of the rows of
#: ``mpi_300.csv`` (``train_index`` of PAPI/mpi_300_split.json at the registered commit)
IPIP120_ITEMS: tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 99, 40, 11, 12, 13, 74, 45, 76, 17, 18, 169, 50, 111, 22, 53, 144, 55, 26, 27, 28, 29,
    120, 31, 62, 33, 34, 35, 36, 37, 68, 159, 160, 41, 42, 43, 104, 105, 106, 47, 138, 199, 140, 171, 52, 203, 174,
    145, 56, 57, 58, 59, 150, 61, 212, 63, 64, 65, 126, 157, 188, 249, 190, 71, 132, 223, 194, 165, 136, 77, 168,
    229, 260, 201, 142, 233, 204, 205, 86, 147, 148, 149, 210, 91, 272, 93, 184, 155, 216, 247, 218, 279, 220, 251,
    162, 283, 284, 195, 256, 167, 288, 259, 290, 231, 172, 263, 264, 265, 176, 177, 268, 239, 270)

_RESPONDENTS = "papi/Test-set.json"
_ITEMS = "papi/mpi_300.csv"
PathLike = str | os.PathLike | None


@dataclass(frozen=True)
class PAPI:
    """The PAPI test set.

    ``answers``: tidy, one row per (person, item) answered: ``person`` (the respondent's case id,
    int), ``sex`` ("male"/"female"), ``age`` (years), ``country``, ``item`` ("i1".."i300"),
    ``answer`` (1-5: how accurately the statement describes them). ``items``: one row per item in
    questionnaire order (i1..i300): ``item``, ``text``, ``facet``, ``domain`` (one of
    :data:`DOMAINS`), ``key`` (+1 / -1), ``short_form`` (in the IPIP-NEO-120).
    """

    answers: pd.DataFrame
    items: pd.DataFrame

    @property
    def people(self) -> pd.DataFrame:
        """One row per person (file order): ``person, sex, age, country``."""
        return self.answers.drop_duplicates("person")[["person", "sex", "age", "country"]].reset_index(drop=True)

    def matrix(self, keyed: bool = False) -> pd.DataFrame:
        """People × items (file and questionnaire order) of answers (keyed: reverse keys applied);
        NaN where a person did not answer."""
        wide = self.answers.pivot(index="person", columns="item", values="answer")
        wide = wide.reindex(index=self.people["person"], columns=self.items["item"]).astype(float)
        if keyed:
            wide = keyed_answers(wide, self.items.set_index("item")["key"])
        return wide


def load_papi(data_home: PathLike = None) -> PAPI:
    """The 300 respondents' answers to the 300 IPIP-NEO items, and the items (see :class:`PAPI`).

    Files are read from ``<data_home>/papi/`` or downloaded from the PAlign repository at the
    registered commit; a copy whose sha256 differs from the registry's raises
    :class:`~plural_kit.data.DataChecksumError`.
    """
    answers, items = _papi(stamp(_RESPONDENTS, data_home), stamp(_ITEMS, data_home))
    return PAPI(answers.copy(), items.copy())


@lru_cache(maxsize=4)
def _papi(st_people, st_items) -> tuple[pd.DataFrame, pd.DataFrame]:
    raw_items = parse(st_items, "csv")
    missing = {"label_raw", "text", "label_ocean", "key"} - set(raw_items.columns)
    if missing:
        raise ValueError(f"{st_items[0]}: IPIP-NEO item file lacks columns {sorted(missing)}")
    if len(raw_items) != 300:
        raise ValueError(f"{st_items[0]}: expected the 300 IPIP-NEO items, got {len(raw_items)} rows")
    number = np.array([*IPIP120_ITEMS, *sorted(set(range(1, 301)) - set(IPIP120_ITEMS))])
    items = pd.DataFrame({"item": [f"i{k}" for k in number], "text": raw_items["text"].astype(str),
                          "facet": raw_items["label_raw"].astype(str), "domain": raw_items["label_ocean"].astype(str),
                          "key": raw_items["key"].astype(int), "short_form": np.arange(300) < len(IPIP120_ITEMS)})
    items = items.iloc[np.argsort(number)].reset_index(drop=True)
    if not set(items["domain"]) <= set(DOMAINS) or not set(items["key"]) <= {1, -1}:
        raise ValueError(f"{st_items[0]}: domains must be in {DOMAINS} and keys +1/-1")
    people = parse(st_people, "json")
    if not isinstance(people, list) or not people:
        raise ValueError(f"{st_people[0]}: expected a JSON list of respondents")
    cols = list(items["item"])
    lacking = [k for k in ("case", "sex", "age", "country", *cols) if k not in people[0]]
    if lacking:
        raise ValueError(f"{st_people[0]}: respondents lack fields {lacking[:5]}")
    wide = pd.DataFrame([{k: p[k] for k in ("case", "sex", "age", "country", *cols)} for p in people])
    wide = wide.rename(columns={"case": "person"})
    wide["sex"] = wide["sex"].map(SEX)
    if wide["sex"].isna().any():
        raise ValueError(f"{st_people[0]}: sex must be 1 (male) or 2 (female)")
    long = wide.melt(id_vars=["person", "sex", "age", "country"], value_vars=cols, var_name="item", value_name="answer")
    bad = ~long["answer"].isin(range(6))
    if bad.any():
        raise ValueError(f"{st_people[0]}: answers must be 0 (not answered) or 1-5; got {long.loc[bad, 'answer'].iloc[0]!r}")
    long = long[long["answer"] > 0]
    reverse = long["item"].map(items.set_index("item")["key"]).to_numpy() < 0
    long["answer"] = np.where(reverse, 6 - long["answer"], long["answer"])     # the file's values are keyed
    order = {p: i for i, p in enumerate(wide["person"])}
    long = long.assign(_p=long["person"].map(order), _i=long["item"].str[1:].astype(int))
    long = long.sort_values(["_p", "_i"]).drop(columns=["_p", "_i"]).reset_index(drop=True)
    long["answer"] = long["answer"].astype(int)
    return long, items


def keyed_answers(answers, keys) -> pd.DataFrame | np.ndarray:
    """Answers with reverse keys applied: ``answer`` where the key is +1, ``6 - answer`` where -1.

    ``answers``: people × items (DataFrame with item columns, or an array (n, n_items));
    ``keys``: the items' keys (a Series indexed by item for a DataFrame, else (n_items,)).
    """
    if isinstance(answers, pd.DataFrame):
        k = pd.Series(keys).reindex(answers.columns)
        if k.isna().any():
            raise ValueError(f"no key for items {list(answers.columns[k.isna().to_numpy()])[:5]}")
        return answers.where(np.broadcast_to(k.to_numpy() > 0, answers.shape), 6 - answers)
    a, k = np.asarray(answers, dtype=float), np.asarray(keys)
    if a.shape[-1] != k.shape[0]:
        raise ValueError(f"{k.shape[0]} keys for {a.shape[-1]} items")
    return np.where(k > 0, a, 6 - a)


def personality_scores(data: PAPI, level: str = "domain") -> pd.DataFrame:
    """People × domains (``level="domain"``, columns :data:`DOMAINS`) or × facets (``"facet"``):
    the mean keyed answer over the items answered (1-5)."""
    if level not in ("domain", "facet"):
        raise ValueError(f"level must be 'domain' or 'facet', got {level!r}")
    keyed = data.matrix(keyed=True)
    group = data.items.set_index("item")[level].reindex(keyed.columns)
    out = keyed.T.groupby(group.to_numpy(), sort=False).mean().T
    return out.reindex(columns=list(DOMAINS)) if level == "domain" else out


def _user_id(person) -> str:
    """A person's user id in the preference schema: ``"p<person>"``."""
    return f"p{person}"


def user_covariates(data: PAPI) -> pd.DataFrame:
    """One row per person, indexed by their preference user id (``"p<person>"``, as
    :func:`make_papi_preferences` names them): ``sex``, ``age``, ``country`` and the domain
    scores (columns :data:`DOMAINS`, :func:`personality_scores`)."""
    who = data.people.set_index("person")
    out = who.join(personality_scores(data))
    out.index = pd.Index([_user_id(p) for p in out.index], name="user")
    return out


def _group_labels(people: pd.DataFrame, by: str, age_bins: tuple[int, ...]) -> pd.Series:
    if by == "age":
        edges = [-np.inf, *age_bins, np.inf]
        names = [f"<{age_bins[0]}"] + [f"{a}-{b - 1}" for a, b in itertools.pairwise(age_bins)] + [f"{age_bins[-1]}+"]
        return pd.cut(people["age"], edges, right=False, labels=names).astype(str)
    if by == "all":
        return pd.Series("all", index=people.index)
    if by not in ("sex", "country"):
        raise ValueError(f"by must be 'sex', 'age', 'country' or 'all', got {by!r}")
    return people[by].astype(str)


def domain_distributions(data: PAPI, by: str = "sex", *, age_bins: tuple[int, ...] = (25, 40),
                         min_size: int = 5) -> pd.DataFrame:
    """Per-group distributions of the five domain scores, in the layout of
    :func:`plural_kit.data.country_foundation_distributions` (so the audit's comparisons apply).

    ``by``: ``"sex"``, ``"age"`` (bins at ``age_bins``), ``"country"`` or ``"all"``; groups with
    fewer than ``min_size`` people are left out. Returns one row per (group, domain): ``<by>``,
    ``foundation`` (the domain letter, named as in the MFQ-2 tables), ``n``, ``mean``, ``sd``,
    ``sem``, ``scores`` (the people's domain scores, (n,) float).
    """
    scores = personality_scores(data)
    labels = _group_labels(data.people, by, age_bins).to_numpy()
    rows = []
    for g in sorted(set(labels)):
        sub = scores.to_numpy()[labels == g]
        if len(sub) < min_size:
            continue
        for j, d in enumerate(DOMAINS):
            s = sub[:, j]
            sd = float(np.std(s, ddof=1))
            rows.append({by: g, "foundation": d, "n": len(s), "mean": float(s.mean()), "sd": sd,
                         "sem": sd / np.sqrt(len(s)), "scores": s})
    if not rows:
        raise ValueError(f"no group of {by!r} has at least {min_size} people")
    return pd.DataFrame(rows)


def group_summaries(data: PAPI, by: str = "sex", *, age_bins: tuple[int, ...] = (25, 40), min_size: int = 5,
                    confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Mean domain score per group with a bootstrap interval over the group's people.

    Returns one row per (group, domain): ``<by>, domain, n, mean, ci_low, ci_high, sd`` (groups
    with fewer than ``min_size`` people left out; see :func:`domain_distributions`).
    """
    dist = domain_distributions(data, by, age_bins=age_bins, min_size=min_size)
    rows = []
    for r in dist.itertuples(index=False):
        iv = stats.bootstrap_ci(r.scores, confidence=confidence, n_boot=n_boot, seed=seed)
        rows.append({by: getattr(r, by), "domain": r.foundation, "n": r.n, "mean": iv.estimate,
                     "ci_low": iv.ci_low, "ci_high": iv.ci_high, "sd": r.sd})
    return pd.DataFrame(rows)


def plot_domain_scores(data: PAPI, summaries: pd.DataFrame | None = None, *, ax=None,
                       title: str = "Big-Five scores of 300 people"):
    """Boxes of every person's domain scores with the group means of ``summaries``
    (:func:`group_summaries`) as dots; returns the axes."""
    long = personality_scores(data).melt(var_name="foundation", value_name="scores")
    dots = None if summaries is None else summaries.rename(columns={"domain": "foundation", "mean": "scores"})
    label = "group means" if summaries is None else "mean of " + " / ".join(map(str, summaries.iloc[:, 0].unique()))
    return viz.boxes(long, x="foundation", y="scores", dots=dots, dots_label=label, ylabel="domain score (1-5)",
                     title=title, ax=ax)


def _pairs(answers: np.ndarray, items: np.ndarray, n_pairs: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Up to ``n_pairs`` distinct (winner, loser) item indices among ``items`` with different answers."""
    a = answers[items]
    ok = items[np.isfinite(a)]
    i, j = np.triu_indices(len(ok), k=1)
    ai, aj = answers[ok[i]], answers[ok[j]]
    keep = ai != aj                                                       # ties dropped
    i, j, ai, aj = ok[i[keep]], ok[j[keep]], ai[keep], aj[keep]
    pick = rng.permutation(len(i))[:n_pairs]
    return [(int(i[p]), int(j[p])) if ai[p] > aj[p] else (int(j[p]), int(i[p])) for p in pick]


def make_papi_preferences(data: PAPI, *, n_people: int = 60, n_unseen: int = 20, n_train_pairs: int = 40,
                          n_test_pairs: int = 20, n_adapt_pairs: int = 20, test_item_fraction: float = 0.3,
                          seed: int = 0) -> pd.DataFrame:
    """Real per-person preferences: "this statement describes me more than that one".

    For a person, any two items they rated differently make a pair (the higher-rated one is
    ``chosen``; ties are dropped). Items are split once (``test_item_fraction`` held out):
    ``"train"`` and ``"unseen_adapt"`` pairs use the other items only, ``"test"`` and
    ``"unseen_test"`` pairs only held-out items, so test pairs are new statements. People: a
    seeded draw of ``n_people`` seen people (``train`` + ``test`` pairs) and ``n_unseen`` others
    never in training (``unseen_adapt``: the few-shot pool, take each person's first k;
    ``unseen_test``).

    Returns the preference schema sorted by user: ``user`` ("p<case id>"), ``chosen``,
    ``rejected`` (item texts), ``split``, ``chosen_item``, ``rejected_item``, ``margin``
    (answer difference, 1-4), ``sex``, ``age``, ``country``.
    """
    for name, v in (("n_people", n_people), ("n_train_pairs", n_train_pairs), ("n_test_pairs", n_test_pairs)):
        if int(v) != v or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v}")
    for name, v in (("n_unseen", n_unseen), ("n_adapt_pairs", n_adapt_pairs)):
        if int(v) != v or v < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {v}")
    if not 0.0 < test_item_fraction < 1.0:
        raise ValueError(f"test_item_fraction must be in (0, 1), got {test_item_fraction}")
    people = data.people
    if n_people + n_unseen > len(people):
        raise ValueError(f"n_people + n_unseen = {n_people + n_unseen} exceeds the {len(people)} people")
    rng = np.random.default_rng(seed)
    wide = data.matrix().to_numpy()
    items, texts = data.items["item"].to_numpy(), data.items["text"].to_numpy()
    order = rng.permutation(len(items))
    n_test = max(2, round(test_item_fraction * len(items)))
    held, kept = np.sort(order[:n_test]), np.sort(order[n_test:])
    chosen_people = rng.permutation(len(people))[:n_people + n_unseen]
    plan = {True: (("train", kept, n_train_pairs), ("test", held, n_test_pairs)),
            False: (("unseen_adapt", kept, n_adapt_pairs), ("unseen_test", held, n_test_pairs))}
    rows = []
    for rank, p in enumerate(chosen_people):
        person = people.iloc[p]
        for split, pool, n in plan[rank < n_people]:
            for w, l in _pairs(wide[p], pool, n, rng):
                rows.append({"user": _user_id(person["person"]), "chosen": texts[w], "rejected": texts[l],
                             "split": split,
                             "chosen_item": items[w], "rejected_item": items[l],
                             "margin": int(wide[p, w] - wide[p, l]), "sex": person["sex"], "age": int(person["age"]),
                             "country": person["country"]})
    df = pd.DataFrame(rows).sort_values("user", kind="stable", ignore_index=True)
    return validate_preferences(df)
