"""The one preference schema every loader and generator returns.

A preference table is a :class:`pandas.DataFrame` with one row per judged pair:

=========  ========  ==========================================================
column     required  meaning
=========  ========  ==========================================================
user       yes       who judged (any hashable id; str or int)
chosen     yes       what won: a text or an item id
rejected   yes       what lost: a text or an item id
prompt     no        the context both answers respond to
group      no        the ground-truth group of the user (synthetic/semi-synthetic)
=========  ========  ==========================================================

Extra columns are kept untouched.
"""
from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("user", "chosen", "rejected")
OPTIONAL_COLUMNS: tuple[str, ...] = ("prompt", "group")


class PreferenceSchemaError(ValueError):
    """A preference table does not follow the schema; the message names the problem."""


def validate_preferences(
    df: pd.DataFrame,
    *,
    require: Iterable[str] = (),
    allow_duplicates: bool = True,
) -> pd.DataFrame:
    """Check ``df`` against the preference schema and return it (columns reordered).

    Parameters
    ----------
    df : DataFrame with at least ``user``, ``chosen``, ``rejected``.
    require : optional columns that must also be present (e.g. ``("prompt",)``).
    allow_duplicates : if False, the same (user, prompt, chosen, rejected) twice is an error.

    Raises
    ------
    PreferenceSchemaError
        naming the missing columns, the columns with NaN (and the first bad rows),
        an empty table, pairs whose two sides are identical, or duplicated pairs.
    """
    if not isinstance(df, pd.DataFrame):
        raise PreferenceSchemaError(f"expected a pandas DataFrame, got {type(df).__name__}")
    needed = list(REQUIRED_COLUMNS) + [c for c in require if c not in REQUIRED_COLUMNS]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise PreferenceSchemaError(
            f"column(s) {missing} missing; got {list(df.columns)}. "
            f"A preference table needs {list(REQUIRED_COLUMNS)} (optional: {list(OPTIONAL_COLUMNS)})."
        )
    if len(df) == 0:
        raise PreferenceSchemaError("the preference table is empty (0 rows)")
    present = needed + [c for c in OPTIONAL_COLUMNS if c in df.columns and c not in needed]
    for col in present:
        bad = df[col].isna()
        if bad.any():
            rows = list(df.index[bad][:5])
            raise PreferenceSchemaError(
                f"column '{col}' has {int(bad.sum())} missing value(s) (NaN/None), first at rows {rows}"
            )
    same = (df["chosen"] == df["rejected"]).to_numpy()
    if same.any():
        rows = list(df.index[same][:5])
        raise PreferenceSchemaError(
            f"{int(same.sum())} pair(s) compare an item with itself (chosen == rejected), first at rows {rows}"
        )
    if not allow_duplicates:
        key = [c for c in ("user", "prompt", "chosen", "rejected") if c in df.columns]
        dup = df.duplicated(subset=key, keep=False).to_numpy()
        if dup.any():
            rows = list(df.index[dup][:5])
            raise PreferenceSchemaError(
                f"{int(dup.sum())} rows repeat the same {key}, first at rows {rows}; "
                "drop them (df.drop_duplicates) or pass allow_duplicates=True"
            )
    order = present + [c for c in df.columns if c not in present]
    return df[order]
