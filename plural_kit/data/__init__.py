"""Preference data: one validated schema, synthetic generators with known ground truth,
and loaders for real data (download + cache, or a local mirror)."""
from plural_kit.data.home import DataChecksumError, DataFormatError, DataNotFoundError, data_home, fetch
from plural_kit.data.evals import (
    list_anthropic_evals,
    load_anthropic_eval,
    load_emergent_misalignment_questions,
    load_refusal_prompts,
    load_true_facts,
    load_truthfulqa,
)
from plural_kit.data.hh_rlhf import load_hh_rlhf
from plural_kit.data.papi import PAPI, load_papi, make_papi_preferences
from plural_kit.data.persona import (
    DEFAULT_TRAITS,
    PersonaSplits,
    list_persona_traits,
    load_persona,
    make_persona_preferences,
)
from plural_kit.data.surveys import (
    FOUNDATIONS,
    country_foundation_distributions,
    load_d3code_raters,
    load_global_opinion_qa,
    load_mfq2_items,
    load_seegull,
    parse_global_opinions,
)
from plural_kit.data.synthetic import (
    SyntheticPreferences,
    check_shots,
    first_pairs_per_user,
    make_ideal_point_preferences,
    quadratic_features,
    split_pairs,
    split_users,
)
from plural_kit.data.schema import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    PreferenceSchemaError,
    validate_preferences,
)

__all__ = [
    "OPTIONAL_COLUMNS",
    "PAPI",
    "REQUIRED_COLUMNS",
    "DEFAULT_TRAITS",
    "FOUNDATIONS",
    "DataChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "PersonaSplits",
    "PreferenceSchemaError",
    "SyntheticPreferences",
    "check_shots",
    "country_foundation_distributions",
    "data_home",
    "fetch",
    "first_pairs_per_user",
    "list_anthropic_evals",
    "list_persona_traits",
    "load_anthropic_eval",
    "load_d3code_raters",
    "load_emergent_misalignment_questions",
    "load_global_opinion_qa",
    "load_hh_rlhf",
    "load_mfq2_items",
    "load_papi",
    "make_papi_preferences",
    "load_persona",
    "load_refusal_prompts",
    "load_seegull",
    "load_true_facts",
    "load_truthfulqa",
    "make_ideal_point_preferences",
    "make_persona_preferences",
    "parse_global_opinions",
    "quadratic_features",
    "split_pairs",
    "split_users",
    "validate_preferences",
]
