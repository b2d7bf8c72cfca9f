"""Reward-model fitters with one API (see :class:`plural_kit.reward.base.PreferenceModel`).

Population model: :class:`BradleyTerry` (and :func:`bradley_terry_inference` for item-level
inference with statsmodels). Pluralistic models: :class:`MixtureBT` (EM over users),
:class:`PAL` (ideal points), :class:`VPL` (variational user latents), :class:`MiCRo`
(mixture with a context router); :class:`ReliabilityBT` (one reward, a reliability per
annotator: disagreement read as noise); :class:`MultiHeadBT` (one head per source, simplex
weights per user).

Every fitter has one API (:class:`~plural_kit.reward.base.PreferenceModel`): ``fit``, ``reward``,
``predict_proba``, ``score`` and ``adapt`` take ``users`` (and ``prompts``, read by MiCRo),
which scikit-learn's metadata routing passes to ``fit`` and ``score`` in model selection;
``user_representation()`` (DataFrame, users x dim) and ``predict_groups(n_groups=None)``
(Series ``group`` indexed by user) expose each user's own parameters.
"""
from plural_kit.reward.base import (
    FeatureScaleWarning,
    FitFailedError,
    PreferenceModel,
    UnknownUserWarning,
    pairs_from_labels,
)
from plural_kit.reward.bt import BradleyTerry
from plural_kit.reward.inference import BTInferenceResult, bradley_terry_inference
from plural_kit.reward.micro import MiCRo
from plural_kit.reward.mixture import MixtureBT
from plural_kit.reward.multihead import MultiHeadBT
from plural_kit.reward.pal import PAL
from plural_kit.reward.reliability import ReliabilityBT
from plural_kit.reward.vpl import VPL, PosteriorCollapseWarning

__all__ = [
    "BTInferenceResult",
    "BradleyTerry",
    "FeatureScaleWarning",
    "FitFailedError",
    "MiCRo",
    "MixtureBT",
    "MultiHeadBT",
    "PAL",
    "PosteriorCollapseWarning",
    "PreferenceModel",
    "ReliabilityBT",
    "UnknownUserWarning",
    "VPL",
    "bradley_terry_inference",
    "pairs_from_labels",
]
