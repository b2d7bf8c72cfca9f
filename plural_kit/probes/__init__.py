"""Misalignment probes: what a language model's activations and answers reveal.

- :mod:`~plural_kit.probes.activations`: residual-stream activations of chat prompts.
- :mod:`~plural_kit.probes.linear`: per-layer linear probes with a held-out-source split,
  a shuffled-label control (selectivity) and a lexical baseline.
- :mod:`~plural_kit.probes.directions`: difference-in-means directions, ablation and
  activation addition, refusal scores, a random-direction control, fluency checks.
- :mod:`~plural_kit.probes.subspace`: overlap of activation subspaces against chance.
- :mod:`~plural_kit.probes.behaviour`: persona and advanced-AI-risk log-probability probes
  beside label bias, option swaps and format mass.
- :mod:`~plural_kit.probes.judge`: open-ended answers scored by a (checked) judge.
- :mod:`~plural_kit.probes.honesty`: true-vs-false answer probes.
- :mod:`~plural_kit.probes.lesson`: the lesson's prompts and eval items, and its closing table,
  written from its claims.

Every result is a :class:`plural_kit.results.Result` (``to_frame``, ``summary``, ``to_dict``,
``plot`` where a figure fits): :class:`ProbeResult`, :class:`RefusalScores`,
:class:`GenerationCheck`, :class:`SubspaceOverlap`, :class:`OverlapComparison`,
:class:`OverlapByLayer`, :class:`BehaviourResult`, :class:`JudgeCheck`,
:class:`MisalignmentRates`, :class:`HonestyResult`, :class:`SummaryTable`. Those that support
conclusions give them as :class:`plural_kit.claims.Claims` (``.claims()``) with intervals over
prompts or items.

Harmful prompts are probe inputs: nothing here prints generations.
"""
from plural_kit.probes.activations import collect_activations, resolve_layers
from plural_kit.probes.behaviour import (
    BehaviourResult,
    behaviour_scores,
    choice_logprobs,
    label_bias_baseline,
    parse_options,
    score_ab,
    score_persona,
    swap_options,
)
from plural_kit.probes.directions import (
    CONDITIONS,
    GENERATION_PLAN,
    REFUSAL_PHRASES,
    GenerationCheck,
    RefusalScores,
    activation_addition,
    directional_ablation,
    distinct_n,
    fluency_stats,
    generations_under,
    intervention_conditions,
    is_refusal,
    mean_difference,
    mean_difference_at,
    project_out,
    random_direction_like,
    refusal_claims,
    refusal_score,
    refusal_scores_under,
    refusal_token_ids,
    unit,
)
from plural_kit.probes.honesty import (
    HonestyResult,
    fact_prompts,
    honesty_from_activations,
    honesty_probe,
    true_facts_claim,
    truthfulqa_statements,
)
from plural_kit.probes.judge import (
    JUDGE_CHECK_SET,
    JUDGE_TEMPLATES,
    MIN_ACCURACY,
    MIN_AUC,
    CallableJudge,
    JudgeCheck,
    LogprobJudge,
    MisalignmentRates,
    as_judge,
    check_judge,
    expected_number,
    is_misaligned,
    misalignment_claim,
    misalignment_rates,
    number_distribution,
    sample_answers,
    score_answers,
    scores_from_distribution,
)
from plural_kit.probes.lesson import (
    SummaryTable,
    behaviour_evals,
    harm_prompts,
    middle_layer,
    prompts_by_kind,
    summary_table,
)
from plural_kit.probes.linear import (
    LinearProbe,
    ProbeResult,
    control_labels,
    cv_accuracy,
    dedupe_prompts,
    group_split,
    lexical_baseline,
    probe_by_layer,
)
from plural_kit.probes.subspace import (
    OverlapByLayer,
    OverlapComparison,
    SubspaceOverlap,
    compare_overlap,
    compare_overlap_at,
    energy_rank,
    overlap_by_layer,
    subspace_basis,
    subspace_overlap,
)

__all__ = [
    "GENERATION_PLAN", "GenerationCheck", "HonestyResult", "MisalignmentRates", "OverlapByLayer", "RefusalScores",
    "SummaryTable", "behaviour_evals", "generations_under", "harm_prompts", "honesty_from_activations",
    "honesty_probe", "mean_difference_at", "middle_layer", "prompts_by_kind", "overlap_by_layer", "score_answers",
    "CONDITIONS", "MIN_ACCURACY", "MIN_AUC", "OverlapComparison", "compare_overlap", "compare_overlap_at",
    "cv_accuracy",
    "intervention_conditions", "misalignment_claim", "refusal_claims", "refusal_scores_under",
    "summary_table", "true_facts_claim",
    "BehaviourResult", "CallableJudge", "JUDGE_CHECK_SET", "JUDGE_TEMPLATES", "JudgeCheck", "LinearProbe",
    "LogprobJudge", "ProbeResult", "REFUSAL_PHRASES", "SubspaceOverlap", "activation_addition", "as_judge",
    "behaviour_scores", "check_judge", "choice_logprobs", "collect_activations", "control_labels",
    "dedupe_prompts", "directional_ablation", "distinct_n", "energy_rank", "expected_number", "fact_prompts",
    "fluency_stats", "group_split", "is_misaligned", "is_refusal", "label_bias_baseline", "lexical_baseline",
    "mean_difference", "misalignment_rates", "number_distribution", "parse_options", "probe_by_layer",
    "project_out", "random_direction_like", "refusal_score", "refusal_token_ids", "resolve_layers",
    "sample_answers", "score_ab", "score_persona", "scores_from_distribution", "subspace_basis",
    "subspace_overlap", "swap_options", "truthfulqa_statements", "unit",
]
