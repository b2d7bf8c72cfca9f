import numpy as np
import pandas as pd
import pytest

from plural_kit.data.schema import PreferenceSchemaError, validate_preferences


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
