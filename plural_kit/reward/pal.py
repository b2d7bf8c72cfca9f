"""PAL: the ideal-point model of pluralistic alignment (Chen et al. 2024, "PAL: Pluralistic
alignment framework for learning from heterogeneous preferences").

Items are mapped to a learned space, ``f(x) = A x`` (or ``f(x) = x`` when ``latent_dim`` is
None). The model keeps ``K`` prototype points ``p_1..p_K`` there; every user is a point on
the simplex of prototypes, ``w_u = softmax(l_u)``, and their ideal point is
``a_u = sum_k w_uk p_k``. A user's reward is the negative squared distance to their ideal
point, and preferences follow Bradley-Terry with a temperature ``tau``::

    r_u(x) = -||f(x) - a_u||^2,        P(c > r | u) = sigmoid(tau * (r_u(c) - r_u(r)))

Because ``r_u(c) - r_u(r) = ||f(r)||^2 - ||f(c)||^2 + 2 a_u . (f(c) - f(r))`` is linear in the
ideal point, the whole data set is fitted full-batch in a few hundred L-BFGS steps (PyTorch,
CPU or GPU) instead of minibatch SGD, with a few random restarts; the best training
objective wins.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike
from scipy.special import softmax
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from plural_kit.reward._torch import (
    LBFGS_CONSTRAINTS,
    lbfgs_minimize,
    resolve_device,
    to_numpy,
    to_tensor,
    torch_generator,
)
from plural_kit.reward.base import (
    POPULATION,
    FitFailedError,
    PreferenceModel,
    check_features,
)

#: a learned temperature below this fraction of its start 1/std(features)^2 has collapsed
_COLLAPSED_TEMPERATURE = 1e-6


class PAL(PreferenceModel):
    """Ideal-point pluralistic reward model (PAL-A with a linear map), trained with PyTorch.

    Parameters
    ----------
    n_prototypes : number K of prototype points (>= 1).
    latent_dim : dimension of the learned space ``f(x) = A x``; None keeps the features
        (``A`` = identity, not learned).
    alpha : L2 penalty on the shared parameters (the map ``A`` and the prototypes in temperature
        units, ``tau p_k``), per pair; raise it for high-dimensional features with few pairs.
    user_alpha : L2 penalty on each user's simplex logits (towards uniform weights in ``fit``,
        towards the population weights in ``adapt``); a Gaussian prior, counted once per user.
    temperature : fixed ``tau``; None learns it when ``latent_dim`` is None. With a learned map
        ``A`` the scale of ``A`` already sets the temperature, so ``tau`` stays 1 unless given.
    n_restarts : random restarts of the whole fit (prototype and weight initialisation).
    max_iter : L-BFGS iterations per restart.
    device : "auto" (CUDA, then MPS, then CPU), "cpu", "cuda", ... (``plural_kit.device.get_device``).
    random_state : seed of the initialisations.

    ``reward(x, users)`` returns ``tau * (r_u(x) + ||a_u||^2) = 2 tau a_u.f(x) - tau ||f(x)||^2``
    (log-odds units; the per-user constant ``tau ||a_u||^2`` cancels in every comparison and is
    dropped because it is huge when the ideal points lie far away), so that
    ``predict_proba(a, b) = sigmoid(reward(a) - reward(b))``.

    Fitted attributes
    -----------------
    prototypes_ : (K, m) prototype points in the learned space.
    projection_ : (m, d) the map ``A`` (the identity when ``latent_dim`` is None).
    temperature_ : float, ``tau``. A learned ``tau`` that collapses below 1e-6 of its start
        ``1 / std(features)^2`` (pairs without ideal-point curvature: the ideal points run off to
        infinity) gives a ``ConvergenceWarning``; one that underflows to 0 (infinite prototypes)
        raises ``FitFailedError``.
    user_weights_ : DataFrame (users x K), each user's simplex weights (rows sum to 1); also
        ``user_representation()``; ``predict_groups()`` is each user's largest weight.
    ideal_points_ : DataFrame (users x m), each user's ideal point ``a_u``.
    population_weights_ : (K,) mean of the users' weights; unknown users get the ideal point
        ``sum_k population_weights_k p_k`` (with an ``UnknownUserWarning``).
    objective_ : final training objective (mean negative log-likelihood + penalties).
    """

    _pluralistic = True
    _standardise = True
    _group_weights = True
    _parameter_constraints = {
        "n_prototypes": [Interval(Integral, 1, None, closed="left")],
        "latent_dim": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "user_alpha": [Interval(Real, 0, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither"), None],
        **LBFGS_CONSTRAINTS,
    }

    def __init__(
        self,
        n_prototypes: int = 2,
        latent_dim: int | None = None,
        alpha: float = 1e-3,
        user_alpha: float = 1.0,
        temperature: float | None = None,
        n_restarts: int = 3,
        max_iter: int = 300,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.n_prototypes = n_prototypes
        self.latent_dim = latent_dim
        self.alpha = alpha
        self.user_alpha = user_alpha
        self.temperature = temperature
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    # ---- fitting -------------------------------------------------------------------
    def _fit(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray) -> None:
        d = chosen.shape[1]
        dev, dt = resolve_device(self.device)
        dx, sx = to_tensor(chosen - rejected, dev, dt), to_tensor(chosen + rejected, dev, dt)
        pooled = (user_idx == POPULATION).all()
        n_rows = 1 if pooled else len(self.users_)
        rows = torch.as_tensor(np.where(pooled, 0, user_idx), device=dev)
        n = dx.shape[0]
        m = d if self.latent_dim is None else int(self.latent_dim)
        K = int(self.n_prototypes)
        learn_map = self.latent_dim is not None
        learn_tau = self.temperature is None and not learn_map
        scale = float(np.concatenate([chosen, rejected]).std()) or 1.0
        self._feature_scale = scale
        fixed_terms = None if learn_map else self._pair_terms(dx, sx, None)

        best = None
        for restart in range(int(self.n_restarts)):
            gen = torch_generator(self.random_state * 1000 + restart)
            if learn_map:  # random orthonormal rows, on the feature scale
                g = torch.randn(max(m, d), max(m, d), generator=gen, dtype=torch.float64)
                a0 = (torch.linalg.qr(g)[0][:m, :d].contiguous() / scale).to(dev, dt)
            else:
                a0 = torch.eye(d, device=dev, dtype=dt)
            proj = a0.clone().requires_grad_(learn_map)
            tau0 = self.temperature if self.temperature is not None else (1.0 if learn_map else 1.0 / scale**2)
            # prototypes are optimised in temperature units, q_k = tau * p_k (see _nll)
            protos = torch.randn(K, m, generator=gen, dtype=torch.float64) * (1.0 if learn_map else scale) * tau0
            protos = protos.to(dev, dt).requires_grad_(True)
            logits = (0.1 * torch.randn(n_rows, K, generator=gen, dtype=torch.float64)).to(dev, dt).requires_grad_(True)
            log_tau = torch.tensor(np.log(tau0), device=dev, dtype=dt).requires_grad_(learn_tau)
            params = [protos, logits] + ([proj] if learn_map else []) + ([log_tau] if learn_tau else [])

            def objective(proj=proj, protos=protos, logits=logits, log_tau=log_tau):
                terms = fixed_terms if fixed_terms is not None else self._pair_terms(dx, sx, proj)
                nll = self._nll(terms, rows, protos, logits, log_tau).sum()
                shared = protos.pow(2).sum() + (proj.pow(2).sum() if learn_map else 0.0)
                return (nll + self.user_alpha * logits.pow(2).sum()) / n + self.alpha * shared

            value = lbfgs_minimize(objective, params, self.max_iter)
            if np.isfinite(value) and (best is None or value < best[0]):
                best = (value, proj.detach(), protos.detach(), logits.detach(), log_tau.detach())
        if best is None:
            raise FitFailedError(
                "PAL: every restart diverged (non-finite objective); try a larger alpha or scaled features"
            )

        self.objective_, proj, protos, logits, log_tau = best
        self.projection_ = to_numpy(proj)
        self.temperature_ = float(np.exp(to_numpy(log_tau)))
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # a collapsed tau: checked after fit
            self.prototypes_ = to_numpy(protos) / self.temperature_
        weights = to_numpy(torch.softmax(logits, dim=1))
        if pooled:
            self.population_weights_ = weights[0]
            self._logits = np.zeros((0, K))
        else:
            self._logits = to_numpy(logits)
            self.population_weights_ = weights.mean(axis=0)
        self._publish_users()

    def _degeneracies(self, chosen, rejected, user_idx, stage):
        if stage != "fit" or self.temperature is not None or self.latent_dim is not None:
            return []  # only a learned temperature can collapse
        relative = self.temperature_ * self._feature_scale**2  # 1 at the start of the fit
        if relative >= _COLLAPSED_TEMPERATURE:
            return []
        far = np.abs(self.prototypes_).max() / self._feature_scale
        return [
            (
                f"the learned temperature_ collapsed to {self.temperature_:.3g} ({relative:.2g} times its starting "
                f"value 1/std(features)^2): the pairs show no ideal-point curvature, so the ideal points ran off to "
                f"infinity (prototypes_ up to {far:.3g} feature standard deviations away) and PAL became a mixture of "
                "linear rewards. Its predictions are usable, but prototypes_ and ideal_points_ mean nothing. Fix: fix "
                "the temperature (temperature=1.0 on standardised features), learn a map (latent_dim=...), or "
                "standardise the features"
            )
        ]

    def _failure_hint(self) -> str:
        tau = getattr(self, "temperature_", None)
        if tau is not None and (not np.isfinite(tau) or tau * self._feature_scale**2 < _COLLAPSED_TEMPERATURE):
            if self.temperature is not None:
                return (
                    f"The fixed temperature={self.temperature:.3g} is too small for features of scale "
                    f"{self._feature_scale:.3g}: the prototypes (stored divided by it) overflow. Fix: a temperature "
                    "near 1 / std(features)^2, or None to learn it."
                )
            return (
                f"The temperature_ went to {tau:.3g}: the ideal points ran off to infinity (no ideal-point "
                "curvature in the pairs, or features on a tiny scale). Fix: set alpha > 0 (default 1e-3), fix the "
                "temperature (temperature=1.0 on standardised features) or standardise the features."
            )
        return ""

    @staticmethod
    def _pair_terms(dx: torch.Tensor, sx: torch.Tensor, proj: torch.Tensor | None):
        """``z = A dx`` and ``quad = (A dx).(A sx) = ||f(c)||^2 - ||f(r)||^2`` for each pair."""
        if proj is None:
            return dx, (dx * sx).sum(1)
        z = dx @ proj.T
        return z, (z * (sx @ proj.T)).sum(1)

    @staticmethod
    def _nll(terms, rows, scaled_protos, logits, log_tau) -> torch.Tensor:
        """Per-pair negative log-likelihood of ``chosen`` beating ``rejected``.

        ``rows`` (n,) is each pair's user index into ``logits``. The log-odds are
        ``tau (r_u(c) - r_u(r)) = 2 (tau a_u).(A dx) - tau (A dx).(A sx)`` with ``dx = c - r``,
        ``sx = c + r``; the prototypes enter scaled, ``q_k = tau p_k``, so that ``tau -> 0``
        with ``q`` fixed is the limit of far-away ideal points: a mixture of linear rewards.
        (Unscaled, a dominant ``||f(x)||^2`` term drives ``tau`` to 0 and the fit stalls there.)
        """
        z, quad = terms
        weights = torch.softmax(logits, dim=1).index_select(0, rows)
        log_odds = 2.0 * (weights * (z @ scaled_protos.T)).sum(1) - torch.exp(log_tau) * quad
        return F.softplus(-log_odds)

    def _publish_users(self) -> None:
        K = self.prototypes_.shape[0]
        w = softmax(self._logits, axis=1)
        index = pd.Index(self.users_, name="user")
        with np.errstate(over="ignore", invalid="ignore"):  # infinite prototypes: checked after fit
            ideal = w @ self.prototypes_
        self.user_weights_ = pd.DataFrame(w, index=index, columns=[f"prototype_{k}" for k in range(K)])
        self.ideal_points_ = pd.DataFrame(
            ideal, index=index, columns=[f"dim_{j}" for j in range(self.prototypes_.shape[1])]
        )

    def _user_representation(self) -> pd.DataFrame:
        return self.user_weights_

    # ---- prediction ------------------------------------------------------------------
    def _ideal(self, user_idx: np.ndarray) -> np.ndarray:
        pop = self.population_weights_ @ self.prototypes_
        out = np.tile(pop, (len(user_idx), 1))
        known = user_idx != POPULATION
        out[known] = self.ideal_points_.to_numpy()[user_idx[known]]
        return out

    def _reward(self, x: np.ndarray, user_idx: np.ndarray) -> np.ndarray:
        fx = x @ self.projection_.T
        scaled_ideal = self.temperature_ * self._ideal(user_idx)
        return 2.0 * (scaled_ideal * fx).sum(axis=1) - self.temperature_ * (fx * fx).sum(axis=1)

    def transform(self, x: ArrayLike) -> np.ndarray:
        """Map items into the learned space: ``f(x) = A x``, shape (n, m)."""
        check_is_fitted(self, "projection_")
        return check_features(x, "x", self.n_features_in_) @ self.projection_.T

    # ---- few-shot adaptation -----------------------------------------------------------
    def _grow_users(self, n_new: int) -> None:
        prior = np.log(self.population_weights_ + 1e-12)
        self._logits = np.vstack([self._logits, np.tile(prior - prior.mean(), (n_new, 1))])

    def _adapt(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray) -> None:
        dev, dt = resolve_device(self.device)
        users, local = np.unique(user_idx, return_inverse=True)
        prior = np.log(self.population_weights_ + 1e-12)
        prior_t = to_tensor(prior - prior.mean(), dev, dt)
        logits = prior_t.repeat(len(users), 1).clone().requires_grad_(True)
        proj = to_tensor(self.projection_, dev, dt)
        protos = to_tensor(self.prototypes_ * self.temperature_, dev, dt)
        terms = self._pair_terms(to_tensor(chosen - rejected, dev, dt), to_tensor(chosen + rejected, dev, dt), proj)
        rows = torch.as_tensor(local, device=dev)
        log_tau = torch.tensor(np.log(self.temperature_), device=dev, dtype=dt)

        def objective():
            nll = self._nll(terms, rows, protos, logits, log_tau).sum()
            return (nll + self.user_alpha * (logits - prior_t).pow(2).sum()) / len(local)

        lbfgs_minimize(objective, [logits], self.max_iter)
        self._logits[users] = to_numpy(logits)
        self._publish_users()
