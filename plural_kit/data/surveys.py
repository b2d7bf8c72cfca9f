"""Human reference data for cultural audits: MFQ-2 items (shipped with the package), D3CODE
raters' moral foundations by country, SeeGULL stereotype votes, and GlobalOpinionQA (online only).

All loaders take ``data_home=None`` (see :mod:`plural_kit.data.home`) and return fresh copies.
"""
from __future__ import annotations

import ast
import os
from functools import lru_cache

import numpy as np
import pandas as pd

from plural_kit.data._io import parse, stamp
from plural_kit.data.home import data_home as _resolve_home

__all__ = [
    "FOUNDATIONS",
    "country_foundation_distributions",
    "load_d3code_raters",
    "load_global_opinion_qa",
    "load_mfq2_items",
    "load_seegull",
    "parse_global_opinions",
    "parse_selections",
]

#: the six MFQ-2 foundations, in the questionnaire's order
FOUNDATIONS: tuple[str, ...] = ("care", "equality", "proportionality", "loyalty", "authority", "purity")

_MFQ2 = "mfq2/items.csv"
_D3_RATERS = "d3code/d3-raters.csv"
_SEEGULL = {
    "global": "seegull/stereotypes_global_v2.csv",
    "us_states": "seegull/stereotypes_us_states.csv",
    "indian_states": "seegull/stereotypes_indian_states.csv",
}
_VOTES = ("stereo", "nonstereo", "unsure")

PathLike = str | os.PathLike | None


# ----------------------------------------------------------------------------------- MFQ-2
def load_mfq2_items(data_home: PathLike = None) -> pd.DataFrame:
    """The 36 MFQ-2 items (Atari et al. 2023), in questionnaire order.

    Returns a DataFrame (36, 3): ``item`` (1..36), ``foundation`` (one of :data:`FOUNDATIONS`,
    six items each), ``text``. Items are rated 1 (does not describe me at all) to 5 (describes me
    extremely well); a foundation score is the mean of its six items. The items ship with the
    package (``plural_kit/data/packaged/mfq2/``, with the citation; no network needed): they were
    transcribed from the published questionnaire, which has no machine-readable download. A copy
    at ``<data_home>/mfq2/items.csv`` is read instead when one exists.
    """
    return _mfq2(stamp(_MFQ2, data_home)).copy()


@lru_cache(maxsize=4)
def _mfq2(st) -> pd.DataFrame:
    df = parse(st, "csv")
    missing = {"item", "foundation", "text"} - set(df.columns)
    if missing:
        raise ValueError(f"{st[0]}: MFQ-2 item file lacks columns {sorted(missing)}")
    df = df[["item", "foundation", "text"]].copy()
    counts = df["foundation"].value_counts()
    if len(df) != 36 or set(counts.index) != set(FOUNDATIONS) or (counts != 6).any():
        raise ValueError(f"{st[0]}: expected 36 items, 6 per foundation {FOUNDATIONS}; got {counts.to_dict()}")
    df["item"] = df["item"].astype(int)
    return df.sort_values("item", ignore_index=True)


# ----------------------------------------------------------------------------------- D3CODE
def load_d3code_raters(data_home: PathLike = None) -> pd.DataFrame:
    """D3CODE raters (Davani et al. 2024, CC BY 4.0): one row per rater (4,309 in 21 countries).

    Columns: ``rater_id, age`` (18-30/30-50/50+), ``gender``, ``region`` (8 cultural regions),
    ``country``, ``ses`` (1-10 self-report), then the six MFQ-2 foundation scores (means of six
    items on the 1-5 scale) in :data:`FOUNDATIONS` order. Column names are lower-cased from the file.
    """
    return _d3(stamp(_D3_RATERS, data_home)).copy()


@lru_cache(maxsize=4)
def _d3(st) -> pd.DataFrame:
    df = parse(st, "csv").copy()
    df.columns = [c.lower() for c in df.columns]
    expected = ["rater_id", "age", "gender", "region", "country", "ses", *FOUNDATIONS]
    missing = [c for c in expected if c not in df.columns]
    if missing:
        raise ValueError(f"{st[0]}: D3CODE rater file lacks columns {missing}")
    df = df[expected]
    scores = df[list(FOUNDATIONS)]
    if scores.isna().any().any() or not ((scores >= 1) & (scores <= 5)).all().all():
        raise ValueError(f"{st[0]}: foundation scores must be in [1, 5] without NaN")
    return df


def country_foundation_distributions(by: str = "country", data_home: PathLike = None) -> pd.DataFrame:
    """Per-country (or per-region) distributions of the six MFQ-2 foundation scores of D3CODE raters.

    Parameters
    ----------
    by : ``"country"`` (21) or ``"region"`` (8).

    Returns
    -------
    Tidy DataFrame, one row per (``by``, foundation), sorted by ``by`` then foundation order:
    ``<by>, foundation, n`` (raters), ``mean``, ``sd`` (sample SD, ddof=1), ``sem`` (sd/sqrt(n)),
    ``scores`` (the raters' raw scores, a float ndarray of shape (n,), in rater-file order).
    For ``by="country"`` a ``region`` column names the country's region.
    """
    if by not in ("country", "region"):
        raise ValueError(f"by must be 'country' or 'region', got {by!r}")
    out = _distributions(stamp(_D3_RATERS, data_home), by).copy()
    out["scores"] = [s.copy() for s in out["scores"]]
    return out


