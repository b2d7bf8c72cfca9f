"""A mixture of Bradley-Terry rewards over users (the mixture of MiCRo), fitted by EM.

Every user ``u`` belongs to one of ``K`` latent groups (prior ``pi_k``); group ``k`` has the
linear reward ``w_k . x``. All the pairs of a user share the user's group, so::

    P(pairs of u) = sum_k pi_k prod_{i in u} sigmoid(w_k . (chosen_i - rejected_i))

EM over users: the E-step gives each user's responsibilities ``r_uk`` from their total
log-likelihood under each component; the M-step sets ``pi_k = mean_u r_uk`` and takes one
Newton step with exact line search on each component's weighted, L2-penalised BT objective
(weights ``r_uk`` on all pairs of ``u``; a generalised EM step, so the penalised likelihood
never decreases). The differences ``D = chosen - rejected`` are computed once; one EM
iteration costs two float32 passes over ``D`` for all components together plus one
subsampled Hessian per component (see :mod:`plural_kit.reward._newton`).

Initialisation (``init="gradient"``): fit one population BT, take each user's mean gradient
of the log-likelihood there (the direction in which the user disagrees with the population),
project on its first principal components and cluster with k-means; ``init="random"``: random
Dirichlet responsibilities. Each of the ``n_init`` restarts uses its own seed; the restart
with the highest penalised log-likelihood is kept.

Predictions: for a known user ``P(a > b) = sum_k r_uk sigmoid(w_k . (a - b))``; an unknown user
gets the mixing weights ``pi`` instead of ``r_u`` (with an ``UnknownUserWarning``). ``reward``
returns the responsibility-weighted reward ``sum_k r_uk w_k . x``. ``adapt`` computes new users'
responsibilities from their own pairs with the components and ``pi`` frozen.
"""
from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils._param_validation import Interval, StrOptions

from plural_kit.reward import _newton
from plural_kit.reward.base import POPULATION, PreferenceModel, sigmoid
from plural_kit.reward.bt import NEWTON_CONSTRAINTS, float32_differences, separable_without_penalty


