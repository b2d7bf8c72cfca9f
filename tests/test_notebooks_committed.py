"""The lessons are committed with the outputs of a complete default run.

nbval in lax mode only compares marked cells, so a notebook saved from a failed run (an error
output, cells never executed, checked cells without output) would slip through it.
"""
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_come_from_a_complete_run(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [i for i, c in enumerate(code) if c.get("execution_count") is None] == []
    errors = [o.get("ename") for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    checked = [c for c in code if "# NBVAL_CHECK_OUTPUT" in c.source]
    assert checked and all(c.get("outputs") for c in checked)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_lessons_show_their_figures(path):
    """A lesson is read on GitHub and in Binder before anyone runs it: its figures must be in the
    committed outputs (``%matplotlib inline`` keeps them even where ``MPLBACKEND=Agg`` is set)."""
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert any(c.source.lstrip().startswith("%matplotlib inline") for c in code)
    assert sum("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", [])) >= 1


def test_lessons_are_numbered_from_01_without_gaps():
    assert [p.stem[:2] for p in NOTEBOOKS] == [f"{i:02d}" for i in range(1, len(NOTEBOOKS) + 1)]
    assert len(NOTEBOOKS) >= 4
