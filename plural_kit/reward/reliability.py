"""Annotator reliability by EM (the LCPO idea): disagreement read as label noise.

Everyone shares one linear reward ``r(x) = w . x``; annotator ``k`` reports the true preference
with probability ``eta_k`` (their reliability) and the opposite one otherwise::

    P(k labels a > b) = eta_k sigmoid(w . (a - b)) + (1 - eta_k) sigmoid(-w . (a - b))

EM: the E-step gives each label's posterior of being correct, ``c_i = sigmoid(logit(eta_k) +
w . (chosen_i - rejected_i))``; the M-step sets ``eta_k`` to the mean posterior of k's labels and
fits ``w`` by Bradley-Terry on soft labels (weight ``c_i`` on the label as given, ``1 - c_i`` on
its flip; L2 penalty ``alpha``), solved to convergence by Newton with exact line search (the
primitives of :mod:`plural_kit.reward._newton`). The penalised marginal likelihood never
decreases. With every ``eta_k = 1`` the posteriors are all 1 and the model *is*
:class:`~plural_kit.reward.bt.BradleyTerry` (``reliability_init=1.0`` keeps it there).

Predictions: a known annotator's ``P`` is the formula above; the population (no or unknown
user) gets ``sigmoid(w . (a - b))``, the denoised preference. ``reward`` is ``w . x`` for
everyone: this model has no room for a minority with a different view, it calls them noise.
``adapt`` estimates a new annotator's ``eta`` from their labels with ``w`` frozen, shrunk towards
the fitted mean reliability by ``adapt_strength`` pseudo-labels.
"""
from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from scipy.special import expit, logit
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval

from plural_kit.reward import _newton
from plural_kit.reward.base import POPULATION, PreferenceModel, sigmoid
from plural_kit.reward.bt import NEWTON_CONSTRAINTS, float32_differences, separable_without_penalty


