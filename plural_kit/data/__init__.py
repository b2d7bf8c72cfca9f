"""Preference data: one validated schema, synthetic generators with known ground truth,
and loaders for real data (download + cache, or a local mirror)."""
from plural_kit.data.schema import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    PreferenceSchemaError,
    validate_preferences,
)

__all__ = ["OPTIONAL_COLUMNS", "REQUIRED_COLUMNS", "PreferenceSchemaError", "validate_preferences"]
