"""Small PyTorch helpers shared by the torch-trained fitters (PAL, VPL, MiCRo)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Integral

import numpy as np
import torch
from scipy.optimize import minimize
from sklearn.utils._param_validation import Interval

from plural_kit.device import cpu_threads, get_device

#: parameter constraints shared by the torch-trained fitters (scikit-learn ``_parameter_constraints``)
TORCH_CONSTRAINTS = {"device": [str], "random_state": [Interval(Integral, 0, None, closed="left")]}
#: ... and by the L-BFGS-trained ones (PAL, MiCRo)
LBFGS_CONSTRAINTS = {
    "n_restarts": [Interval(Integral, 1, None, closed="left")],
    "max_iter": [Interval(Integral, 1, None, closed="left")],
    **TORCH_CONSTRAINTS,
}


def resolve_device(device) -> tuple[torch.device, torch.dtype]:
    """Device from ``plural_kit.device.get_device``; float64 on CPU (small problems, exact), float32 on accelerators."""
    dev = get_device(device)
    return dev, (torch.float64 if dev.type == "cpu" else torch.float32)


def to_tensor(x: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x), dtype=dtype, device=device)


def to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def lbfgs_minimize(
    objective: Callable[[], torch.Tensor],
    params: Sequence[torch.Tensor],
    max_iter: int,
    tol: float = 1e-6,
) -> float:
    """Minimise ``objective()`` over the leaf tensors ``params`` in place with scipy's L-BFGS-B.

    The objective and its gradient are computed by PyTorch (on the params' device); scipy
    drives the full-batch quasi-Newton steps. (``torch.optim`` is avoided on purpose: its first
    use imports ``torch._dynamo``, which alone costs seconds.) Returns the final objective.
    """
    params = list(params)
    sizes = [p.numel() for p in params]

    def load(vec: np.ndarray) -> None:
        with torch.no_grad():
            for p, chunk in zip(params, np.split(vec, np.cumsum(sizes)[:-1])):
                p.copy_(torch.as_tensor(chunk.reshape(p.shape), dtype=p.dtype, device=p.device))

    def fun(vec: np.ndarray):
        load(vec)
        for p in params:
            p.grad = None
        loss = objective()
        loss.backward()
        grad = torch.cat([p.grad.reshape(-1) for p in params]).to("cpu", torch.float64).numpy()
        return float(loss.detach()), grad

    x0 = torch.cat([p.detach().reshape(-1) for p in params]).to("cpu", torch.float64).numpy()
    with cpu_threads(1, params[0].device):  # small problems: threads cost more than they give
        res = minimize(fun, x0, jac=True, method="L-BFGS-B", options={"maxiter": int(max_iter), "gtol": tol, "ftol": 1e-12})
    load(res.x)
    return float(res.fun)


def torch_generator(seed: int) -> torch.Generator:
    """A CPU generator (draws are made on the CPU then moved, so results match across devices)."""
    return torch.Generator().manual_seed(int(seed))