class ReliabilityBT(PreferenceModel):
    """One shared Bradley-Terry reward and one reliability ``eta`` per annotator, fitted by EM.

    Parameters
    ----------
    alpha : L2 penalty on ``w`` (as in :class:`~plural_kit.reward.bt.BradleyTerry`).
    reliability_init : every annotator's ``eta`` at the start of EM, in (0.5, 1]; 1.0 keeps
        every ``eta`` at 1 (the posteriors are all 1): the fit is BradleyTerry's.
    adapt_strength : pseudo-labels at the fitted mean reliability added to a new annotator's
        labels in ``adapt`` (0: their own maximum-likelihood ``eta``).
    max_iter : maximum EM iterations.
    tol : stop when the penalised log-likelihood per pair improves by less than ``tol``.
    newton_iter : maximum Newton steps of each M-step.
    hessian_rows, hessian_dtype, device, random_state : as in BradleyTerry.

    Fitted attributes
    -----------------
    coef_ : (d,) the shared reward weights ``w``.
    reliability_ : Series indexed by user id, named ``reliability``: each annotator's ``eta``
        (adapted annotators are appended); also ``user_representation()``.
    mean_reliability_ : ``eta`` averaged over the training labels (the prior of ``adapt``).
    log_likelihood_ : marginal log-likelihood of the training labels (nats, summed).
    n_iter_ : EM iterations; converged_ : whether EM met ``tol`` (False, with a
        ``ConvergenceWarning``, also when the soft labels are separable and ``alpha`` = 0).

    Not pluralistic: every annotator shares the reward, so ``score`` without ``users`` (the
    denoised preference) ranks as the annotators' own predictions do wherever ``eta > 0.5``.
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "reliability_init": [Interval(Real, 0.5, 1, closed="right")],
        "adapt_strength": [Interval(Real, 0, None, closed="left")],
        "newton_iter": [Interval(Integral, 1, None, closed="left")],
        **NEWTON_CONSTRAINTS,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        reliability_init: float = 0.9,
        adapt_strength: float = 4.0,
        max_iter: int = 200,
        tol: float = 1e-7,
        newton_iter: int = 50,
        hessian_rows: int | None = 20_000,
        hessian_dtype: str = "auto",
        device: str = "auto",
        random_state: int = 0,
    ):
        self.alpha = alpha
        self.reliability_init = reliability_init
        self.adapt_strength = adapt_strength
        self.max_iter = max_iter
        self.tol = tol
        self.newton_iter = newton_iter
        self.hessian_rows = hessian_rows
        self.hessian_dtype = hessian_dtype
        self.device = device
        self.random_state = random_state

    # ---- fitting ------------------------------------------------------------------
    def _fit(self, chosen, rejected, user_idx):
        dev, hdt = _newton.resolve(self.device, self.hessian_dtype)
        n = chosen.shape[0]
        # the unit of reliability is the annotator; without user ids all pairs share one
        unit = np.zeros(n, dtype=np.int64) if (user_idx == POPULATION).all() else user_idx
        n_units = int(unit.max()) + 1
        D = torch.as_tensor(float32_differences(chosen, rejected), device=dev)
        u = torch.as_tensor(unit, dtype=torch.int64, device=dev)
        h_idx = _newton.hessian_rows_index(n, self.hessian_rows, self.random_state)
        counts = torch.bincount(u, minlength=n_units).to(torch.float64)
        eta = torch.full((n_units,), float(self.reliability_init), dtype=torch.float64, device=dev)
        w = torch.zeros(D.shape[1], dtype=torch.float64, device=dev)
        z = torch.zeros(n, dtype=torch.float64, device=dev)
        prev, converged = -np.inf, False
        for n_iter in range(1, self.max_iter + 1):
            c = torch.sigmoid(torch.logit(eta)[u] + z)  # E-step: P(label i is correct)
            eta = torch.zeros_like(eta).index_add_(0, u, c) / counts  # M-step
            w, z, newton_ok = _soft_label_newton(D, c, w, z, self.alpha, h_idx, hdt, self.tol, self.newton_iter)
            objective = _marginal_log_lik(z, eta[u]) - 0.5 * self.alpha * float(w @ w)
            if objective - prev < self.tol * n:
                converged = newton_ok
                break
            prev = objective
        else:
            warnings.warn(
                f"ReliabilityBT: EM did not converge in {self.max_iter} iterations; increase max_iter or tol",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.n_iter_, self.converged_ = n_iter, converged
        self.coef_ = w.cpu().numpy()
        self.log_likelihood_ = _marginal_log_lik(z, eta[u])
        eta = eta.cpu().numpy()
        self.mean_reliability_ = float((eta * counts.cpu().numpy()).sum() / n)
        self._set_reliability(eta if (user_idx != POPULATION).any() else np.empty(0))

    def _degeneracies(self, chosen, rejected, user_idx, stage):
        if stage != "fit":
            return []
        margins = (chosen - rejected) @ self.coef_
        if separable_without_penalty(margins, self.alpha):
            self.converged_ = False
            return [
                (
                    f"the {margins.size} training pairs are linearly separable and alpha={self.alpha:g} does not "
                    f"hold the weights back (|coef_| reached {np.abs(self.coef_).max():.3g}): converged_ is set to "
                    "False. Fix: use a penalty, alpha > 0 (the default is 1.0)"
                )
            ]
        return []

    # ---- per-annotator state ----------------------------------------------------------
    def _set_reliability(self, eta: np.ndarray) -> None:
        self._eta = eta
        self.reliability_ = pd.Series(eta, index=pd.Index(self.users_, name="user"), name="reliability")

    def _grow_users(self, n_new):
        self._set_reliability(np.concatenate([self._eta, np.full(n_new, self.mean_reliability_)]))

    def _adapt(self, chosen, rejected, user_idx):
        z = (chosen - rejected) @ self.coef_
        eta = self._eta.copy()
        prior, s = self.mean_reliability_, self.adapt_strength
        for k in np.unique(user_idx):
            zk, e = z[user_idx == k], prior
            for _ in range(500):  # EM on one number: the posteriors, then their (shrunk) mean
                new = (expit(logit(e) + zk).sum() + s * prior) / (zk.size + s)
                if abs(new - e) < 1e-10:
                    break
                e = new
            eta[k] = new
        self._set_reliability(eta)

    def _user_representation(self) -> pd.DataFrame:
        return self.reliability_.to_frame()

    # ---- prediction -----------------------------------------------------------------
    def _predict_proba(self, a, b, user_idx):
        p = sigmoid((a - b) @ self.coef_)
        known = user_idx != POPULATION
        eta = self._eta[user_idx[known]]
        p[known] = eta * p[known] + (1.0 - eta) * (1.0 - p[known])
        return p

    def _reward(self, x, user_idx):
        return x @ self.coef_


def _marginal_log_lik(z: torch.Tensor, eta: torch.Tensor) -> float:
    """``sum_i log(eta_i sigmoid(z_i) + (1 - eta_i) sigmoid(-z_i))`` (nats)."""
    with torch.no_grad():
        ll = torch.logaddexp(torch.log(eta) - torch.nn.functional.softplus(-z),
                             torch.log1p(-eta) - torch.nn.functional.softplus(z))
    return float(ll.sum())


def _soft_label_newton(D, c, w, z, alpha, h_idx, hdt, tol, max_iter):
    """Minimise ``sum_i c_i softplus(-z_i) + (1 - c_i) softplus(z_i) + alpha/2 ||w||^2`` with
    ``z = D w`` from ``w``; returns (w, z, converged).

    The Hessian ``D^T diag(s) D`` does not depend on ``c`` (``s = sigmoid(z) sigmoid(-z)``); the
    line search sees each pair twice, as given (weight ``c``) and flipped (weight ``1 - c``).
    """
    n = D.shape[0]
    D_h, scale = (D, 1.0) if h_idx is None else (D[h_idx.to(D.device)], n / h_idx.numel())
    c2 = torch.cat([c, 1.0 - c])
    for _ in range(max_iter):
        sp = torch.sigmoid(z)
        g = -((c - sp).to(D.dtype) @ D).to(torch.float64) + alpha * w
        s = sp * (1.0 - sp)
        H = _newton.hessian(D_h, s if h_idx is None else s[h_idx.to(D.device)], scale, alpha, hdt)
        p = _newton.newton_direction(H, g)
        dz = (D @ p.to(D.dtype)).to(torch.float64)
        t = _newton.line_search(torch.cat([z, -z]), torch.cat([dz, -dz]), c2, w, p, alpha, float(g @ p))
        w, z = w + t * p, z + t * dz
        if float((t * p).abs().max()) <= tol * (1.0 + float(w.abs().max())):
            return w, z, True
    return w, z, False
