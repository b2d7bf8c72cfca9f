"""Anthropic persona statements (Perez et al. 2022, CC BY 4.0) and PAL-style semi-synthetic
heterogeneous preferences built from them.

Each persona file ``persona/<trait>.jsonl`` holds up to 1,000 statements with the answer
(``" Yes"``/``" No"``) that a person with the trait would give to "Is the following something you
would say?". A *group* of users holds a few traits, each with a polarity (+1: has the trait, -1:
has its opposite); a pair is a statement a trait-holder would say against one they would not; a
user prefers the statement that matches their group's polarity. This is the "Persona" setup of
PAL (Chen et al. 2024): heterogeneous, low-dimensional preferences with known ground truth on real
text, with seen users (train/test pairs) and unseen users of the same groups (few-shot tests).
"""
from __future__ import annotations

import difflib
import math
import os
from functools import lru_cache

import numpy as np
import pandas as pd

from plural_kit.data._io import parse, stamp
from plural_kit.data.home import _load_registry
from plural_kit.data.schema import validate_preferences
from plural_kit.io import jsonable
from plural_kit.results import Result, Summary, frame_summary

__all__ = ["DEFAULT_TRAITS", "SPLITS", "PersonaSplits", "list_persona_traits", "load_persona",
           "make_persona_preferences"]

_PREFIX = "anthropic_evals/persona/"
#: the Big Five, the default persona dimensions of :func:`make_persona_preferences`
DEFAULT_TRAITS: tuple[str, ...] = ("agreeableness", "conscientiousness", "extraversion", "neuroticism", "openness")
_COLUMNS = [
    "trait",
    "statement",
    "question",
    "answer_matching_behavior",
    "answer_not_matching_behavior",
    "label_confidence",
    "agrees",
]

PathLike = str | os.PathLike | None


def list_persona_traits() -> list[str]:
    """The 135 persona traits (file names without ``.jsonl``), sorted."""
    files = _load_registry()["files"]
    return sorted(k[len(_PREFIX) : -len(".jsonl")] for k in files if k.startswith(_PREFIX) and k.endswith(".jsonl"))


def _check_traits(traits) -> list[str]:
    known = list_persona_traits()
    if isinstance(traits, str):
        traits = [traits]
    traits = list(traits)
    if not traits:
        raise ValueError("traits is empty")
    for t in traits:
        if t not in known:
            close = difflib.get_close_matches(str(t), known, n=3)
            raise ValueError(
                f"unknown persona trait {t!r}" + (f"; did you mean {close}?" if close else "")
                + " (plural_kit.data.list_persona_traits() lists all 135)"
            )
    if len(set(traits)) != len(traits):
        raise ValueError(f"traits repeat: {traits}")
    return traits


def load_persona(
    traits: str | list[str] | None = None, *, min_label_confidence: float = 0.0, data_home: PathLike = None
) -> pd.DataFrame:
    """Persona statements with their trait.

    Parameters
    ----------
    traits : trait name(s) (see :func:`list_persona_traits`); None loads all 135 (133,204 rows).
    min_label_confidence : keep statements whose ``label_confidence`` (the labelling preference
        model's probability that the label is right) is at least this.

    Returns
    -------
    DataFrame: ``trait, statement, question, answer_matching_behavior`` (``" Yes"``/``" No"``, with
    the leading space as published), ``answer_not_matching_behavior, label_confidence``, ``agrees``
    (bool: a person with the trait would say the statement, i.e. the matching answer is Yes).
    """
    traits = list_persona_traits() if traits is None else _check_traits(traits)
    frames = [_persona_file(stamp(f"{_PREFIX}{t}.jsonl", data_home), t) for t in traits]
    df = pd.concat(frames, ignore_index=True)
    if min_label_confidence > 0:
        df = df[df["label_confidence"] >= min_label_confidence].reset_index(drop=True)
    return df


