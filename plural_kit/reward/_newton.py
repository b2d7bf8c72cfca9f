"""Full-batch Newton solver for (weighted, L2-penalised) Bradley-Terry / logistic objectives.

Objective, with ``D`` the (n, d) feature differences ``chosen - rejected``::

    f(w) = sum_i c_i * softplus(-(o_i + D_i . w)) + alpha / 2 * ||w - mu||^2

(``c`` pair weights, ``o`` a fixed offset per pair, ``mu`` the prior mean). Each iteration
takes one Newton direction and an exact line search along it:

* the gradient is exact (a float32 pass over ``D``, accumulated in float64);
* the Hessian ``D^T diag(c s) D`` is only used to pick the direction, so it is computed on a
  fixed random subsample of at most ``hessian_rows`` rows (rescaled) and in ``hessian_dtype``
  (bf16 on CPUs with matrix units and on GPUs): this changes the path, never the optimum;
* the margins are linear in the step, so the line search is a 1-D convex problem solved by
  safeguarded Newton on cheap (n,) vectors, with no further pass over ``D``.

Everything is PyTorch, so the same code runs on the CPU and on CUDA.
"""
from __future__ import annotations

import torch

from plural_kit.device import get_device, get_dtype

HESSIAN_DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def resolve(device: str, hessian_dtype: str) -> tuple[torch.device, torch.dtype]:
    """Device via :func:`plural_kit.device.get_device`; Hessian dtype ("auto": bf16 where fast, else float32)."""
    dev = get_device(device)
    if hessian_dtype == "auto":
        dt = get_dtype("auto", dev)
        return dev, dt if dt == torch.bfloat16 else torch.float32
    if hessian_dtype not in HESSIAN_DTYPES:
        raise ValueError(f"hessian_dtype must be 'auto' or one of {sorted(HESSIAN_DTYPES)}; got {hessian_dtype!r}")
    return dev, HESSIAN_DTYPES[hessian_dtype]


def hessian_rows_index(n: int, hessian_rows: int | None, seed: int) -> torch.Tensor | None:
    """Sorted random subset of ``hessian_rows`` row indices (CPU tensor), or None for all rows."""
    if hessian_rows is None or hessian_rows >= n:
        return None
    if hessian_rows < 1:
        raise ValueError(f"hessian_rows must be >= 1 or None; got {hessian_rows}")
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=gen)[:hessian_rows].sort().values


def hessian(D_h: torch.Tensor, q_h: torch.Tensor, scale: float, alpha: float, dtype: torch.dtype) -> torch.Tensor:
    """``scale * D_h^T diag(q_h) D_h + alpha I`` in float64 (the product in ``dtype``); shape (d, d).

    ``D_h`` (m, d) are the rows used (all, or a subsample with ``scale`` making it unbiased).
    """
    A = (D_h * q_h.sqrt().to(D_h.dtype)[:, None]).to(dtype)
    H = (A.T @ A).to(torch.float64) * scale
    H.diagonal().add_(alpha)
    return H


