"""Small PyTorch helpers shared by the torch-trained fitters (PAL, VPL, MiCRo)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from plural_kit.device import get_device


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
    tol: float = 1e-7,
) -> float:
    """Minimise ``objective()`` over ``params`` in place with full-batch L-BFGS (strong Wolfe line search).

    Returns the final objective value.
    """
    opt = torch.optim.LBFGS(
        list(params),
        lr=1.0,
        max_iter=max_iter,
        max_eval=int(max_iter * 1.25) + 1,
        history_size=20,
        tolerance_grad=tol,
        tolerance_change=tol * 1e-3,
        line_search_fn="strong_wolfe",
    )

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(objective())


def torch_generator(seed: int) -> torch.Generator:
    """A CPU generator (draws are made on the CPU then moved, so results match across devices)."""
    return torch.Generator().manual_seed(int(seed))
