"""The report command: papermill + HTML, parameter checks, metrics.json."""
import json
import re

import nbformat
import numpy as np
import pandas as pd
import pytest

from plural_kit.report import find_notebook, main, run_report, save_metrics


def _tiny(path, body: str):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n: int = 3\noutput_dir: str = '.'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Tiny\n\nThe square $x^2$ and $$\\frac{1}{2}$$"),
        params,
        nbformat.v4.new_code_cell(body),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture()
def tiny_notebook(tmp_path):
    return _tiny(tmp_path / "tiny.ipynb", (
        "from plural_kit.report import save_metrics\n"
        "save_metrics(output_dir, {'n_squared': n * n})\n"
        "print('secret-code-cell-output', n * n)"
    ))


def test_reports_stand_alone_and_share_a_folder(tiny_notebook, tmp_path, capsys):
    """Two reports beside the source notebook: own metrics, the source untouched, offline math."""
    source = tiny_notebook.read_bytes()
    html = run_report(tiny_notebook, {"n": 7}, tmp_path / "tiny.html", progress=False)
    assert html == (tmp_path / "tiny.html").resolve()
    assert main(["report", str(tiny_notebook), "-p", "n", "5", "-o", str(tmp_path / "other.html")]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {(tmp_path / 'other.html').resolve()}"
    assert tiny_notebook.read_bytes() == source  # the executed copy went to tiny.executed.ipynb
    assert json.loads((tmp_path / "tiny.metrics.json").read_text()) == {"n_squared": 49}
    assert json.loads((tmp_path / "other.metrics.json").read_text()) == {"n_squared": 25}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other.executed.ipynb", "other.html", "other.metrics.json",
        "tiny.executed.ipynb", "tiny.html", "tiny.ipynb", "tiny.metrics.json",
    ]  # no shared metrics.json, no leftover output folder
    text = html.read_text()
    assert "secret-code-cell-output 49" in text
    # the formulas are MathML, written at export: no MathJax, no script from a CDN
    assert re.search(r'<math display="inline"[^>]*><mrow><msup><mi>x</mi><mn>2</mn></msup></mrow></math>', text)
    assert re.search(r'<math display="block"[^>]*><mrow><mfrac>', text)
    assert "$x^2$" not in text and "mathjax" not in text.lower()
    assert re.findall(r"<script[^>]*\bsrc=", text) == []


def test_unparseable_tex_stays_visible():
    from plural_kit.report import _mathml

    assert _mathml("x^2", "inline").startswith("<math")
    assert _mathml("x_1_2", "inline") == '<code class="tex">$x_1_2$</code>'  # a double subscript
    assert _mathml("a<b_", "block") == '<code class="tex">$$a&lt;b_$$</code>'


def test_hide_input_drops_code(tiny_notebook, tmp_path):
    html = run_report(tiny_notebook, {}, tmp_path / "r.html", hide_input=True, progress=False)
    text = html.read_text()
    assert "save_metrics(output_dir" not in text
    assert "secret-code-cell-output 9" in text


def test_failing_cell_is_one_line(tmp_path, capsys):
    nb = _tiny(tmp_path / "bad.ipynb", "x = 1\nraise ZeroDivisionError('no ' + 'luck')  # the failing cell")
    assert main(["report", str(nb), "-o", str(tmp_path / "bad.html")]) == 1
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1]
    executed = (tmp_path / "bad.executed.ipynb").resolve()
    assert last == (f"plural-kit: error: bad.ipynb cell 2 (In [3]) `x = 1` raised ZeroDivisionError: no luck "
                    f"-- the executed notebook is kept at {executed}")
    assert "Traceback" not in err and "-----" not in err
    kept = nbformat.read(executed, as_version=4)
    assert any(o.get("ename") == "ZeroDivisionError" for c in kept.cells for o in c.get("outputs", []))
    assert not (tmp_path / "bad.html").exists() and not (tmp_path / "bad.metrics.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no output folder left


def test_run_report_names_the_failing_cell(tmp_path):
    from plural_kit.report import NotebookCellError

    nb = _tiny(tmp_path / "bad.ipynb", "\nimport json\njson.loads('{')")
    with pytest.raises(NotebookCellError) as err:
        run_report(nb, {"n": 1}, tmp_path / "bad.html", progress=False)
    e = err.value
    assert (e.cell_index, e.source_line, e.ename) == (2, "import json", "JSONDecodeError")
    assert e.executed == (tmp_path / "bad.executed.ipynb").resolve() and e.executed.is_file()
    assert "\n" not in str(e)


def test_unknown_parameter_is_named(tiny_notebook, tmp_path):
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['bogus'\].*takes \['n', 'output_dir'\]"):
        run_report(tiny_notebook, {"bogus": 1}, tmp_path / "r.html", progress=False)


def test_cli_unknown_notebook_exits_2(capsys):
    assert main(["report", "no_such_lesson_xyz"]) == 2
    assert "no notebook 'no_such_lesson_xyz'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["-o", "tiny.ipynb"], "the report is an HTML file: --output must end in .html, got "),
    (["-p", "n", "[1, 2", "-o", "r.html"], "-p n '[1, 2' is not a valid YAML value ("),
])
def test_cli_usage_errors_exit_2_in_one_line(tiny_notebook, tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    source = tiny_notebook.read_bytes()
    assert main(["report", str(tiny_notebook), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith(f"plural-kit: error: {message}")
    assert captured.err.count("\n") == 1
    assert tiny_notebook.read_bytes() == source and sorted(p.name for p in tmp_path.iterdir()) == ["tiny.ipynb"]


def test_report_files_never_overwrite_the_notebook(tmp_path):
    nb = _tiny(tmp_path / "x.executed.ipynb", "pass")
    with pytest.raises(ValueError, match="would overwrite the notebook itself"):
        run_report(nb, {}, tmp_path / "x.html", progress=False)


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
