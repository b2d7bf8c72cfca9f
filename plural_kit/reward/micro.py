"""MiCRo: mixture modelling with context-aware routing (Shen et al. 2025, "MiCRo: mixture
modeling and context-aware routing for personalized preference learning").

``K`` linear reward heads ``r_k(x) = w_k . x`` on the response features and a router on the
prompt features ``h`` that mixes them per pair::

    pi(h, u) = softmax(V h + b + o_u)                                    (K,)
    P(c > r | h, u) = sum_k pi_k(h, u) * sigmoid(r_k(c) - r_k(r))

Stage 1 (``fit``) learns the heads, the router ``(V, b)`` and, when user ids are given, a
per-user offset ``o_u`` of the router's logits, by maximum likelihood of this per-pair mixture
plus a load-balancing term ``balance * KL(mean_i pi_i || uniform)`` that keeps every head in
use, with full-batch L-BFGS (PyTorch gradients, CPU or GPU) and a few random restarts.
Stage 2 (``adapt``) is the context-aware routing step: for a new user (or a new context
label: ``users`` may name contexts) it fits only that user's router offset ``o_u`` from a few
labelled pairs; the heads and the shared router stay frozen.

How it differs from :class:`~plural_kit.reward.MixtureBT`: MixtureBT puts each *user* in one
latent group for all their pairs (user-level responsibilities, so it needs user ids and a
user's taste cannot change with the question); MiCRo draws the head *per pair* from weights
that depend on the *prompt*, so the same person can be routed to different heads on different
topics, and no user id is needed at all (``users=None`` gives a purely context-routed model).

API: the base API's ``prompts`` (n, d_p) next to the response features (MiCRo is the fitter
that reads them); a model fitted with prompts needs them at prediction time. With
``prompts=None`` the router is just ``b + o_u`` (a mixture of Bradley-Terry models with global
or per-user weights).
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
from plural_kit.reward.base import POPULATION, FitFailedError, PreferenceModel, sigmoid
from plural_kit.reward.bt import separable_without_penalty


class MiCRo(PreferenceModel):
    """Mixture of linear BT heads with a prompt-conditioned router (and per-user router offsets).

    Parameters
    ----------
    n_heads : number K of reward heads.
    alpha : L2 penalty on the heads' weights.
    router_alpha : L2 penalty on the router's weights ``V``.
    user_alpha : L2 penalty on each user's router offset (a Gaussian prior, counted once per user);
        small by default so that a few pairs can override a confident router.
    balance : weight of the load-balancing term ``KL(mean routing || uniform)``.
    n_restarts : random restarts of stage 1; the best objective wins.
    max_iter : L-BFGS iterations per restart (and for ``adapt``).
    device : "auto", "cpu", "cuda", ... (``plural_kit.device.get_device``).
    random_state : seed of the initialisations.

    Fitted attributes
    -----------------
    heads_ : (K, d) the heads' weights ``w_k``.
    router_coef_ : (K, d_p) ``V`` (shape (K, 0) when fitted without prompts).
    router_intercept_ : (K,) ``b``.
    user_offsets_ : DataFrame (users x K) indexed by user id: the router offsets ``o_u`` (empty
        without users). ``user_representation()`` is each user's routing weights at the mean
        training prompt, ``softmax(V mean(h) + b + o_u)``; ``predict_groups()`` their largest head.
    mixing_weights_ : (K,) mean routing weights over the training pairs.
    n_prompt_features_ : d_p (0 without prompts).
    objective_ : final stage-1 objective (per pair).
    """

    _pluralistic = True
    _standardise = True
    _uses_prompts = True
    _group_weights = True
    _parameter_constraints = {
        "n_heads": [Interval(Integral, 1, None, closed="left")],
        **{name: [Interval(Real, 0, None, closed="left")]
           for name in ("alpha", "router_alpha", "user_alpha", "balance")},
        **LBFGS_CONSTRAINTS,
    }

    def __init__(
        self,
        n_heads: int = 2,
        alpha: float = 1e-4,
        router_alpha: float = 1e-3,
        user_alpha: float = 0.01,
        balance: float = 0.1,
        n_restarts: int = 3,
        max_iter: int = 300,
        device: str = "auto",
        random_state: int = 0,
    ):
        self.n_heads = n_heads
        self.alpha = alpha
        self.router_alpha = router_alpha
        self.user_alpha = user_alpha
        self.balance = balance
        self.n_restarts = n_restarts
        self.max_iter = max_iter
        self.device = device
        self.random_state = random_state

    # ---- routing ---------------------------------------------------------------------
    def routing(self, prompts: ArrayLike | None = None, users: ArrayLike | None = None) -> np.ndarray:
        """Router weights ``pi(h, u)`` for each row of ``prompts`` (n, d_p) and/or ``users`` (n,); shape (n, K)."""
        check_is_fitted(self, "n_features_in_")
        if prompts is not None:
            n = np.asarray(prompts).shape[0]
        elif users is not None:
            n = len(users)
        else:
            raise ValueError("give 'prompts' (n, d_p), 'users' (n,) or both")
        checked = self._check_prompts(prompts, n)
        checked = np.zeros((n, 0)) if checked is None else checked
        return softmax(self._router_logits(checked, self._user_index(users, n=n)), axis=1)

    # ---- stage 1 -----------------------------------------------------------------------
    @staticmethod
    def _log_lik(dx, prompts, rows, heads, coef, intercept, offsets) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-pair log P(chosen > rejected) and the routing weights (n, K)."""
        logits = prompts @ coef.T + intercept
        if rows is not None:
            logits = logits + offsets.index_select(0, rows)
        log_pi = torch.log_softmax(logits, dim=1)
        return torch.logsumexp(log_pi + F.logsigmoid(dx @ heads.T), dim=1), log_pi.exp()

    def _fit(self, chosen, rejected, user_idx, prompts: np.ndarray | None = None) -> None:
        prompts_np = np.zeros((chosen.shape[0], 0)) if prompts is None else prompts
        dev, dt = resolve_device(self.device)
        K, d, dp = int(self.n_heads), chosen.shape[1], self.n_prompt_features_
        n = chosen.shape[0]
        dx = to_tensor(chosen - rejected, dev, dt)
        prompts = to_tensor(prompts_np, dev, dt)
        with_users = not (user_idx == POPULATION).all()
        rows = torch.as_tensor(user_idx, device=dev) if with_users else None
        x_scale = float(np.std(chosen - rejected)) or 1.0
        p_scale = float(prompts_np.std()) if dp else 1.0

        best = None
        for restart in range(int(self.n_restarts)):
            gen = torch_generator(self.random_state * 1000 + restart)
            heads = (torch.randn(K, d, generator=gen, dtype=torch.float64) / (x_scale * np.sqrt(d))).to(dev, dt)
            coef = (0.1 * torch.randn(K, dp, generator=gen, dtype=torch.float64) / (p_scale or 1.0)).to(dev, dt)
            intercept = torch.zeros(K, device=dev, dtype=dt)
            offsets = torch.zeros(len(self.users_), K, device=dev, dtype=dt)
            params = [heads.requires_grad_(), coef.requires_grad_(), intercept.requires_grad_()]
            if with_users:
                params.append(offsets.requires_grad_())

            def objective(heads=heads, coef=coef, intercept=intercept, offsets=offsets):
                ll, pi = self._log_lik(dx, prompts, rows, heads, coef, intercept, offsets)
                mean_pi = pi.mean(0)
                lb = (mean_pi * torch.log(mean_pi * K + 1e-12)).sum()
                pen = self.alpha * heads.pow(2).sum() + self.router_alpha * coef.pow(2).sum()
                return -ll.mean() + self.balance * lb + pen + self.user_alpha * offsets.pow(2).sum() / n

            value = lbfgs_minimize(objective, params, self.max_iter)
            if np.isfinite(value) and (best is None or value < best[0]):
                best = (value, [to_numpy(p) for p in (heads, coef, intercept, offsets)])
        if best is None:
            raise FitFailedError("MiCRo: every restart diverged (non-finite objective); try larger penalties")
        self.objective_, (self.heads_, self.router_coef_, self.router_intercept_, self._offsets) = best
        self.mixing_weights_ = softmax(self._router_logits(prompts_np, user_idx), axis=1).mean(axis=0)
        self._mean_prompt = prompts_np.mean(axis=0) if dp else np.zeros(0)
        self._publish_users()

    def _degeneracies(self, chosen, rejected, user_idx, stage, prompts=None):
        if stage != "fit":
            return []
        prompts = np.zeros((chosen.shape[0], 0)) if prompts is None else prompts
        Z = (chosen - rejected) @ self.heads_.T  # (n, K) margins
        routed = self._router_logits(prompts, user_idx).argmax(axis=1)
        bad = [k for k in range(int(self.n_heads)) if separable_without_penalty(Z[routed == k, k], self.alpha)]
        if not bad:
            return []
        return [
            (
                f"the pairs routed to head(s) {bad} are linearly separable (the head ranks every one correctly) and "
                f"alpha={self.alpha:g} does not hold its weights back, so their maximum-likelihood weights are "
                f"infinite: L-BFGS stopped at |heads_| = {np.abs(self.heads_[bad]).max():.3g} only because of "
                "max_iter. Fix: use a penalty, alpha > 0 (the default is 1e-4)"
            )
        ]

    def _router_logits(self, prompts: np.ndarray, user_idx: np.ndarray) -> np.ndarray:
        logits = prompts @ self.router_coef_.T + self.router_intercept_
        known = user_idx != POPULATION
        logits[known] += self._offsets[user_idx[known]]
        return logits

    def _publish_users(self) -> None:
        self.user_offsets_ = pd.DataFrame(
            self._offsets.copy(), index=pd.Index(self.users_, name="user"),
            columns=[f"head_{k}" for k in range(int(self.n_heads))],
        )

    def _user_representation(self) -> pd.DataFrame:
        prompts = np.tile(self._mean_prompt, (len(self.users_), 1))
        weights = softmax(self._router_logits(prompts, np.arange(len(self.users_))), axis=1)
        return pd.DataFrame(weights, index=self.user_offsets_.index, columns=self.user_offsets_.columns)

    # ---- stage 2 -----------------------------------------------------------------------
    def _grow_users(self, n_new: int) -> None:
        self._offsets = np.vstack([self._offsets, np.zeros((n_new, int(self.n_heads)))])

    def _adapt(self, chosen, rejected, user_idx, prompts: np.ndarray | None = None) -> None:
        prompts = np.zeros((chosen.shape[0], 0)) if prompts is None else prompts
        dev, dt = resolve_device(self.device)
        users, local = np.unique(user_idx, return_inverse=True)
        dx = to_tensor(chosen - rejected, dev, dt)
        prompts_t = to_tensor(prompts, dev, dt)
        rows = torch.as_tensor(local, device=dev)
        heads, coef, intercept = (
            to_tensor(a, dev, dt) for a in (self.heads_, self.router_coef_, self.router_intercept_)
        )
        offsets = torch.zeros(len(users), int(self.n_heads), device=dev, dtype=dt, requires_grad=True)

        def objective():
            ll, _ = self._log_lik(dx, prompts_t, rows, heads, coef, intercept, offsets)
            return (-ll.sum() + self.user_alpha * offsets.pow(2).sum()) / len(local)

        lbfgs_minimize(objective, [offsets], self.max_iter)
        self._offsets[users] = to_numpy(offsets)
        self._publish_users()

    # ---- prediction ------------------------------------------------------------------
    def _reward(self, x: np.ndarray, user_idx: np.ndarray, prompts: np.ndarray | None = None) -> np.ndarray:
        prompts = np.zeros((x.shape[0], 0)) if prompts is None else prompts
        return (softmax(self._router_logits(prompts, user_idx), axis=1) * (x @ self.heads_.T)).sum(axis=1)

    def _predict_proba(self, a, b, user_idx, prompts: np.ndarray | None = None) -> np.ndarray:
        prompts = np.zeros((a.shape[0], 0)) if prompts is None else prompts
        return (softmax(self._router_logits(prompts, user_idx), axis=1) * sigmoid((a - b) @ self.heads_.T)).sum(axis=1)