@lru_cache(maxsize=256)
def _persona_file(st, trait: str) -> pd.DataFrame:
    df = pd.DataFrame(parse(st, "jsonl"))
    missing = {"statement", "question", "answer_matching_behavior", "answer_not_matching_behavior"} - set(df.columns)
    if missing:
        raise ValueError(f"{st[0]}: persona file lacks fields {sorted(missing)}")
    answers = set(df["answer_matching_behavior"].str.strip())
    if not answers <= {"Yes", "No"}:
        raise ValueError(f"{st[0]}: answer_matching_behavior must be ' Yes' or ' No', got {sorted(answers)}")
    if "label_confidence" not in df:
        df["label_confidence"] = np.nan
    df.insert(0, "trait", trait)
    df["agrees"] = df["answer_matching_behavior"].str.strip().eq("Yes")
    return df[_COLUMNS]


def _sample_groups(traits, n_groups, traits_per_group, rng) -> list[dict[str, int]]:
    k = len(traits)
    if not 1 <= traits_per_group <= k:
        raise ValueError(f"traits_per_group must be in [1, {k}] (the number of traits), got {traits_per_group}")
    n_possible = math.comb(k, traits_per_group) * 2**traits_per_group
    if not 1 <= n_groups <= n_possible:
        raise ValueError(
            f"n_groups must be in [1, {n_possible}]: {k} traits taken {traits_per_group} at a time with "
            f"two polarities each give {n_possible} distinct groups; got {n_groups}"
        )
    groups: list[dict[str, int]] = []
    seen = set()
    while len(groups) < n_groups:
        chosen = sorted(rng.choice(k, size=traits_per_group, replace=False))
        pol = rng.choice([1, -1], size=traits_per_group)
        key = tuple(zip(chosen, pol))
        if key not in seen:
            seen.add(key)
            groups.append({traits[i]: int(p) for i, p in zip(chosen, pol)})
    return groups


def _describe(group: dict[str, int]) -> str:
    return " ".join(("+" if p > 0 else "-") + t for t, p in group.items())