class MixtureBT(PreferenceModel):
    """Mixture of linear Bradley-Terry rewards over users, fitted by EM with restarts.

    Parameters
    ----------
    n_components : number K of latent groups.
    alpha : L2 penalty on each component's weights (sum-of-losses convention, as in
        :class:`~plural_kit.reward.bt.BradleyTerry`).
    n_init : restarts; the best penalised log-likelihood wins.
    init : "gradient" (k-means on the users' population gradients) or "random".
    max_iter : maximum EM iterations per restart.
    tol : stop when the penalised log-likelihood per pair improves by less than ``tol``.
    hessian_rows : rows drawn (with probability proportional to the responsibilities, afresh
        each iteration) for each component's Hessian; None = all rows. Only the path depends on it.
    hessian_dtype, device : as in :class:`~plural_kit.reward.bt.BradleyTerry`.
    random_state : seed of the initialisations and the Hessian subsample.

    Fitted attributes
    -----------------
    coef_ : (K, d) component weights.
    weights_ : (K,) mixing weights ``pi``.
    user_responsibilities_ : DataFrame indexed by user id, one column per component
        (rows sum to 1); adapted users are appended. Also ``user_representation()``;
        ``predict_groups()`` is each user's most responsible component.
    log_likelihood_ : log-likelihood (nats, summed over users) of the kept restart.
    n_iter_ : EM iterations of the kept restart.
    converged_ : whether the kept restart met ``tol``; False (with a ``ConvergenceWarning``) when a
        component's pairs are separable and ``alpha`` does not bound its weights.
    """

    _pluralistic = True
    _standardise = True
    _group_weights = True
    _parameter_constraints = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "init": [StrOptions({"gradient", "random"})],
        **NEWTON_CONSTRAINTS,
    }

    def __init__(
        self,
        n_components: int = 2,
        alpha: float = 1.0,
        n_init: int = 3,
        init: str = "gradient",
        max_iter: int = 200,
        tol: float = 1e-6,
        hessian_rows: int | None = 8192,
        hessian_dtype: str = "auto",
        device: str = "auto",
        random_state: int = 0,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.n_init = n_init
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.hessian_rows = hessian_rows
        self.hessian_dtype = hessian_dtype
        self.device = device
        self.random_state = random_state

    # ---- fitting ------------------------------------------------------------------
    def _fit(self, chosen, rejected, user_idx):
        K = self.n_components
        dev, hdt = _newton.resolve(self.device, self.hessian_dtype)
        n = chosen.shape[0]
        # the unit of the mixture is the user; without user ids every pair is its own unit
        unit = np.arange(n) if (user_idx == POPULATION).all() else user_idx
        n_units = int(unit.max()) + 1
        if n_units < K:
            raise ValueError(f"n_components={K} is more than the {n_units} users (or pairs without users) to cluster")
        D = torch.as_tensor(float32_differences(chosen, rejected), device=dev)
        u = torch.as_tensor(unit, dtype=torch.int64, device=dev)

        w_pop, _, _ = _newton.newton_logistic(
            D,
            alpha=self.alpha,
            hessian_idx=_newton.hessian_rows_index(n, self.hessian_rows, self.random_state),
            hessian_dtype=hdt,
            tol=1e-4,
            max_iter=20,
        )
        seeds = np.random.SeedSequence(self.random_state).generate_state(self.n_init)
        best = None
        for seed in seeds:
            resp0 = self._initial_responsibilities(D, u, n_units, w_pop, int(seed))
            run = self._em(D, u, n_units, w_pop, resp0, hdt, int(seed))
            if best is None or run["objective"] > best["objective"]:
                best = run
        if not best["converged"]:
            warnings.warn(
                f"MixtureBT: EM did not converge in {self.max_iter} iterations; increase max_iter or tol",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.coef_ = best["W"].T.cpu().numpy()
        self.weights_ = best["pi"].cpu().numpy()
        self.log_likelihood_ = best["log_likelihood"]
        self.n_iter_ = best["n_iter"]
        self.converged_ = best["converged"]
        resp = best["resp"].cpu().numpy()
        # per known user (pairs without ids were their own units: no user is known then)
        self._set_responsibilities(resp if (user_idx != POPULATION).any() else np.empty((0, K)))

    def _degeneracies(self, chosen, rejected, user_idx, stage):
        if stage != "fit":
            return []
        Z = (chosen - rejected) @ self.coef_.T  # (n, K) margins
        if len(self._resp):  # each pair's user's most responsible component
            assigned = self._resp[user_idx].argmax(axis=1)
        else:  # pairs without users were their own units
            assigned = (np.log(np.clip(self.weights_, 1e-300, None)) - np.logaddexp(0, -Z)).argmax(axis=1)
        bad = [k for k in range(self.n_components) if separable_without_penalty(Z[assigned == k, k], self.alpha)]
        if not bad:
            return []
        self.converged_ = False
        return [
            (
                f"the pairs of component(s) {bad} are linearly separable (their component ranks every one correctly) "
                f"and alpha={self.alpha:g} does not hold the weights back, so their maximum-likelihood weights are "
                f"infinite: EM stopped at |coef_| = {np.abs(self.coef_[bad]).max():.3g}. converged_ is set to False. "
                "Fix: use a penalty, alpha > 0 (the default is 1.0)"
            )
        ]

    def _initial_responsibilities(self, D, u, n_units, w_pop, seed: int) -> torch.Tensor:
        K = self.n_components
        rng = np.random.default_rng(seed)
        if self.init == "random" or K == 1:
            return torch.as_tensor(rng.dirichlet(np.ones(K), size=n_units), device=D.device)
        # each unit's mean gradient of the log-likelihood at the population weights
        resid = torch.sigmoid(-(D @ w_pop.to(D.dtype)))
        grad = torch.zeros(n_units, D.shape[1], dtype=torch.float32, device=D.device)
        for start in range(0, D.shape[0], 16_384):
            rows = slice(start, start + 16_384)
            grad.index_add_(0, u[rows], D[rows] * resid[rows, None])
        counts = torch.bincount(u, minlength=n_units).clamp(min=1).to(torch.float32)
        grad = (grad / counts[:, None]).cpu().numpy()
        n_pc = max(1, min(K, grad.shape[1], n_units - 1))
        emb = PCA(n_components=n_pc, random_state=seed).fit_transform(grad) if n_units > K else grad
        labels = KMeans(n_clusters=K, n_init=1, random_state=seed).fit_predict(emb)
        return torch.as_tensor(np.eye(K)[labels], device=D.device)

    def _em(self, D, u, n_units, w_pop, resp, hdt, seed: int) -> dict:
        K, alpha = self.n_components, self.alpha
        n = D.shape[0]
        m = n if self.hessian_rows is None else min(n, self.hessian_rows)
        gen = torch.Generator().manual_seed(seed)  # CPU draws: the same rows on every device
        W = w_pop[:, None].repeat(1, K)  # (d, K) float64
        Z = (D @ W.to(D.dtype)).to(torch.float64)  # (n, K) margins
        pi = resp.mean(0)
        prev = -np.inf
        converged = False
        for n_iter in range(1, self.max_iter + 1):
            # M-step: one Newton step with line search per component, weights r_uk on u's pairs
            pi = resp.mean(0)
            C = resp[u]  # (n, K)
            sp = torch.sigmoid(Z)
            G = -((C * (1.0 - sp)).to(D.dtype).T @ D).T.to(torch.float64) + alpha * W  # (d, K)
            S = sp * (1.0 - sp)
            P = torch.empty_like(W)
            for k in range(K):
                if m == n:
                    H = _newton.hessian(D, C[:, k] * S[:, k], 1.0, alpha, hdt)
                else:  # m rows drawn with probability r_uk: (sum_i r_ik / m) D_S^T diag(s_S) D_S is unbiased
                    rows = torch.multinomial(C[:, k].cpu() + 1e-12, m, replacement=True, generator=gen).to(D.device)
                    H = _newton.hessian(D[rows], S[rows, k], float(C[:, k].sum()) / m, alpha, hdt)
                P[:, k] = _newton.newton_direction(H, G[:, k])
            DZ = (D @ P.to(D.dtype)).to(torch.float64)
            for k in range(K):
                slope = float(G[:, k] @ P[:, k])
                t = _newton.line_search(Z[:, k], DZ[:, k], C[:, k], W[:, k], P[:, k], alpha, slope)
                W[:, k] += t * P[:, k]
                Z[:, k] += t * DZ[:, k]
            # E-step
            resp, log_lik = _e_step(Z, u, n_units, pi)
            objective = log_lik - 0.5 * alpha * float((W * W).sum())
            if objective - prev < self.tol * n:
                converged = True
                break
            prev = objective
        return {
            "W": W, "pi": pi, "resp": resp, "objective": objective,
            "log_likelihood": log_lik, "n_iter": n_iter, "converged": converged,
        }

    # ---- per-user state -------------------------------------------------------------
    def _set_responsibilities(self, resp: np.ndarray) -> None:
        self._resp = resp
        self.user_responsibilities_ = pd.DataFrame(
            resp, index=pd.Index(self.users_, name="user"), columns=pd.RangeIndex(self.n_components, name="component")
        )

    def _grow_users(self, n_new):
        self._set_responsibilities(np.vstack([self._resp, np.tile(self.weights_, (n_new, 1))]))

    def _adapt(self, chosen, rejected, user_idx):
        Z = torch.as_tensor((chosen - rejected) @ self.coef_.T, dtype=torch.float64)
        uniq, local = np.unique(user_idx, return_inverse=True)
        resp, _ = _e_step(Z, torch.as_tensor(local), uniq.size, torch.as_tensor(self.weights_))
        new = self._resp.copy()
        new[uniq] = resp.numpy()
        self._set_responsibilities(new)

    def _user_weights(self, user_idx: np.ndarray) -> np.ndarray:
        known = user_idx != POPULATION
        R = np.tile(self.weights_, (user_idx.size, 1))
        R[known] = self._resp[user_idx[known]]
        return R

    # ---- prediction -----------------------------------------------------------------
    def _predict_proba(self, a, b, user_idx):
        return np.einsum("ik,ik->i", self._user_weights(user_idx), sigmoid((a - b) @ self.coef_.T))

    def _reward(self, x, user_idx):
        return np.einsum("ik,ik->i", self._user_weights(user_idx), x @ self.coef_.T)

    def _user_representation(self) -> pd.DataFrame:
        return self.user_responsibilities_


def _e_step(Z: torch.Tensor, u: torch.Tensor, n_units: int, pi: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Responsibilities (n_units, K) and the total log-likelihood from the margins ``Z`` (n, K)."""
    ll = torch.zeros(n_units, Z.shape[1], dtype=torch.float64, device=Z.device)
    ll.index_add_(0, u.to(Z.device), -F.softplus(-Z))
    joint = ll + torch.log(pi.to(Z.device).clamp(min=1e-300))
    norm = torch.logsumexp(joint, dim=1, keepdim=True)
    return torch.exp(joint - norm), float(norm.sum())