@lru_cache(maxsize=8)
def _distributions(st, by: str) -> pd.DataFrame:
    raters = _d3(st)
    rows = []
    for key, grp in raters.groupby(by, sort=True):
        for f in FOUNDATIONS:
            s = grp[f].to_numpy(dtype=float)
            row = {by: key}
            if by == "country":
                regions = grp["region"].unique()
                row["region"] = regions[0] if len(regions) == 1 else "; ".join(sorted(regions))
            sd = float(np.std(s, ddof=1)) if len(s) > 1 else float("nan")
            row.update(foundation=f, n=len(s), mean=float(s.mean()), sd=sd, sem=sd / np.sqrt(len(s)), scores=s)
            rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- SeeGULL
def load_seegull(which: str = "global", tidy: bool = True, data_home: PathLike = None) -> pd.DataFrame:
    """SeeGULL stereotypes (Jha et al. 2023, CC BY 4.0): identity-attribute pairs with annotator votes.

    Parameters
    ----------
    which : ``"global"`` (6,781 pairs, 176 nationality identities; in-region and North-American
        annotators), ``"us_states"`` (468) or ``"indian_states"`` (39) (in-region only).
    tidy : one row per (pair, annotator group) when True; the file's wide layout (columns
        renamed, see below) when False.

    Returns
    -------
    tidy: ``identity, attribute, annotators`` (``"in_region"``: annotators living in the identity's
    region; ``"north_america"``: annotators in North America who identify with that region, i.e.
    out-of-region), ``stereo, nonstereo, unsure`` (vote counts; usually 3 votes, more for pairs
    rated several times), ``n_votes``, ``p_stereo`` (= stereo / n_votes), ``offensiveness`` (the
    file's mean offensiveness score as published: higher is more offensive, -1 = not offensive,
    NaN where absent), ``na_copied`` (global only: every pair of this identity has identical
    in-region and North-American votes; the data card says that for North-American identities the
    in-region votes were copied, so their two groups are not independent).

    wide: ``identity, attribute, in_region_{stereo,nonstereo,unsure}``,
    ``north_america_{stereo,nonstereo,unsure}`` (global only), ``annotation1..3``, ``offensiveness``.
    """
    if which not in _SEEGULL:
        raise ValueError(f"which must be one of {sorted(_SEEGULL)}, got {which!r}")
    return _seegull(stamp(_SEEGULL[which], data_home), which, tidy).copy()


@lru_cache(maxsize=8)
def _seegull(st, which: str, tidy: bool) -> pd.DataFrame:
    raw = parse(st, "csv")
    ren = {f"region_{v}": f"in_region_{v}" for v in _VOTES}
    ren.update({f"NA_{v}": f"north_america_{v}" for v in _VOTES})
    ren.update({f"Annotation{i}": f"annotation{i}" for i in (1, 2, 3)})
    ren.update({"mean offensiveness_score": "offensiveness", "offensiveness_score": "offensiveness"})
    wide = raw.rename(columns=ren)
    groups = ["in_region", "north_america"] if which == "global" else ["in_region"]
    needed = ["identity", "attribute", *[f"{g}_{v}" for g in groups for v in _VOTES], "offensiveness"]
    missing = [c for c in needed if c not in wide.columns]
    if missing:
        raise ValueError(f"{st[0]}: SeeGULL file lacks columns {missing} (after renaming)")
    if not tidy:
        return wide
    if which == "global":
        same = np.ones(len(wide), dtype=bool)
        for v in _VOTES:
            same &= (wide[f"in_region_{v}"] == wide[f"north_america_{v}"]).to_numpy()
        copied = pd.Series(same).groupby(wide["identity"].to_numpy()).transform("all").to_numpy()
    parts = []
    for g in groups:
        part = pd.DataFrame(
            {
                "identity": wide["identity"],
                "attribute": wide["attribute"],
                "annotators": g,
                **{v: wide[f"{g}_{v}"].astype(int) for v in _VOTES},
            }
        )
        part["n_votes"] = part[list(_VOTES)].sum(axis=1)
        part["p_stereo"] = part["stereo"] / part["n_votes"]
        part["offensiveness"] = wide["offensiveness"].astype(float)
        if which == "global":
            part["na_copied"] = copied
        part["_row"] = np.arange(len(wide))
        parts.append(part)
    out = pd.concat(parts, ignore_index=True).sort_values(["_row", "annotators"], kind="stable")
    return out.drop(columns="_row").reset_index(drop=True)