def make_persona_preferences(
    traits: list[str] | tuple[str, ...] = DEFAULT_TRAITS,
    *,
    n_groups: int = 4,
    traits_per_group: int = 2,
    groups: list[dict[str, int]] | None = None,
    users_per_group: int = 10,
    unseen_users_per_group: int = 5,
    n_train_pairs: int = 40,
    n_test_pairs: int = 20,
    n_adapt_pairs: int = 20,
    noise: float = 0.0,
    test_statement_fraction: float = 0.5,
    min_label_confidence: float = 0.0,
    prompt: str | None = None,
    seed: int = 0,
    data_home: PathLike = None,
) -> pd.DataFrame:
    """PAL-style heterogeneous preferences over persona statements, in the preference schema.

    Groups: ``n_groups`` distinct sets of ``traits_per_group`` of the ``traits``, each with a
    polarity (+1 holds the trait, -1 holds its opposite), drawn at random — or given explicitly as
    ``groups=[{"agreeableness": 1, "neuroticism": -1}, ...]``. A pair for a user of group g: pick
    one of g's traits t uniformly; draw a statement that a holder of t would say and one they
    would not (from t's file); the user chooses the one matching g's polarity on t. With
    probability ``noise`` the label is flipped (column ``flipped``).

    Splits (column ``split``): seen users (``users_per_group`` per group) get ``n_train_pairs``
    ``"train"`` and ``n_test_pairs`` ``"test"`` pairs; unseen users (``unseen_users_per_group`` per
    group, never in train) get ``n_adapt_pairs`` ``"unseen_adapt"`` pairs (the few-shot pool: take
    each user's first k) and ``n_test_pairs`` ``"unseen_test"`` pairs. The statements of each trait
    are split once (``test_statement_fraction`` held out): train/unseen_adapt pairs use the other
    statements, test/unseen_test pairs only the held-out ones, so test pairs are new text.

    Returns
    -------
    DataFrame sorted by user then split, one row per pair: ``user`` ("u000", ...; seen users
    first), ``chosen``, ``rejected`` (statement texts), ``group`` (int), ``split``, ``trait`` (the
    trait the pair is about), ``polarity`` (the group's polarity on it), ``flipped`` (label noise
    applied), ``group_traits`` (e.g. "+agreeableness -neuroticism"), and ``prompt`` if given.
    Validated with :func:`~plural_kit.data.validate_preferences`.
    """
    rng = np.random.default_rng(seed)
    traits = _check_traits(traits)
    if not 0.0 <= noise <= 0.5:
        raise ValueError(f"noise must be in [0, 0.5] (the label-flip probability), got {noise}")
    if not 0.0 < test_statement_fraction < 1.0:
        raise ValueError(f"test_statement_fraction must be in (0, 1), got {test_statement_fraction}")
    positive = (("users_per_group", users_per_group), ("n_train_pairs", n_train_pairs), ("n_test_pairs", n_test_pairs))
    for name, value in positive:
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    for name, value in (("unseen_users_per_group", unseen_users_per_group), ("n_adapt_pairs", n_adapt_pairs)):
        if int(value) != value or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value}")
    if groups is None:
        groups = _sample_groups(traits, n_groups, traits_per_group, rng)
    else:
        groups = [dict(g) for g in groups]
        if not groups:
            raise ValueError("groups is empty")
        for g in groups:
            _check_traits(list(g))
            bad = {t: p for t, p in g.items() if p not in (1, -1)}
            if bad:
                raise ValueError(f"group polarities must be +1 or -1, got {bad}")
            missing = [t for t in g if t not in traits]
            if missing:
                raise ValueError(f"group traits {missing} are not in traits={traits}")
        if len({tuple(sorted(g.items())) for g in groups}) != len(groups):
            raise ValueError("groups repeat")

    statements = load_persona(traits, min_label_confidence=min_label_confidence, data_home=data_home)
    # pools[trait][(agrees, held_out)] -> array of statement texts
    pools: dict[str, dict[tuple[bool, bool], np.ndarray]] = {}
    for t in traits:
        pools[t] = {}
        for agrees in (True, False):
            s = statements.loc[(statements.trait == t) & (statements.agrees == agrees), "statement"].to_numpy()
            if len(s) < 2:
                raise ValueError(f"trait {t!r} has fewer than 2 statements with agrees={agrees}")
            s = s[rng.permutation(len(s))]
            n_test = min(max(1, int(round(test_statement_fraction * len(s)))), len(s) - 1)
            pools[t][(agrees, True)], pools[t][(agrees, False)] = s[:n_test], s[n_test:]

    plan = [("train", False, n_train_pairs, True), ("test", True, n_test_pairs, True),
            ("unseen_adapt", False, n_adapt_pairs, False), ("unseen_test", True, n_test_pairs, False)]
    rows: list[dict] = []
    n_seen = users_per_group * len(groups)
    for seen in (True, False):
        per_group = users_per_group if seen else unseen_users_per_group
        for gi, g in enumerate(groups):
            g_traits = list(g)
            for j in range(per_group):
                uid = gi * per_group + j + (0 if seen else n_seen)
                user = f"u{uid:03d}"
                for split, held_out, n_pairs, for_seen in plan:
                    if for_seen != seen:
                        continue
                    for _ in range(n_pairs):
                        t = g_traits[rng.integers(len(g_traits))]
                        yes = pools[t][(True, held_out)]
                        no = pools[t][(False, held_out)]
                        s_yes, s_no = yes[rng.integers(len(yes))], no[rng.integers(len(no))]
                        chosen, rejected = (s_yes, s_no) if g[t] > 0 else (s_no, s_yes)
                        flipped = bool(rng.random() < noise)
                        if flipped:
                            chosen, rejected = rejected, chosen
                        rows.append(
                            {"user": user, "chosen": chosen, "rejected": rejected, "group": gi, "split": split,
                             "trait": t, "polarity": g[t], "flipped": flipped, "group_traits": _describe(g)}
                        )
    df = pd.DataFrame(rows)
    if prompt is not None:
        df.insert(1, "prompt", prompt)
    df = df.sort_values(["user"], kind="stable", ignore_index=True)
    return validate_preferences(df)


