import numpy as np
import pandas as pd
import pytest

from plural_kit.data.schema import (
    PreferenceSchemaError,
    check_user_ids,
    validate_preferences,
)


def table(**extra):
    base = {"user": ["a", "a", "b"], "chosen": [1, 2, 3], "rejected": [2, 3, 1]}
    base.update(extra)
    return pd.DataFrame(base)


def test_valid_table_passes_and_orders_columns():
    df = table(extra=[0, 1, 2], group=[0, 0, 1])
    out = validate_preferences(df)
    assert list(out.columns) == ["user", "chosen", "rejected", "group", "extra"]
    assert len(out) == 3


def test_missing_columns_are_named():
    with pytest.raises(PreferenceSchemaError, match=r"\['rejected'\] missing"):
        validate_preferences(table().drop(columns="rejected"))
    with pytest.raises(PreferenceSchemaError, match=r"\['prompt'\] missing"):
        validate_preferences(table(), require=("prompt",))


def test_nan_is_named_with_rows():
    df = table()
    df.loc[1, "chosen"] = np.nan
    with pytest.raises(PreferenceSchemaError, match=r"column 'chosen' has 1 missing value.*\[1\]"):
        validate_preferences(df)
    df = table(group=[0, None, 1])
    with pytest.raises(PreferenceSchemaError, match="column 'group'"):
        validate_preferences(df)


def test_empty_table():
    with pytest.raises(PreferenceSchemaError, match="empty"):
        validate_preferences(table().iloc[:0])


def test_not_a_dataframe():
    with pytest.raises(PreferenceSchemaError, match="DataFrame"):
        validate_preferences({"user": [1], "chosen": [1], "rejected": [2]})


def test_self_comparison():
    with pytest.raises(PreferenceSchemaError, match="chosen == rejected"):
        validate_preferences(table(rejected=[2, 2, 1]))


def test_duplicates_only_when_they_matter():
    df = pd.concat([table(), table().iloc[[0]]], ignore_index=True)
    assert len(validate_preferences(df)) == 4  # allowed by default
    with pytest.raises(PreferenceSchemaError, match=r"2 rows repeat.*\[0, 3\]"):
        validate_preferences(df, allow_duplicates=False)


def test_user_ids_of_different_types_that_collide_are_refused():
    """1, 1.0 and True are one dict key in Python, '1' prints the same: never merged or split silently."""
    for users, shown in (
        ([1, 1.0, True], r"1 \(int\) vs 1.0 \(float\) vs True \(bool\)"),
        (["1", 1, 2], r"'1' \(str\) vs 1 \(int\)"),
        ([0, False, 3], r"0 \(int\) vs False \(bool\)"),
    ):
        with pytest.raises(PreferenceSchemaError, match=rf"column 'user' mixes id types that collide: {shown}"):
            validate_preferences(table(user=users))


def test_user_ids_of_one_type_or_distinct_values_pass():
    assert len(validate_preferences(table(user=[1, 2, 1]))) == 3
    assert len(validate_preferences(table(user=[1.5, 2.0, 1.5]))) == 3
    assert len(validate_preferences(table(user=["a", 1, "a"]))) == 3  # mixed types, but no two ids collide
    check_user_ids([np.int64(1), 1, 2])  # a numpy integer is the integer it holds


def test_check_user_ids_against_known_ids():
    check_user_ids(["a", "b"], known=np.array(["a", "c"], dtype=object))
    with pytest.raises(ValueError, match=r"collide with the model: '2' \(str\) vs 2 \(int\)"):
        check_user_ids([2], known=["1", "2"], context=" with the model")
    many = list(range(5)) + [str(i) for i in range(5)]
    with pytest.raises(ValueError, match=r"\(and 2 more\)"):
        check_user_ids(many)
