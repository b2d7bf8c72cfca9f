"""Rankings from pairwise judgments: whose judgments, which design, which judge, which rule.

* :mod:`~plural_kit.rank.rankings` — Bradley–Terry with ties and bootstrap intervals
  (:func:`bradley_terry`, a :class:`Ranking` with rank intervals), online Elo (:func:`elo`) and
  its dependence on the order of the matches (:func:`elo_order_dependence`);
* :mod:`~plural_kit.rank.tournaments` — round robin, Swiss and single elimination simulated from
  known skills and a :class:`NoisyJudge`; judgments each needs to reach a rank correlation
  (:func:`design_curves`);
* :mod:`~plural_kit.rank.judges` — a model as judge by next-token log-probabilities
  (:class:`LogprobJudge`) or any function (:class:`CallableJudge`), asked in both orders
  (:func:`judge_pairs`): position bias, swap-debiasing, agreement with known outcomes;
* :mod:`~plural_kit.rank.aggregate` — per-group leaderboards, pooled rules (BT, Borda, Copeland,
  groups counted equally), Condorcet winners and cycles, the worst-off group (:func:`aggregate`);
  groups of raters found from anonymous judgments by a mixture of BT models (:func:`discover_groups`).

Comparisons are a DataFrame with columns ``a``, ``b`` and ``outcome`` (1: ``a`` won, 0: ``b`` won,
0.5: tie), plus ``group`` where it matters.
"""
from plural_kit.rank.aggregate import (
                                       RULES,
                                       Aggregation,
                                       GroupDiscovery,
                                       aggregate,
                                       condorcet_cycle,
                                       condorcet_winner,
                                       discover_groups,
                                       majority_matrix,
                                       rank_distance,
                                       simulate_groups,
)
from plural_kit.rank.judges import (
                                       JUDGE_TEMPLATE,
                                       CallableJudge,
                                       JudgeAudit,
                                       LogprobJudge,
                                       PairwiseJudge,
                                       judge_pairs,
)
from plural_kit.rank.rankings import (
                                       ELO_SCALE,
                                       EloOrderDependence,
                                       EloRatings,
                                       Ranking,
                                       bradley_terry,
                                       check_comparisons,
                                       elo,
                                       elo_order_dependence,
                                       win_matrix,
)
from plural_kit.rank.tournaments import (
                                       DESIGNS,
                                       DesignCurves,
                                       NoisyJudge,
                                       design_curves,
                                       round_robin,
                                       run_design,
                                       simulate_comparisons,
                                       single_elimination,
                                       swiss,
)

__all__ = [
                                       "DESIGNS",
                                       "ELO_SCALE",
                                       "JUDGE_TEMPLATE",
                                       "RULES",
                                       "Aggregation",
                                       "CallableJudge",
                                       "DesignCurves",
                                       "EloOrderDependence",
                                       "EloRatings",
                                       "GroupDiscovery",
                                       "JudgeAudit",
                                       "LogprobJudge",
                                       "NoisyJudge",
                                       "PairwiseJudge",
                                       "Ranking",
                                       "aggregate",
                                       "bradley_terry",
                                       "check_comparisons",
                                       "condorcet_cycle",
                                       "condorcet_winner",
                                       "design_curves",
                                       "discover_groups",
                                       "elo",
                                       "elo_order_dependence",
                                       "judge_pairs",
                                       "majority_matrix",
                                       "rank_distance",
                                       "round_robin",
                                       "run_design",
                                       "simulate_comparisons",
                                       "simulate_groups",
                                       "single_elimination",
                                       "swiss",
                                       "win_matrix",
]