def newton_direction(H: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """``-H^{-1} g`` by Cholesky, adding a small ridge if ``H`` is not positive definite."""
    jitter = 0.0
    scale = float(H.diagonal().abs().mean()) or 1.0
    for _ in range(12):
        L, info = torch.linalg.cholesky_ex(H if jitter == 0 else H + jitter * torch.eye(H.shape[0], dtype=H.dtype, device=H.device))
        if int(info) == 0:
            return -torch.cholesky_solve(g[:, None], L)[:, 0]
        jitter = scale * 1e-10 if jitter == 0 else jitter * 100
    return -g / scale  # hopeless curvature: a scaled gradient step (the line search still decreases f)


def line_search(z, dz, c, r, p, alpha: float, slope: float, max_iter: int = 30) -> float:
    """Minimise ``phi(t) = sum c softplus(-(z + t dz)) + alpha/2 ||r + t p||^2`` over t >= 0.

    ``z, dz, c`` (n,) float64 (``c`` may be None), ``r = w - mu`` and ``p`` (d,);
    ``slope = phi'(0)`` (the gradient times ``p``). Safeguarded Newton on ``phi'`` within a
    bracket, stopped when ``|phi'(t)| <= 0.01 |phi'(0)|``; returns the step ``t``.
    """
    if slope >= 0:  # not a descent direction (already optimal to rounding)
        return 0.0
    rp, pp = float(r @ p), float(p @ p)
    lo, hi, t = 0.0, None, 1.0
    for _ in range(max_iter):
        sn = torch.sigmoid(-(z + t * dz))
        a = sn if c is None else c * sn
        d1 = alpha * (rp + t * pp) - float(a @ dz)
        if abs(d1) <= 0.01 * abs(slope):
            break
        d2 = float((a * (1.0 - sn)) @ (dz * dz)) + alpha * pp
        if d1 < 0:
            lo = t
        else:
            hi = t
        t_new = t - d1 / d2 if d2 > 0 else float("inf")
        if hi is None:
            t_new = t_new if lo < t_new <= 4 * t else 4 * t
        elif not lo < t_new < hi:
            t_new = 0.5 * (lo + hi)
        t = min(t_new, 1e8)
    return t


_REFRESH = 0.1  # below this relative step, BFGS updates replace recomputed Hessians


def newton_logistic(
    D: torch.Tensor,
    *,
    alpha: float,
    offset: torch.Tensor | None = None,
    hessian_idx: torch.Tensor | None = None,
    hessian_dtype: torch.dtype = torch.float32,
    tol: float = 1e-6,
    max_iter: int = 100,
) -> tuple[torch.Tensor, int, bool]:
    """Minimise the objective of the module docstring with unit pair weights and ``mu = 0``
    (from ``w = 0``); returns (w float64 (d,), n_iter, converged).

    ``D`` (n, d) float32 on the compute device; ``offset`` (n,) float64; ``hessian_idx`` rows
    used for the Hessian (None: all). Converged when the last step moved no weight by more than
    ``tol * (1 + max|w|)``. Once a step moves the weights by less than ``0.1 * (1 + max|w|)``,
    the Hessian is no longer recomputed but updated by BFGS from the gradients (quasi-Newton
    near the optimum). (``MixtureBT``'s weighted M-step uses :func:`hessian`,
    :func:`newton_direction` and :func:`line_search` directly.)
    """
    n, d = D.shape
    dev = D.device
    w = torch.zeros(d, dtype=torch.float64, device=dev)
    z = (D @ w.to(D.dtype)).to(torch.float64)
    if offset is not None:
        z = z + offset
    if hessian_idx is None:
        D_h, scale = D, 1.0
    else:
        hessian_idx = hessian_idx.to(dev)
        D_h = D[hessian_idx]
        scale = n / hessian_idx.numel() if hessian_idx.numel() > 0 else 1.0
    H = None
    rel_step = float("inf")
    for it in range(1, max_iter + 1):
        sp = torch.sigmoid(z)
        sn = 1.0 - sp
        g = -(sn.to(D.dtype) @ D).to(torch.float64) + alpha * w
        if H is None or rel_step > _REFRESH:
            q = sp * sn
            H = hessian(D_h, q if hessian_idx is None else q[hessian_idx], scale, alpha, hessian_dtype)
        else:  # close to the optimum: BFGS update of the last Hessian with the exact gradients
            y = g - g_prev
            sy = float(y @ step)
            if sy > 0:
                Hs = H @ step
                H = H - torch.outer(Hs, Hs) / float(step @ Hs) + torch.outer(y, y) / sy
        p = newton_direction(H, g)
        dz = (D @ p.to(D.dtype)).to(torch.float64)
        t = line_search(z, dz, None, w, p, alpha, float(g @ p))
        step, g_prev = t * p, g
        w = w + step
        z = z + t * dz
        rel_step = float(step.abs().max()) / (1.0 + float(w.abs().max()))
        if rel_step <= tol:
            return w, it, True
    return w, max_iter, False
