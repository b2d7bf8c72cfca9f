"""VPL: variational preference learning (Poddar et al. 2024, "Personalizing reinforcement
learning from human feedback with variational preference learning").

A user is summarised by a latent vector ``z`` inferred from a few of their own annotated
pairs (the *context*), and the reward is conditioned on it:

* encoder ``q(z | C)``: each context pair ``(c, r)`` is embedded by an MLP of ``[c, r]`` whose
  two linear heads give the pair's Gaussian evidence about ``z``, an observation ``o_i`` and a
  precision ``lambda_i > 0`` (``latent_dim`` each); the evidence is combined with the ``N(0, I)``
  prior by Bayesian aggregation (Volpp et al. 2021): precision ``1 + sum_i lambda_i``, mean
  ``sum_i lambda_i o_i / (1 + sum_i lambda_i)``. A set encoder (any number of pairs, in any
  order) whose posterior variance shrinks as pairs are added: one pair moves ``z`` a little
  from the prior, a hundred pin it down. (Mean pooling, which this replaced, gave the same
  variance for 1 and 120 pairs, so a one-pair latent was overconfident and one-pair adaptation
  scored below none.);
* decoder: the reward ``r(x, z)`` is an MLP of ``[x, z]``; ``P(c > r | z) = sigmoid(r(c, z) - r(r, z))``.

Training maximises the ELBO with the reparameterisation trick. At every step each user gets
a fresh context of ``context_size`` of their own pairs, and the loss is, per pair,

    loss = [ sum_u (n_u / t_u) sum_{i in T_u} -log P(y_i | z_u)  +  beta * sum_u KL(q(z | C_u) || N(0, I)) ] / N

with ``T_u`` a random batch of ``t_u`` of the user's ``n_u`` pairs (``N = sum_u n_u``). With
``beta = 1`` this is the exact negative ELBO of the data per pair (the KL is counted once per
user against the likelihood of all their pairs); ``beta`` is warmed up linearly from 0 over the
first ``kl_warmup`` fraction of the steps, which keeps the decoder from ignoring ``z``
early on (posterior collapse).

Reward scaling (VPL section 4.2): pairwise comparisons fix a reward only up to a per-user
offset and scale, so raw rewards of different users are not comparable. With
``reward_scaling="pairwise"``, :meth:`reward` returns ``E_{x'}[P(x > x' | z)]`` over a fixed
reference set of training items, a number in [0, 1] on the same scale for every user (what a
policy conditioned on ``z`` should be trained on). Pair probabilities always use the raw
rewards.

Users from ``fit`` are predicted with their posterior mean given all their training pairs;
unknown users get the population prediction, the average over up to 64 known users' latents
(with an ``UnknownUserWarning``). ``adapt`` infers a user's posterior from their pairs with one
forward pass of the encoder (no gradient steps, no parameter changes) by empirical Bayes: the
prior is that population, a mixture of the known users' Gaussian posteriors, and the encoder's
Gaussian evidence updates each component in closed form and reweighs them by how well they
predict it. With no pairs this is exactly the population prediction, so a pair or two only
move a new user as far as they are evidence; with many pairs every component goes where
the pairs say, also away from the known users. ``user_latents_`` holds the mixture's mean and
``user_latent_log_var_`` its variance.
"""
from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.utils._param_validation import Interval, StrOptions

from plural_kit.device import cpu_threads
from plural_kit.reward._torch import (
    TORCH_CONSTRAINTS,
    resolve_device,
    to_numpy,
    to_tensor,
    torch_generator,
)
from plural_kit.reward.base import POPULATION, PreferenceModel, sigmoid

_MAX_POPULATION_LATENTS = 64  # known users averaged over for the population prediction
_N_REFERENCE = 256  # reference items for the pairwise reward scaling
_PRUNE = 1e-9  # an adapted user's candidate latent below this weight (relative to the best) is dropped
_COLLAPSED = 0.01  # user_spread_ below this: every user gets the same predictions (posterior collapse)


class PosteriorCollapseWarning(UserWarning):
    """VPL's users all get the same predictions: the latent carries nothing, VPL is one reward."""


def _mlp(n_in: int, hidden: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(n_in, hidden), nn.SiLU(), nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, n_out)
    )