# ----------------------------------------------------------------------------------- GlobalOpinionQA
_GOQA_ID = "Anthropic/llm_global_opinions"
_GOQA_NOTE = (
    "GlobalOpinionQA (Durmus et al. 2023; Hugging Face dataset Anthropic/llm_global_opinions) is "
    "licensed CC BY-NC-SA 4.0: non-commercial use only; nothing of it is bundled with plural_kit."
)


def parse_selections(text: str) -> dict[str, list[float]]:
    """Parse one GlobalOpinionQA ``selections`` string into ``{country: [p_option, ...]}``.

    The field is the ``repr`` of a ``defaultdict(<class 'list'>, {...})``; only the dict literal
    is evaluated (``ast.literal_eval``, never ``eval``).
    """
    if not isinstance(text, str):
        raise ValueError(f"selections must be a string, got {type(text).__name__}")
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ValueError(f"no dict literal in selections string {text[:80]!r}")
    try:
        value = ast.literal_eval(text[start : end + 1])
    except (ValueError, SyntaxError) as err:
        raise ValueError(f"cannot parse selections string {text[:80]!r}: {err}") from err
    if not isinstance(value, dict):
        raise ValueError(f"selections is not a dict: {text[:80]!r}")
    return {str(k): [float(x) for x in v] for k, v in value.items()}


def _parse_options(text) -> list[str]:
    if isinstance(text, (list, tuple, np.ndarray)):
        return [str(x) for x in text]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError) as err:
        raise ValueError(f"cannot parse options string {str(text)[:80]!r}: {err}") from err
    return [str(x) for x in value]


def parse_global_opinions(raw: pd.DataFrame) -> pd.DataFrame:
    """Tidy GlobalOpinionQA: one row per (question, country) from the raw table.

    Parameters
    ----------
    raw : the dataset as a DataFrame with ``question``, ``selections``, ``options``, ``source``.

    Returns
    -------
    DataFrame: ``question_id`` (row number in the raw table), ``question``, ``source``
    (e.g. GAS / WVS), ``options`` (list of option texts), ``country``, ``distribution`` (float
    ndarray (len(options),): the share of the country's respondents choosing each option, as
    published), ``total`` (its sum; ~1). Countries whose distribution length differs from the
    number of options are dropped (a ``ValueError`` if that leaves nothing).
    """
    missing = {"question", "selections", "options", "source"} - set(raw.columns)
    if missing:
        raise ValueError(f"GlobalOpinionQA table lacks columns {sorted(missing)}; got {list(raw.columns)}")
    rows = []
    for qid, rec in enumerate(raw[["question", "selections", "options", "source"]].itertuples(index=False)):
        options = _parse_options(rec.options)
        for country, probs in parse_selections(rec.selections).items():
            if len(probs) != len(options):
                continue
            dist = np.asarray(probs, dtype=float)
            rows.append(
                {
                    "question_id": qid,
                    "question": rec.question,
                    "source": rec.source,
                    "options": options,
                    "country": country,
                    "distribution": dist,
                    "total": float(dist.sum()),
                }
            )
    if not rows:
        raise ValueError("no (question, country) distribution matched its options")
    return pd.DataFrame(rows)


def load_global_opinion_qa(
    data_home: PathLike = None, *, split: str = "train", cache_dir: str | os.PathLike | None = None
) -> pd.DataFrame:
    """GlobalOpinionQA per-country answer distributions, via Hugging Face ``datasets`` (online users).

    If ``<data_home>/llm_global_opinions/`` exists (a local copy of the dataset repository) it is
    loaded from there; otherwise ``Anthropic/llm_global_opinions`` is fetched from the Hub into
    ``cache_dir`` (the ``datasets`` default when None). Licence: CC BY-NC-SA 4.0 (non-commercial).

    Returns the tidy table of :func:`parse_global_opinions`.

    Raises
    ------
    ImportError  ``datasets`` is not installed (``pip install "plural_kit[online]"``).
    ConnectionError  the Hub cannot be reached and there is no local copy.
    """
    try:
        import datasets
    except ImportError as err:
        raise ImportError(
            "load_global_opinion_qa needs the Hugging Face `datasets` package: "
            'pip install "plural_kit[online]" (or pip install datasets). ' + _GOQA_NOTE
        ) from err
    local = _resolve_home(data_home) / "llm_global_opinions"
    source = str(local) if local.is_dir() else _GOQA_ID
    try:
        ds = datasets.load_dataset(source, split=split, cache_dir=None if cache_dir is None else str(cache_dir))
    except (ConnectionError, OSError) as err:
        raise ConnectionError(
            f"could not load {_GOQA_ID} ({type(err).__name__}: {err}). It needs network access to the "
            f"Hugging Face Hub, or a local copy of the dataset repository at {local}. " + _GOQA_NOTE
        ) from err
    raw = ds.to_pandas() if hasattr(ds, "to_pandas") else pd.DataFrame(ds)
    return parse_global_opinions(raw)

