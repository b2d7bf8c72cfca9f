"""The one preference schema every loader and generator returns.

A preference table is a :class:`pandas.DataFrame` with one row per judged pair:

=========  ========  ==========================================================
column     required  meaning
=========  ========  ==========================================================
user       yes       who judged (any hashable id; str or int, one type for all users)
chosen     yes       what won: a text or an item id
rejected   yes       what lost: a text or an item id
prompt     no        the context both answers respond to
group      no        the ground-truth group of the user (synthetic/semi-synthetic)
=========  ========  ==========================================================

Extra columns are kept untouched.

User ids are compared as given, so ids of different types that Python treats as equal or that
print the same (``1``, ``1.0``, ``True``, ``"1"``) would silently merge two users or split one:
:func:`check_user_ids` refuses them with a ``ValueError`` naming the colliding ids.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = ("user", "chosen", "rejected")
OPTIONAL_COLUMNS: tuple[str, ...] = ("prompt", "group")


class PreferenceSchemaError(ValueError):
    """A preference table does not follow the schema; the message names the problem."""


def _user_key(u) -> str:
    """How an id reads: ``1``, ``1.0``, ``True``, ``np.int64(1)`` and ``"1"`` all read ``"1"``."""
    if isinstance(u, (bool, np.bool_)):
        return str(int(u))
    if isinstance(u, (float, np.floating)) and float(u).is_integer():
        return str(int(u))
    if isinstance(u, np.generic):
        return str(u.item())
    return str(u)


def _typed(u):
    """An id with its type, numpy scalars read as the Python scalar they hold (np.int64(1) is 1)."""
    v = u.item() if isinstance(u, np.generic) else u
    return type(v).__name__, v


def check_user_ids(users: Iterable, known: Iterable = (), name: str = "users", context: str = "") -> None:
    """Raise ``ValueError`` when two distinct user ids of different types would be confused.

    ``1``, ``1.0`` and ``True`` are one dictionary key in Python (they hash and compare equal),
    and ``"1"`` prints the same: a table mixing them almost always comes from a bug (a column
    read as numbers in one file and as text in another). ``users`` are the ids of a batch,
    ``known`` those already known (a fitted model's ``users_``); ids of one type pass at once.
    ``name`` and ``context`` say where the ids come from in the message.
    """
    users = list(users)
    known = list(known)
    types = {type(u.item() if isinstance(u, np.generic) else u) for u in users + known}
    if len(types) <= 1:
        return
    seen: dict[str, dict] = {}
    for u in dict.fromkeys(_typed(u) for u in known + users):  # distinct (type, value), first-seen order
        seen.setdefault(_user_key(u[1]), {})[u] = None
    clashes = [list(group) for group in seen.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(" vs ".join(f"{v!r} ({t})" for t, v in group) for group in clashes[:3])
        raise ValueError(
            f"'{name}' mixes id types that collide{context}: {shown}"
            f"{f' (and {len(clashes) - 3} more)' if len(clashes) > 3 else ''}. Python would merge or split "
            "these users (1 == 1.0 == True; '1' != 1). Give every user one id of one type, e.g. "
            "users = [str(u) for u in users]"
        )


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
        an empty table, user ids of different types that collide (``1``, ``1.0``, ``True``, ``"1"``), pairs whose two sides are identical, or duplicated pairs.
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
    try:
        check_user_ids(df["user"].tolist(), name="user")
    except ValueError as err:
        raise PreferenceSchemaError(f"column {err}") from None
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
