"""The one device/dtype/seed helper."""
import numpy as np
import pytest
import torch

from plural_kit.device import get_device, get_dtype, seed_everything


def test_auto_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert get_device("auto") == torch.device("cpu")


def test_explicit_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        get_device("cuda")


def test_mps_fallback_warns(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    with pytest.warns(RuntimeWarning, match="MPS"):
        assert get_device("auto").type == "mps"


def test_dtype_names_and_errors():
    assert get_dtype("fp32") is torch.float32
    assert get_dtype("bf16") is torch.bfloat16
    assert get_dtype(torch.float16) is torch.float16
    with pytest.raises(ValueError, match="unknown dtype 'int3'"):
        get_dtype("int3")


def test_auto_dtype_on_cpu_follows_bf16_units(monkeypatch):
    import plural_kit.device as dev

    monkeypatch.delenv("PLURAL_KIT_DTYPE", raising=False)
    monkeypatch.setattr(dev, "cpu_has_bf16_matmul", lambda: False)
    assert get_dtype("auto", "cpu") is torch.float32
    monkeypatch.setattr(dev, "cpu_has_bf16_matmul", lambda: True)
    assert get_dtype("auto", "cpu") is torch.bfloat16


def test_bf16_units_are_read_from_the_flags_line():
    from plural_kit.device import bf16_in_cpu_flags

    avx2 = "processor\t: 0\nmodel name\t: AMD EPYC 7B12 (avx512_bf16 in the name only)\nflags\t\t: fpu sse2 avx2 fma\n"
    assert not bf16_in_cpu_flags(avx2)
    assert bf16_in_cpu_flags("flags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert bf16_in_cpu_flags("flags\t\t: fpu avx2 amx_tile amx_bf16\n")
    assert not bf16_in_cpu_flags("")


def test_environment_variable_sets_what_auto_resolves_to(monkeypatch):
    import plural_kit.device as dev

    for has_units in (False, True):
        monkeypatch.setattr(dev, "cpu_has_bf16_matmul", lambda: has_units)
        monkeypatch.setenv("PLURAL_KIT_DTYPE", "float32")
        assert get_dtype("auto", "cpu") is torch.float32
        monkeypatch.setenv("PLURAL_KIT_DTYPE", "bf16")
        assert get_dtype("auto", "cpu") is torch.bfloat16
        assert get_dtype("fp32", "cpu") is torch.float32  # an explicit dtype wins over the variable
        monkeypatch.setenv("PLURAL_KIT_DTYPE", "auto")
        assert get_dtype("auto", "cpu") is (torch.bfloat16 if has_units else torch.float32)
    monkeypatch.setenv("PLURAL_KIT_DTYPE", "int3")
    with pytest.raises(ValueError, match=r"unknown dtype 'int3' in \$PLURAL_KIT_DTYPE"):
        get_dtype("auto", "cpu")


def test_seed_everything_reproduces_torch_and_numpy():
    rng = seed_everything(3)
    a = (rng.normal(size=3), torch.rand(3))
    rng = seed_everything(3)
    b = (rng.normal(size=3), torch.rand(3))
    np.testing.assert_array_equal(a[0], b[0])
    assert torch.equal(a[1], b[1])


def test_peak_rss_is_this_process_own_peak():
    """A child started by a large parent reports its own peak, not the parent's (ru_maxrss would)."""
    import subprocess
    import sys

    from plural_kit.device import peak_rss_mb

    ballast = bytearray(600 * 2**20)  # make this process large before starting the child
    ballast[:: 4096] = b"x" * len(ballast[:: 4096])
    parent = peak_rss_mb()
    assert parent > 600
    out = subprocess.run([sys.executable, "-c", "from plural_kit.device import peak_rss_mb; print(peak_rss_mb())"],
                         capture_output=True, text=True, check=True).stdout
    assert 0 < float(out) < parent - 400
    del ballast


def test_stopwatch_counts_wall_and_cpu_seconds():
    import time

    from plural_kit.device import Stopwatch

    clock = Stopwatch()
    time.sleep(0.05)  # wall time passes, the CPU idles
    t = clock.elapsed()
    assert set(t) == {"total", "cpu_total"}
    assert 0.05 <= t["total"] < 5 and 0 <= t["cpu_total"] < t["total"]
    later = clock.elapsed()
    assert later["total"] >= t["total"]  # measured from the same start
