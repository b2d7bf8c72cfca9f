"""Anthropic HH-RLHF pairwise preferences (Bai et al. 2022, MIT) in the preference schema."""
from __future__ import annotations

import os
from functools import lru_cache

import pandas as pd

from plural_kit.data._io import parse, stamp
from plural_kit.data.home import DataNotFoundError
from plural_kit.data.schema import validate_preferences

__all__ = ["HH_RLHF_SUBSETS", "HH_RLHF_USER", "load_hh_rlhf", "split_dialogue_pair"]

HH_RLHF_SUBSETS: tuple[str, ...] = ("harmless-base", "helpful-base", "helpful-online", "helpful-rejection-sampled")
#: placeholder user id: HH-RLHF publishes no rater ids
HH_RLHF_USER = "hh-rlhf"
_ASSISTANT = "\n\nAssistant:"
_BASE_URL = "https://media.githubusercontent.com/media/anthropics/hh-rlhf/354e5c3cb8960630860dd5774a6ac2a58313bf4d/"


def split_dialogue_pair(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two dialogues into (shared prompt, chosen final turn, rejected final turn).

    The prompt is the longest common prefix cut just after its last ``"\\n\\nAssistant:"``; the two
    responses are what follows, stripped of surrounding whitespace. (Splitting each dialogue at
    its own last marker goes wrong for the few responses that themselves contain "Assistant:".)
    """
    k = len(os.path.commonprefix([chosen, rejected]))
    cut = chosen.rfind(_ASSISTANT, 0, k)
    if cut < 0:
        raise ValueError(f"the two dialogues share no '\\n\\nAssistant:' turn: {chosen[:80]!r} vs {rejected[:80]!r}")
    cut += len(_ASSISTANT)
    return chosen[:cut], chosen[cut:].strip(), rejected[cut:].strip()


def load_hh_rlhf(
    split: str = "test",
    subset: str = "harmless-base",
    *,
    user: str = HH_RLHF_USER,
    data_home: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """HH-RLHF pairs: the shared dialogue prefix as ``prompt`` and the final assistant turns.

    Parameters
    ----------
    split : ``"train"`` or ``"test"``.
    subset : one of :data:`HH_RLHF_SUBSETS`. Only ``harmless-base/test`` (2,312 pairs) is in the
        registry (downloadable with a checksum); other files are used when placed in the data home
        as ``hh_rlhf/<subset>/<split>.jsonl.gz``.
    user : the ``user`` of every row. HH-RLHF has no rater ids, so all pairs go to one placeholder
        user: fit population models on it, and do not read it as one person's preferences.

    Returns
    -------
    DataFrame in the preference schema: ``user, prompt`` (the dialogue up to and including the last
    shared ``"\\n\\nAssistant:"``), ``chosen, rejected`` (the final assistant turns), then
    ``chosen_dialogue, rejected_dialogue`` (the full published texts) and ``pair_id`` (line number
    in the file). Pairs whose final turns are identical would carry no preference and are dropped
    (none in harmless-base/test).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if subset not in HH_RLHF_SUBSETS:
        raise ValueError(f"subset must be one of {HH_RLHF_SUBSETS}, got {subset!r}")
    rel = f"hh_rlhf/{subset}/{split}.jsonl.gz"
    try:
        st = stamp(rel, data_home)
    except DataNotFoundError as err:
        raise DataNotFoundError(
            f"{err} Only harmless-base/test is registered for download; get {subset}/{split} from "
            f"{_BASE_URL}{subset}/{split}.jsonl.gz and place it as above.",
            err.relative_path,
            err.data_home,
        ) from err
    df = _hh(st).copy()
    df.insert(0, "user", user)
    return validate_preferences(df, require=("prompt",))


@lru_cache(maxsize=8)
def _hh(st) -> pd.DataFrame:
    records = parse(st, "jsonl")
    rows = []
    for i, rec in enumerate(records):
        if "chosen" not in rec or "rejected" not in rec:
            raise ValueError(f"{st[0]} line {i + 1}: expected 'chosen' and 'rejected' fields, got {sorted(rec)}")
        prompt, chosen, rejected = split_dialogue_pair(rec["chosen"], rec["rejected"])
        if chosen == rejected:
            continue
        rows.append(
            {"prompt": prompt, "chosen": chosen, "rejected": rejected, "chosen_dialogue": rec["chosen"],
             "rejected_dialogue": rec["rejected"], "pair_id": i}
        )
    return pd.DataFrame(rows)
