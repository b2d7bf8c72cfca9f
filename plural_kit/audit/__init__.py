"""Cultural-bias audits: whose values does a model answer with, and is the answer stable?

- :mod:`~plural_kit.audit.metrics`: similarity (1 − JS distance), representativeness (1 − W1/max),
  normalised entropy (intervals: :mod:`plural_kit.stats`).
- :mod:`~plural_kit.audit.distributions`: answer distributions over option labels from
  next-token log-probabilities, under a :class:`PromptDesign`.
- :mod:`~plural_kit.audit.mfq`: MFQ-2 items, the signal check with control statements,
  foundation scores and the nearest countries among D3CODE raters.
- :mod:`~plural_kit.audit.robustness`: the design-variant protocol ("randomness, not representation").
- :mod:`~plural_kit.audit.steering`: answering as someone from a country vs a neutral persona.
- :mod:`~plural_kit.audit.stereotypes`: SeeGULL in-region vs out-of-region annotators.
- :mod:`~plural_kit.audit.opinions`: GlobalOpinionQA similarity by country.
- :mod:`~plural_kit.audit.perspectives`: perspective diversity of free-text answers.

Every result follows the result protocol (:mod:`plural_kit.results`: ``to_frame``, ``summary``,
``to_dict``, ``plot`` where a figure fits) and turns its conclusion into a claim with an interval (:mod:`plural_kit.claims`):
``SignalCheck.claim``, ``MFQProfile.claims`` (:func:`position_claim`, :func:`nearest_country_claim`),
``SteeringResult.claims``, ``RobustnessResult.claims`` / ``.verdict``, ``StereotypeResult.claim``,
``PerspectiveResult.claims``.
"""
from plural_kit.audit.distributions import (
    AnswerDistributions,
    AnswerScorer,
    LogprobScorer,
    MultipleChoiceItem,
    PromptDesign,
    answer_distributions,
    build_prompt,
    option_labels,
    option_permutation,
    resolve_label_tokens,
)
from plural_kit.audit.metrics import (
    AuditInputError,
    check_distribution,
    expected_value,
    normalized_entropy,
    representativeness,
    similarity,
)
from plural_kit.audit.mfq import (
    CONTROL_PAIRS,
    MFQ_INSTRUCTION,
    MFQ_PARAPHRASE,
    CountryComparison,
    MFQProfile,
    SignalCheck,
    compare_with_countries,
    control_items,
    foundation_scores,
    human_means,
    mfq_items,
    mfq_profile,
    nearest_country_claim,
    order_averaged,
    position_claim,
    signal_check,
)
from plural_kit.audit.opinions import (
    CountrySimilarity,
    OpinionDistributions,
    country_similarity,
    opinion_distributions,
    opinion_items,
)
from plural_kit.audit.perspectives import (
    DEFAULT_PERSPECTIVES,
    OPEN_QUESTIONS,
    PerspectiveDetector,
    PerspectiveResult,
    perspective_audit,
)
from plural_kit.audit.robustness import (
    RobustnessResult,
    Verdict,
    design_variants,
    factor_permutation_test,
    robustness_audit,
)
from plural_kit.audit.steering import NEUTRAL_PERSONA, SteeringResult, steering_audit, steering_from_scores
from plural_kit.audit.stereotypes import StereotypeResult, seegull_pairs, stereotype_audit

__all__ = [
    "AnswerDistributions", "AnswerScorer", "AuditInputError", "CONTROL_PAIRS", "CountryComparison",
    "CountrySimilarity", "MFQProfile", "OpinionDistributions",
    "DEFAULT_PERSPECTIVES", "LogprobScorer", "MFQ_INSTRUCTION", "MFQ_PARAPHRASE", "MultipleChoiceItem",
    "NEUTRAL_PERSONA", "OPEN_QUESTIONS", "PerspectiveDetector", "PerspectiveResult", "PromptDesign",
    "RobustnessResult", "SignalCheck", "SteeringResult", "StereotypeResult", "answer_distributions",
    "build_prompt", "check_distribution", "compare_with_countries", "control_items",
    "country_similarity", "opinion_distributions", "opinion_items",
    "design_variants", "expected_value", "factor_permutation_test", "foundation_scores", "human_means", "mfq_items", "mfq_profile", "nearest_country_claim",
    "normalized_entropy",
    "option_labels", "option_permutation", "order_averaged", "perspective_audit", "position_claim",
    "representativeness", "resolve_label_tokens", "robustness_audit", "seegull_pairs", "signal_check",
    "similarity", "steering_audit", "steering_from_scores", "stereotype_audit", "Verdict",
]
