"""The report command: papermill + HTML, parameter checks, metrics.json."""
import json

import nbformat
import numpy as np
import pandas as pd
import pytest

from plural_kit.report import find_notebook, main, run_report, save_metrics


@pytest.fixture()
def tiny_notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n: int = 3\noutput_dir: str = '.'")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "from plural_kit.report import save_metrics\n"
        "save_metrics(output_dir, {'n_squared': n * n})\n"
        "print('secret-code-cell-output', n * n)"
    )
    nb.cells = [nbformat.v4.new_markdown_cell("# Tiny"), params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_run_report_writes_html_and_metrics(tiny_notebook, tmp_path):
    out = tmp_path / "out" / "tiny.html"
    html = run_report(tiny_notebook, {"n": 7}, out, progress=False)
    assert html == out.resolve()
    text = html.read_text()
    assert "secret-code-cell-output 49" in text
    assert json.loads((out.parent / "metrics.json").read_text()) == {"n_squared": 49}


def test_hide_input_drops_code(tiny_notebook, tmp_path):
    html = run_report(tiny_notebook, {}, tmp_path / "r.html", hide_input=True, progress=False)
    text = html.read_text()
    assert "save_metrics(output_dir" not in text
    assert "secret-code-cell-output 9" in text


def test_unknown_parameter_is_named(tiny_notebook, tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['bogus'\].*takes \['n', 'output_dir'\]"):
        run_report(tiny_notebook, {"bogus": 1}, tmp_path / "r.html", progress=False)


def test_cli_unknown_notebook_exits_2(capsys):
    assert main(["report", "no_such_lesson_xyz"]) == 2
    assert "no notebook 'no_such_lesson_xyz'" in capsys.readouterr().err


def test_cli_parses_yaml_values(tiny_notebook, tmp_path):
    assert main(["report", str(tiny_notebook), "-p", "n", "5", "-o", str(tmp_path / "c.html")]) == 0
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"n_squared": 25}


def test_find_notebook_by_prefix():
    assert find_notebook("01").name.startswith("01_")


def test_save_metrics_converts_numpy_and_pandas(tmp_path):
    path = save_metrics(tmp_path, {"a": np.float32(0.5), "b": np.arange(3), "c": pd.Series({"x": 1}), "d": float("nan")})
    assert json.loads(path.read_text()) == {"a": 0.5, "b": [0, 1, 2], "c": {"x": 1}, "d": None}


def test_written_files_get_ordinary_permissions(tmp_path):
    import os

    umask = os.umask(0o022)
    try:
        path = save_metrics(tmp_path, {"a": 1})
    finally:
        os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize("lesson", ["01", "02", "03", "04"])
def test_every_lesson_parameter_is_visible_to_papermill(lesson):
    """papermill must parse every assignment of the parameters cell, or -p NAME is refused."""
    import re

    from plural_kit.report import notebook_parameters

    path = find_notebook(lesson)
    nb = nbformat.read(path, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    assigned = set(re.findall(r"^(\w+)\s*(?::[^=]+)?=", cell.source, flags=re.M))
    assert assigned and assigned == set(notebook_parameters(path))