#: the splits of :func:`make_persona_preferences`, in the order they are reported
SPLITS: tuple[str, ...] = ("train", "test", "unseen_adapt", "unseen_test")


class PersonaSplits(Result):
    """The pairs of :func:`make_persona_preferences` by split, and what a lesson reads off them.

    ``splits["train"]``: the pairs of one split (a frame, rows in table order); :attr:`group_names`,
    :attr:`user_groups`, :attr:`traits`; :meth:`statements` (the distinct texts to embed);
    :meth:`oracle` and :meth:`group_labels` (per pair of a split); :meth:`examples` (one training
    pair per group). ``to_frame``: users and pairs per split.
    """

    title = "persona preferences: users and pairs per split"

    def __init__(self, pairs: pd.DataFrame):
        missing = {"user", "chosen", "rejected", "group", "split", "flipped", "group_traits", "trait"} - set(pairs)
        if missing:
            raise ValueError(f"pairs lack columns {sorted(missing)} (make_persona_preferences has them)")
        unknown = set(pairs["split"]) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown splits {sorted(unknown)}; splits are {list(SPLITS)}")
        self.pairs = pairs

    def __getitem__(self, split: str) -> pd.DataFrame:
        if split not in SPLITS:
            raise KeyError(f"no split {split!r}; splits are {list(SPLITS)}")
        return self.pairs[self.pairs["split"] == split]

    @property
    def group_names(self) -> pd.Series:
        """Each group's traits with their polarity (``"+openness -neuroticism"``), indexed by group."""
        return self.pairs.groupby("group")["group_traits"].first()

    @property
    def user_groups(self) -> pd.Series:
        """Each user's group, indexed by user."""
        return self.pairs.groupby("user")["group"].first()

    @property
    def traits(self) -> list[str]:
        """The traits the pairs are about, sorted."""
        return sorted(self.pairs["trait"].unique())

    def statements(self, split: str | None = None) -> pd.Index:
        """The distinct texts of the pairs of ``split`` (all pairs when None): the chosen ones in
        table order, then the rejected ones not seen yet."""
        table = self.pairs if split is None else self[split]
        return pd.Index(pd.unique(pd.concat([table["chosen"], table["rejected"]])))

    def oracle(self, split: str) -> np.ndarray:
        """(n,) the oracle's probability of each observed winner of ``split``: 1, and 0 where the
        label was flipped (label noise)."""
        return 1.0 - self[split]["flipped"].to_numpy(float)

    def group_labels(self, split: str) -> pd.Series:
        """Each pair's group as ``"0: +openness -neuroticism"`` (for tables and figures)."""
        names = self.group_names
        return self[split]["group"].map(lambda g: f"{g}: {names[g]}")

    def examples(self) -> Summary:
        """The first training pair of each group, the statements in full."""
        first = self["train"].groupby("group").head(1)[["user", "group_traits", "chosen", "rejected"]]
        return frame_summary("one training pair per group", first)

    def to_frame(self) -> pd.DataFrame:
        """``users`` and ``pairs`` per split (rows in :data:`SPLITS` order, the splits present)."""
        counts = self.pairs.groupby("split").agg(users=("user", "nunique"), pairs=("user", "size"))
        return counts.loc[[s for s in SPLITS if s in counts.index]]

    def summary(self) -> Summary:
        """The users and pairs per split and the number of distinct statements (to embed)."""
        frame, note = self.to_frame(), f"distinct statements to embed: {len(self.statements())}"
        return Summary(f"{frame.to_string()}\n{note}", frame_summary(self.title, frame, note).as_html())

    def to_dict(self) -> dict:
        """``groups`` (group -> traits), ``splits`` (the table as lists) and ``n_statements``."""
        return jsonable({"groups": self.group_names.to_dict(),
                         "splits": self.to_frame().reset_index().to_dict(orient="list"),
                         "n_statements": len(self.statements())})

    def _repr_fields(self) -> dict:
        return {"pairs": len(self.pairs), "users": self.pairs["user"].nunique(), "groups": len(self.group_names)}
