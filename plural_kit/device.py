"""One place that picks the device, the compute dtype and the seeds for the whole package, and
measures what a run used (:func:`peak_rss_mb`, :class:`Stopwatch`)."""
from __future__ import annotations

import os
import random
import time
import warnings
from contextlib import contextmanager
from functools import lru_cache

import numpy as np
import torch


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Resolve ``"auto"`` to CUDA, then Apple MPS (with a warning), then CPU.

    Any explicit value (``"cpu"``, ``"cuda:1"``, a :class:`torch.device`) is checked and returned.
    """
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            warnings.warn(
                "using Apple MPS: some operations fall back to the CPU and bf16 is limited",
                RuntimeWarning,
                stacklevel=2,
            )
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but CUDA is not available here; use 'auto' or 'cpu'")
    return dev


DTYPE_ENV = "PLURAL_KIT_DTYPE"
_DTYPES = {
    "float32": torch.float32, "fp32": torch.float32, "float": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
}


def bf16_in_cpu_flags(cpuinfo: str) -> bool:
    """Whether a ``/proc/cpuinfo`` text lists bf16 matrix units (``amx_bf16`` or ``avx512_bf16``)."""
    flags = {f for line in cpuinfo.splitlines() if line.startswith("flags") for f in line.split(":", 1)[-1].split()}
    return bool(flags & {"amx_bf16", "avx512_bf16"})


@lru_cache(maxsize=1)
def cpu_has_bf16_matmul() -> bool:
    """True when this CPU has bf16 matrix units (AMX-BF16 or AVX512-BF16), read from /proc/cpuinfo."""
    try:
        with open("/proc/cpuinfo") as fh:
            return bf16_in_cpu_flags(fh.read())
    except OSError:
        return False


def _dtype_by_name(name: str, source: str) -> torch.dtype:
    try:
        return _DTYPES[str(name).lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}{source}; use 'auto' or one of {sorted(_DTYPES)}") from None


def get_dtype(dtype: str | torch.dtype = "auto", device: str | torch.device = "auto") -> torch.dtype:
    """Resolve the compute dtype for inference.

    ``"auto"``: the environment variable ``PLURAL_KIT_DTYPE`` when it is set (the package-wide
    default, e.g. ``PLURAL_KIT_DTYPE=float32`` to reproduce an fp32-only machine); otherwise bf16
    on CUDA GPUs that support it (fp16 otherwise), bf16 on CPUs with bf16 matrix units, fp32
    elsewhere. Strings ``"float32"``, ``"bf16"``, ``"fp16"`` etc. are accepted.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype != "auto":
        return _dtype_by_name(dtype, "")
    forced = os.environ.get(DTYPE_ENV, "").strip()
    if forced and forced != "auto":
        return _dtype_by_name(forced, f" in ${DTYPE_ENV}")
    dev = get_device(device)
    if dev.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if dev.type == "cpu" and cpu_has_bf16_matmul():
        return torch.bfloat16
    return torch.float32


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh ``numpy.random.Generator(seed)``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    return np.random.default_rng(seed)


@contextmanager
def cpu_threads(n: int | None, device: str | torch.device = "cpu"):
    """Run a block with ``n`` intra-op CPU threads for torch (and BLAS/OpenMP), then restore them.

    Small full-batch problems (PAL, VPL, MiCRo: thousands of rows, tens of features) spend more
    time synchronising threads than computing; one thread runs them several times faster
    (measured: PAL on 7,200 pairs × 16 features, 0.6 s with one thread vs 6 s with two).
    No-op when ``n`` is None or ``device`` is not the CPU.
    """
    if n is None or torch.device(device).type != "cpu":
        yield
        return
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)


def is_out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an out-of-memory error (CUDA, MPS or CPU allocation)."""
    if isinstance(err, torch.OutOfMemoryError):
        return True
    msg = str(err).lower()
    return isinstance(err, RuntimeError) and ("out of memory" in msg or "can't allocate memory" in msg)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Linux: ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's own memory
    (``getrusage``'s ``ru_maxrss`` survives ``exec``, so a kernel started by a large parent would
    report the parent's peak). Elsewhere: ``getrusage`` (bytes on macOS).
    """
    import resource
    import sys

    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**10  # kB
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class Stopwatch:
    """Seconds since it was made: ``elapsed()`` -> ``{"total": wall-clock s, "cpu_total": CPU s of this process}``."""

    def __init__(self):
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> dict[str, float]:
        return {"total": time.perf_counter() - self._wall, "cpu_total": time.process_time() - self._cpu}
