"""Run a lesson under papermill with small parameters and read what it wrote (for tests/test_notebook_0N.py)."""
from __future__ import annotations

import json
from pathlib import Path

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def run_lesson(name: str, parameters: dict, out: Path, *, cwd: Path | None = None) -> dict:
    """Execute ``notebooks/<name>.ipynb`` with ``parameters`` and ``output_dir=out``; the executed
    notebook is saved as ``out/out.ipynb``. ``cwd``: the kernel's directory (default notebooks/).
    Returns the run's ``metrics.json``."""
    import papermill

    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(out / "out.ipynb"),
                               parameters={**parameters, "output_dir": str(out)}, kernel_name="python3",
                               cwd=str(cwd or NOTEBOOKS), progress_bar=False)
    return json.loads((out / "metrics.json").read_text())


def outcomes(metrics: dict) -> dict[str, str]:
    """``{claim name: outcome}`` of a lesson's ``metrics.json``."""
    return {name: claim["outcome"] for name, claim in metrics["claims"].items()}


def check_intervals(metrics: dict) -> None:
    """Every claim with an interval has its estimate inside it (NaN, no interval, is written as null)."""
    for claim in metrics["claims"].values():
        if claim["ci_low"] is not None:
            assert claim["ci_low"] <= claim["estimate"] <= claim["ci_high"], claim["name"]
