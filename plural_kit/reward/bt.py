"""Bradley-Terry with a linear reward: one reward ``r(x) = w . x`` for the whole population.

``P(a preferred to b) = sigmoid(w . (a - b))``; ``w`` is the L2-penalised maximum-likelihood
(MAP, prior ``N(0, I / alpha)``) estimate, found by the full-batch Newton solver of
:mod:`plural_kit.reward._newton` (PyTorch: CPU or CUDA, same code).

Personalisation (``adapt``): BT itself has no per-user parameters. ``adapt`` gives each new
user an offset ``delta_u`` on top of the frozen population weights, ``w_u = w + delta_u``,
fitted on their own pairs with an L2 penalty ``adapt_alpha / 2 ||delta_u||^2`` (a Gaussian
prior centred on the population: with few pairs the user stays close to ``w``). Users seen
only in ``fit`` have ``delta_u = 0``: ``fit`` is the population model.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
import torch
from sklearn.utils._param_validation import Interval, StrOptions

from plural_kit.device import cpu_threads
from plural_kit.reward import _newton
from plural_kit.reward.base import POPULATION, PreferenceModel

#: constraints shared by the Newton-solved fitters (BradleyTerry, MixtureBT)
NEWTON_CONSTRAINTS = {
    "tol": [Interval(Real, 0, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    "hessian_rows": [Interval(Integral, 1, None, closed="left"), None],
    "hessian_dtype": [StrOptions({"auto", *_newton.HESSIAN_DTYPES})],
    "device": [str],
    "random_state": [Interval(Integral, 0, None, closed="left")],
}


class BradleyTerry(PreferenceModel):
    """Linear Bradley-Terry reward model (scikit-learn style).

    Parameters
    ----------
    alpha : L2 penalty on ``w`` (sum-of-losses convention, like ``1 / C`` in scikit-learn);
        0 gives the plain maximum-likelihood estimate (needs non-separable data).
    adapt_alpha : L2 penalty of each adapted user's offset ``delta_u``.
    tol : stop when a Newton step moves no weight by more than ``tol * (1 + max|w|)``.
    max_iter : maximum Newton iterations.
    hessian_rows : rows used for the Hessian (a fixed random subsample; None = all). Only the
        path to the optimum depends on it.
    hessian_dtype : "auto" (bf16 on CPUs with bf16 matrix units and on GPUs, else float32),
        "float32", "float64" or "bfloat16": precision of the Hessian product only.
    device : "auto", "cpu", "cuda", ... (see :func:`plural_kit.device.get_device`).
    random_state : seed of the Hessian subsample.

    Fitted attributes
    -----------------
    coef_ : (d,) population weights ``w``.
    user_offsets_ : DataFrame (users x d) indexed by user id: the offsets ``delta_u`` (0 unless
        adapted); also ``user_representation()``.
    n_iter_ : Newton iterations of the last fit.
    converged_ : whether the last fit met ``tol``; False (with a ``ConvergenceWarning``) when the
        pairs are separable and ``alpha`` does not bound the weights: the optimum is at infinity.

    A fit whose weights or predictions are not finite raises ``FitFailedError`` and leaves the
    model unfitted (see :class:`~plural_kit.reward.base.PreferenceModel`); features whose
    differences overflow float32 are a ``ValueError``.
    """

    _parameter_constraints = {
        "alpha": [Interval(Real, 0, None, closed="left")],
        "adapt_alpha": [Interval(Real, 0, None, closed="left")],
        **NEWTON_CONSTRAINTS,
    }

    def __init__(
        self,
        alpha: float = 1.0,
        adapt_alpha: float = 10.0,
        tol: float = 1e-6,
        max_iter: int = 100,
        hessian_rows: int | None = 20_000,
        hessian_dtype: str = "auto",
        device: str = "auto",
        random_state: int = 0,
    ):
        self.alpha = alpha
        self.adapt_alpha = adapt_alpha
        self.tol = tol
        self.max_iter = max_iter
        self.hessian_rows = hessian_rows
        self.hessian_dtype = hessian_dtype
        self.device = device
        self.random_state = random_state

    def _solve(self, D: np.ndarray, alpha: float, offset: np.ndarray | None = None) -> tuple[np.ndarray, int, bool]:
        dev, hdt = _newton.resolve(self.device, self.hessian_dtype)
        Dt = torch.as_tensor(D, dtype=torch.float32, device=dev)
        off = None if offset is None else torch.as_tensor(offset, dtype=torch.float64, device=dev)
        with cpu_threads(1 if D.size <= _ONE_THREAD_ENTRIES else None, dev):
            w, n_iter, ok = _newton.newton_logistic(
                Dt,
                alpha=alpha,
                offset=off,
                hessian_idx=_newton.hessian_rows_index(D.shape[0], self.hessian_rows, self.random_state),
                hessian_dtype=hdt,
                tol=self.tol,
                max_iter=self.max_iter,
            )
        return w.cpu().numpy(), n_iter, ok

    def _fit(self, chosen, rejected, user_idx):
        D = float32_differences(chosen, rejected)
        w, self.n_iter_, self.converged_ = self._solve(D, self.alpha)
        self.coef_ = w
        self._margins = D @ w.astype(np.float32)  # for the separability check, from the solver's own float32 D
        self._offsets = np.zeros((len(self.users_), w.size))
        self._publish_users()

    def _degeneracies(self, chosen, rejected, user_idx, stage):
        if stage == "adapt":
            return self._adapt_degeneracies(chosen, rejected, user_idx)
        margins = vars(self).pop("_margins")  # (n,) float32, set by _fit; not kept on the model
        if separable_without_penalty(margins, self.alpha):
            self.converged_ = False  # the optimum is at infinity: what the solver stopped at is arbitrary
            return [
                (
                    f"the {margins.size} training pairs are linearly separable (coef_ ranks every one correctly) "
                    f"and alpha={self.alpha:g} does not hold the weights back, so the maximum-likelihood "
                    f"weights are infinite: the solver stopped at |coef_| = {np.abs(self.coef_).max():.3g} "
                    f"after {self.n_iter_} iterations, where every training pair gets P >= 1 - {np.exp(-margins.min()):.1e}. "
                    "converged_ is set to False. Fix: use a penalty, alpha > 0 (the default is 1.0)"
                )
            ]
        if not self.converged_:
            return [
                (
                    f"did not converge in {self.max_iter} iterations (separable data with a tiny alpha?); "
                    "increase max_iter or alpha"
                )
            ]
        return []

    def _adapt_degeneracies(self, chosen, rejected, user_idx):
        margins = np.einsum("ij,ij->i", chosen - rejected, self.coef_ + self._offsets[user_idx])
        bad = [u for u in np.unique(user_idx) if separable_without_penalty(margins[user_idx == u], self.adapt_alpha)]
        if not bad:
            return []
        names = self.users_[bad].tolist()
        return [
            (
                f"the pairs of {len(bad)} adapted user(s) (e.g. {names[:3]}) are separable and adapt_alpha="
                f"{self.adapt_alpha:g} does not hold their offsets back: their maximum-likelihood offsets are "
                f"infinite (|offset| reached {np.abs(self._offsets[bad]).max():.3g}). Fix: adapt_alpha > 0 "
                "(the default is 10.0), a prior that keeps a user with few pairs close to the population"
            )
        ]

    def _publish_users(self) -> None:
        self.user_offsets_ = pd.DataFrame(
            self._offsets.copy(), index=pd.Index(self.users_, name="user"),
            columns=pd.RangeIndex(self.coef_.size, name="feature"),
        )

    def _user_representation(self) -> pd.DataFrame:
        return self.user_offsets_

    def _grow_users(self, n_new):
        self._offsets = np.vstack([self._offsets, np.zeros((n_new, self.coef_.size))])

    def _adapt(self, chosen, rejected, user_idx):
        D = chosen - rejected
        base = D @ self.coef_
        for u in np.unique(user_idx):
            rows = user_idx == u
            self._offsets[u], _, _ = self._solve(D[rows], self.adapt_alpha, offset=base[rows])
        self._publish_users()

    def _reward(self, x, user_idx):
        r = x @ self.coef_
        known = user_idx != POPULATION
        if known.any():
            r[known] += np.einsum("ij,ij->i", x[known], self._offsets[user_idx[known]])
        return r


#: up to this many entries in ``D`` (64 MB of float32) the Newton solver runs on one CPU thread: each of its
#: many small steps (products, Cholesky, line search) waits for every thread, which on a busy machine costs
#: more than the threads save (the solve on 20,000 x 384, 2 busy cores: 65 ms with one thread, 490 ms with
#: two; 59 ms with two in a quiet moment; adapting 100 users of 50 pairs: 3.1 s vs 21 s)
_ONE_THREAD_ENTRIES = 2**24

#: a training margin above this (P > 1 - 1e-13) on most pairs means the penalty held nothing back
SATURATED_MARGIN = 30.0


def separable_without_penalty(margins: np.ndarray, alpha: float) -> bool:
    """Whether every pair is ranked correctly (the data are separable along the weights) while the
    penalty hardly bounds them: ``alpha == 0``, or the median margin above :data:`SATURATED_MARGIN`
    (``alpha=1e-12`` gave |w| = 3.4e3 with every margin but a near-tie's saturated).

    Separable pairs have no finite maximum-likelihood weights: the likelihood grows forever along
    the separating direction, so an unpenalised solver stops wherever its step test happens to pass.
    """
    if margins.size == 0 or not (margins > 0).all():
        return False
    return alpha == 0 or bool(np.median(margins) > SATURATED_MARGIN)


def float32_differences(chosen: np.ndarray, rejected: np.ndarray) -> np.ndarray:
    """``chosen - rejected`` in float32 (the compute dtype of the Newton solver), in one pass.

    Raises ValueError when a difference overflows float32 (|x| > 3.4e38): the solver would
    return NaN weights.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        D = np.subtract(chosen, rejected, dtype=np.float32)
        finite = np.isfinite(D.sum(axis=0)).all() or np.isfinite(D).all()  # column sums first (one vectorised pass)
    if not finite:
        big = float(max(np.abs(chosen).max(), np.abs(rejected).max()))
        raise ValueError(
            f"'chosen' - 'rejected' overflows float32 (features up to {big:.3g}; float32 holds up to 3.4e38): "
            "rescale or standardise the features"
        )
    return D