class _VPLNet(nn.Module):
    def __init__(self, d: int, latent_dim: int, hidden: int):
        super().__init__()
        self.pair = _mlp(2 * d, hidden, hidden)
        self.obs = nn.Linear(hidden, latent_dim)
        self.log_precision = nn.Linear(hidden, latent_dim)
        # each pair starts as strong evidence (precision softplus(4) = 4): z carries the context from
        # the first steps instead of being shrunk to the prior; training learns what a pair is worth
        nn.init.constant_(self.log_precision.bias, 4.0)
        self.decoder = _mlp(d + latent_dim, hidden, 1)

    def encode(self, ctx_c: torch.Tensor, ctx_r: torch.Tensor, mask: torch.Tensor):
        """Contexts of pairs (U, C, d) with a (U, C) validity mask -> mu, log_var (U, latent_dim)."""
        obs, prec = self._evidence(ctx_c, ctx_r)
        m = mask[..., None]
        return self._posterior((prec * obs * m).sum(1), (prec * m).sum(1))

    def encode_segments(self, c: torch.Tensor, r: torch.Tensor, seg: torch.Tensor, n_seg: int):
        """Pairs (n, d) grouped by ``seg`` (n,) in [0, n_seg) -> mu, log_var (n_seg, latent_dim), in O(n) memory."""
        obs, prec = self._evidence(c, r)
        zeros = torch.zeros(n_seg, obs.shape[1], dtype=obs.dtype, device=obs.device)
        return self._posterior(zeros.index_add(0, seg, prec * obs), zeros.index_add(0, seg, prec))

    def _evidence(self, c: torch.Tensor, r: torch.Tensor):
        """Each pair's Gaussian evidence about ``z``: an observation and its precision (> 0), per latent dim."""
        h = self.pair(torch.cat([c, r], dim=-1))
        return self.obs(h), F.softplus(self.log_precision(h))

    @staticmethod
    def _posterior(weighted_obs: torch.Tensor, precision: torch.Tensor):
        """Bayesian aggregation: the N(0, I) prior times each pair's evidence. The precision is
        1 + the sum over the context, so the posterior variance shrinks as pairs are added."""
        total = 1.0 + precision
        return weighted_obs / total, -torch.log(total)

    def reward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Rewards of rows ``x`` (n, d) under latents ``z`` (n, latent_dim); shape (n,)."""
        return self.decoder(torch.cat([x, z], dim=-1)).squeeze(-1)


class VPL(PreferenceModel):
    """Variational preference learning: a latent user vector from a few pairs conditions the reward.

    Parameters
    ----------
    latent_dim : dimension of ``z``.
    hidden_dim : width of the encoder's and the decoder's MLPs (two hidden layers, SiLU).
    context_size : pairs per context during training (drawn afresh each step from the user's own pairs).
    targets_per_user : pairs per user whose likelihood is evaluated at each step (None: all).
    beta : weight of the KL term (1 = the exact ELBO; see the module docstring).
    kl_warmup : fraction of the steps over which ``beta`` grows linearly from 0.
    n_steps : Adam steps (full passes over the users).
    lr : Adam learning rate (cosine-decayed to 5% of it).
    weight_decay : AdamW weight decay.
    reward_scaling : "pairwise" (``reward`` returns the expected win rate against reference
        items, in [0, 1]) or "none" (raw decoder output).
    device : "auto", "cpu", "cuda", ... (``plural_kit.device.get_device``).
    random_state : seed of the initialisation, the contexts and the reparameterisation noise.

    Fitted attributes
    -----------------
    user_latents_ : DataFrame (users x latent_dim): each known user's posterior mean of ``z``;
        also ``user_representation()``. ``predict_groups(n_groups)`` clusters it with k-means.
    user_latent_log_var_ : DataFrame (users x latent_dim): the posterior log-variances.
    loss_curve_ : (n_steps,) training loss per step.
    user_spread_ : how much the users' latents change the predictions: the mean over up to 256
        training pairs of the standard deviation of ``P(chosen)`` across the population's latents
        (probability units). Below 0.01 the posterior has collapsed (every user is predicted
        alike, a :class:`PosteriorCollapseWarning` says so): on these pairs VPL is one reward.
    """

    _pluralistic = True
    _standardise = True
    _parameter_constraints = {
        **{name: [Interval(Integral, 1, None, closed="left")]
           for name in ("latent_dim", "hidden_dim", "context_size", "n_steps")},
        "targets_per_user": [Interval(Integral, 1, None, closed="left"), None],
        "beta": [Interval(Real, 0, None, closed="left")],
        "kl_warmup": [Interval(Real, 0, 1, closed="both")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "reward_scaling": [StrOptions({"pairwise", "none"})],
        **TORCH_CONSTRAINTS,
    }

    def __init__(
        self,
        latent_dim: int = 4,
        hidden_dim: int = 64,
        context_size: int = 8,
        targets_per_user: int | None = 32,
        beta: float = 1.0,
        kl_warmup: float = 0.2,
        n_steps: int = 1000,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        reward_scaling: Literal["pairwise", "none"] = "pairwise",
        device: str = "auto",
        random_state: int = 0,
    ):
        self.latent_dim = latent_dim
        self.hidden_dim = hidden_dim
        self.context_size = context_size
        self.targets_per_user = targets_per_user
        self.beta = beta
        self.kl_warmup = kl_warmup
        self.n_steps = n_steps
        self.lr = lr
        self.weight_decay = weight_decay
        self.reward_scaling = reward_scaling
        self.device = device
        self.random_state = random_state

    # ---- fitting -------------------------------------------------------------------
    @staticmethod
    def _groups(user_idx: np.ndarray, n_users: int) -> np.ndarray:
        """(n_users, max_pairs) matrix of each user's pair rows, padded with -1."""
        order = np.argsort(user_idx, kind="stable")
        counts = np.bincount(user_idx, minlength=n_users)
        table = np.full((n_users, max(int(counts.max()), 1)), -1, dtype=np.int64)
        starts = np.r_[0, np.cumsum(counts)[:-1]]
        for u in range(n_users):
            table[u, : counts[u]] = order[starts[u] : starts[u] + counts[u]]
        return table

    @staticmethod
    def _sample(table: torch.Tensor, k: int, gen: torch.Generator):
        """For each user draw ``k`` of their rows without replacement: (rows (U, k), mask (U, k))."""
        keys = torch.rand(table.shape, generator=gen).to(table.device)
        keys = keys.masked_fill(table < 0, -1.0)
        k = min(k, table.shape[1])
        top, pos = keys.topk(k, dim=1)
        rows = table.gather(1, pos)
        mask = top >= 0
        return rows.clamp_min(0), mask

    def _fit(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray) -> None:
        if (user_idx == POPULATION).all():
            raise ValueError("VPL needs 'users': the latent of each user is inferred from their own pairs")
        dev, _ = resolve_device(self.device)
        dt = torch.float32
        self._device = dev
        gen = torch_generator(self.random_state)
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG state untouched
            torch.manual_seed(self.random_state)
            net = _VPLNet(chosen.shape[1], int(self.latent_dim), int(self.hidden_dim)).to(dev, dt)

        n_users = len(self.users_)
        xc, xr = to_tensor(chosen, dev, dt), to_tensor(rejected, dev, dt)
        table = torch.as_tensor(self._groups(user_idx, n_users), device=dev)
        n_pairs = (table >= 0).sum(1).to(dt)  # n_u
        n_total = float(n_pairs.sum())
        n_targets = table.shape[1] if self.targets_per_user is None else int(self.targets_per_user)

        opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay, foreach=True)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * s / self.n_steps))
        )
        warm = max(1, int(self.kl_warmup * self.n_steps))
        losses = np.empty(int(self.n_steps))
        with cpu_threads(1, dev):  # a small network: one thread is faster than two on the CPU
            for step in range(int(self.n_steps)):
                ctx, ctx_mask = self._sample(table, int(self.context_size), gen)
                mu, log_var = net.encode(xc[ctx], xr[ctx], ctx_mask.to(dt))
                eps = torch.randn(mu.shape, generator=gen).to(dev, dt)
                z = mu + torch.exp(0.5 * log_var) * eps
                tgt, tgt_mask = self._sample(table, n_targets, gen)
                t_u = tgt_mask.sum(1).to(dt)
                zt = z[:, None, :].expand(-1, 2 * tgt.shape[1], -1)
                r_c, r_r = net.reward(torch.cat([xc[tgt], xr[tgt]], dim=1), zt).chunk(2, dim=1)
                margin = r_c - r_r
                nll = (F.softplus(-margin) * tgt_mask).sum(1) * n_pairs / t_u
                kl = 0.5 * (mu.pow(2) + log_var.exp() - 1.0 - log_var).sum(1)
                beta = self.beta * min(1.0, (step + 1) / warm)
                loss = (nll.sum() + beta * kl.sum()) / n_total
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses[step] = float(loss.detach())
        opt.zero_grad(set_to_none=True)
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.net_ = net
        self.loss_curve_ = losses
        for attr in ("_weights", "_components"):  # (a refit starts from no population)
            vars(self).pop(attr, None)
        self._latents = np.zeros((0, int(self.latent_dim)))
        self._log_vars = np.zeros((0, int(self.latent_dim)))
        self._grow_users(n_users)
        # each user's posterior under the N(0, I) prior, from all of their training pairs
        users, weighted, total = self._evidence(chosen, rejected, user_idx)
        self._latents[users], self._log_vars[users] = weighted / (1.0 + total), -np.log1p(total)
        self._set_population()
        self._components[:, -1], self._weights[:, -1] = self._latents, 1.0  # one component: the user's own mean
        self._publish_users()
        self._check_collapse(chosen, rejected)
        rng = np.random.default_rng(self.random_state)
        items = np.concatenate([chosen, rejected])
        self._reference = items[rng.choice(len(items), min(_N_REFERENCE, len(items)), replace=False)]

    def _check_collapse(self, chosen: np.ndarray, rejected: np.ndarray) -> None:
        """Set ``user_spread_`` and warn when the users' latents do not change the predictions."""
        rows = np.random.default_rng(self.random_state).permutation(len(chosen))[:_N_REFERENCE]
        z = self._pop_mean[:, None, :]                                   # (J, 1, L) against (n, d)
        p = sigmoid(self._decode(chosen[rows], z) - self._decode(rejected[rows], z))
        self.user_spread_ = float(p.std(axis=0).mean())
        if self.user_spread_ < _COLLAPSED and len(self._pop_mean) > 1:
            warnings.warn(
                f"VPL predicts every user alike (user_spread_ = {self.user_spread_:.2g} < {_COLLAPSED}: the "
                "posterior collapsed to the prior, so on these pairs VPL is one reward for everyone). If the "
                "users do differ: more pairs per user, more n_steps, a smaller beta or fewer features.",
                PosteriorCollapseWarning, stacklevel=5)

    def _failure_hint(self) -> str:
        losses = getattr(self, "loss_curve_", np.zeros(0))
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            return (
                f"Training diverged: the loss is non-finite from step {bad[0]} of {losses.size}. Fix: a smaller lr "
                f"(now {self.lr:g}; the default is 3e-3), a larger weight_decay or standardised features."
            )
        return "Fix: a smaller lr (the default is 3e-3) or standardised features."

    # ---- latents ---------------------------------------------------------------------
    def _evidence(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray):
        """The encoder's evidence from each user's pairs: (users, sum_i lambda_i o_i, sum_i lambda_i)."""
        users, local = np.unique(user_idx, return_inverse=True)
        xc = to_tensor(chosen, self._device, torch.float32)
        xr = to_tensor(rejected, self._device, torch.float32)
        with torch.inference_mode():
            obs, prec = self.net_._evidence(xc, xr)
            seg = torch.as_tensor(local, device=self._device)
            zeros = torch.zeros(len(users), obs.shape[1], dtype=obs.dtype, device=obs.device)
            weighted, total = zeros.index_add(0, seg, prec * obs), zeros.index_add(0, seg, prec)
        return users, to_numpy(weighted).astype(np.float64), to_numpy(total).astype(np.float64)

    def _set_population(self) -> None:
        """The population: up to 64 evenly spaced users' posteriors from ``fit``."""
        n = len(self._latents)
        pick = np.unique(np.linspace(0, n - 1, min(_MAX_POPULATION_LATENTS, n)).astype(int))
        self._pop_mean = self._latents[pick].copy()
        self._components = np.zeros((n, len(pick) + 1, int(self.latent_dim)))  # (+1: a user's own latent)
        self._weights = np.zeros((n, len(pick) + 1))

    def _adapt(self, chosen: np.ndarray, rejected: np.ndarray, user_idx: np.ndarray) -> None:
        """Bayes over candidate latents: the population's (up to 64 known users') and the user's own
        encoder posterior mean, equally likely a priori, weighted by the exact likelihood of the
        given pairs under the decoder. With no pairs this is the population prediction; a pair or
        two reweigh the known users like a mixture's responsibilities; with many pairs the user's own
        latent explains them best and takes over, also away from the known users."""
        users, local = np.unique(user_idx, return_inverse=True)
        _, weighted, total = self._evidence(chosen, rejected, user_idx)
        own = weighted / (1.0 + total)  # (U, L): the encoder's posterior mean under N(0, I)
        J = len(self._pop_mean)
        cand = np.concatenate([np.broadcast_to(self._pop_mean, (len(users), J, own.shape[1])), own[:, None]], axis=1)
        loglik = np.zeros((len(users), J + 1))
        for j in range(J + 1):
            z = cand[local, j]
            margin = self._decode(chosen, z) - self._decode(rejected, z)
            np.add.at(loglik[:, j], local, -np.logaddexp(0.0, -margin))  # log sigmoid(margin)
        w = np.exp(loglik - loglik.max(axis=1, keepdims=True))
        w[w < _PRUNE] = 0.0  # candidates the pairs rule out cost no decoding at prediction
        w /= w.sum(axis=1, keepdims=True)
        self._components[users], self._weights[users] = cand, w
        mean = (w[..., None] * cand).sum(1)
        self._latents[users] = mean
        self._log_vars[users] = np.log(np.maximum((w[..., None] * (cand - mean[:, None]) ** 2).sum(1), 1e-12))
        self._publish_users()

    def _publish_users(self) -> None:
        index = pd.Index(self.users_, name="user")
        cols = [f"z_{j}" for j in range(int(self.latent_dim))]
        self.user_latents_ = pd.DataFrame(self._latents.copy(), index=index, columns=cols)
        self.user_latent_log_var_ = pd.DataFrame(self._log_vars.copy(), index=index, columns=cols)

    def _user_representation(self) -> pd.DataFrame:
        return self.user_latents_

    def _grow_users(self, n_new: int) -> None:
        L = int(self.latent_dim)
        self._latents = np.vstack([self._latents, np.zeros((n_new, L))])
        self._log_vars = np.vstack([self._log_vars, np.zeros((n_new, L))])
        if hasattr(self, "_weights"):  # (fit sets them up once the population is known)
            J = self._weights.shape[1]
            self._components = np.concatenate([self._components, np.zeros((n_new, J, L))])
            self._weights = np.vstack([self._weights, np.zeros((n_new, J))])

    # ---- prediction ------------------------------------------------------------------
    def _mixture(self, user_idx: np.ndarray):
        """Each row's predictive: component weights (n, J) and latents (n, J, latent_dim).

        A user from ``fit``: their own posterior mean; an adapted user: their empirical-Bayes
        mixture; an unknown user: the population, every component weighted equally."""
        J = len(self._pop_mean)
        known = user_idx != POPULATION
        w = np.zeros((len(user_idx), J + 1))
        w[:, :J] = 1.0 / J
        z = np.zeros((len(user_idx), J + 1, self._pop_mean.shape[1]))
        z[:, :J] = self._pop_mean
        w[known], z[known] = self._weights[user_idx[known]], self._components[user_idx[known]]
        return w, z

    def _decode(self, x: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Raw rewards ``r(x, z)``: ``x`` (..., d) with ``z`` (..., latent_dim) broadcast against it."""
        xt, zt = to_tensor(x, self._device, torch.float32), to_tensor(z, self._device, torch.float32)
        shape = torch.broadcast_shapes(xt.shape[:-1], zt.shape[:-1])
        with torch.inference_mode():
            out = self.net_.reward(xt.expand(*shape, -1), zt.expand(*shape, -1))
        return to_numpy(out)

    def _reward(self, x: np.ndarray, user_idx: np.ndarray) -> np.ndarray:
        """Mixture-weighted reward; with pairwise scaling each component's reward is its expected
        win rate ``mean_x' sigmoid(r(x, z) - r(x', z))`` over the reference items."""
        w, z = self._mixture(user_idx)
        out = np.zeros(len(x))
        for j in range(w.shape[1]):
            rows = np.flatnonzero(w[:, j] > 0)
            if rows.size == 0:
                continue
            raw = self._decode(x[rows], z[rows, j])
            if self.reward_scaling != "none":
                latents, which = np.unique(z[rows, j], axis=0, return_inverse=True)
                ref = self._decode(self._reference[None, :, :], latents[:, None, :])  # (distinct, R)
                raw = sigmoid(raw[:, None] - ref[which.ravel()]).mean(axis=1)
            out[rows] += w[rows, j] * raw
        return out

    def _predict_proba(self, a: np.ndarray, b: np.ndarray, user_idx: np.ndarray) -> np.ndarray:
        w, z = self._mixture(user_idx)
        out = np.zeros(len(a))
        for j in range(w.shape[1]):
            rows = np.flatnonzero(w[:, j] > 0)
            if rows.size:
                zj = z[rows, j]
                out[rows] += w[rows, j] * sigmoid(self._decode(a[rows], zj) - self._decode(b[rows], zj))
        return out
