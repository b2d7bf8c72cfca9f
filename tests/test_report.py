"""The report command: papermill + HTML, parameter checks, metrics.json."""
import json
import re
from pathlib import Path

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


# ------------------------------------------------------------------ outputs that cannot be written, or are the source
def _one_line_exit_2(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert re.fullmatch(rf"plural-kit: error: {message}\n", captured.err), captured.err


@pytest.mark.parametrize("output, setup, message", [
    ("/proc/x.html", None, r"cannot write the report /proc/x\.html: cannot create files in /proc \(.+\); "
                           r"choose another --output"),
    ("afile/x.html", lambda d: (d / "afile").write_text("x"),
     r"cannot write the report \S+/afile/x\.html: \S+/afile is a file, not a folder; choose another --output"),
    ("afile/sub/x.html", lambda d: (d / "afile").write_text("x"), r"cannot write the report .*/afile is a file, not a folder.*"),
    ("out.html", lambda d: (d / "out.html").mkdir(),
     r"cannot write the report's html file \S+/out\.html: it is a folder; choose another --output"),
    ("o.html", lambda d: (d / "o.metrics.json").mkdir(), r"cannot write the report's metrics file \S+/o\.metrics\.json: it is a folder.*"),
    ("link.html", lambda d: (d / "link.executed.ipynb").symlink_to(d / "tiny.ipynb"),
     r"the report's executed file \S+/link\.executed\.ipynb would overwrite the notebook itself \(\S+/tiny\.ipynb\); "
     r"choose another --output"),
    ("hard.html", lambda d: (d / "hard.executed.ipynb").hardlink_to(d / "tiny.ipynb"),
     r"the report's executed file \S+/hard\.executed\.ipynb would overwrite the notebook itself .*"),
])
def test_unwritable_or_self_destroying_output_is_refused_before_running(tiny_notebook, tmp_path, capsys, output,
                                                                         setup, message):
    if setup is not None:
        setup(tmp_path)
    source = tiny_notebook.read_bytes()
    before = sorted(p.name for p in tmp_path.iterdir())
    out = output if output.startswith("/") else str(tmp_path / output)
    _one_line_exit_2(capsys, ["report", str(tiny_notebook), "-o", out], message)
    assert tiny_notebook.read_bytes() == source
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing ran, nothing written


@pytest.mark.parametrize("output", ["", "  "])
def test_an_empty_output_path_is_an_error_not_the_default(tiny_notebook, tmp_path, capsys, monkeypatch, output):
    """``-o "$OUT"`` with OUT unset wrote reports/<notebook>.html and exited 0."""
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(capsys, ["report", str(tiny_notebook), "-o", output], r"--output is empty \(an unset variable\?\).*")
    assert not (tmp_path / "reports").exists()


def test_a_notebook_output_named_like_the_source_does_not_replace_it(tmp_path):
    """The notebook writes ``output_dir/ipynb``: beside ``tiny.html`` that would be ``tiny.ipynb``."""
    nb = _tiny(tmp_path / "tiny.ipynb", "import pathlib\npathlib.Path(output_dir, 'ipynb').write_text('clobber')")
    source = nb.read_bytes()
    run_report(nb, {}, tmp_path / "tiny.html", progress=False)
    assert nb.read_bytes() == source
    assert (tmp_path / "tiny.output.ipynb").read_text() == "clobber"


def _typed(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("n: int = 3\nx: float = 0.5\nname: str = 'a'\nflag: bool = False\n"
                                       "xs: list = [1]\nopt = None")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("print(repr(n), repr(x), repr(name), flag, xs, opt)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("args, message", [
    (["-p", "n", "abc"], r"parameter n takes an int \(default 3\), got 'abc' \(str\)"),
    (["-p", "n", "2.5"], r"parameter n takes an int \(default 3\), got 2\.5 \(float\)"),
    (["-p", "n", "1e3"], r"parameter n takes an int \(default 3\), got '1e3' \(str\)"),
    (["-p", "x", "yes"], r"parameter x takes a finite number \(default 0\.5\), got True \(bool\)"),
    (["-p", "x", ".nan"], r"parameter x takes a finite number \(default 0\.5\), got nan \(float\)"),
    (["-p", "x", ".inf"], r"parameter x takes a finite number \(default 0\.5\), got inf \(float\)"),
    (["-p", "flag", "1"], r"parameter flag takes true or false \(default False\), got 1 \(int\)"),
    (["-p", "xs", "3"], r"parameter xs takes a list \(default \[1\]\), got 3 \(int\)"),
    (["-p", "n", "1", "-p", "n", "2"], r"-p n is given twice"),
    (["-p", "n"], r"argument -p/--parameter: expected 2 arguments \(plural-kit report --help lists the options\)"),
    (["--bogus"], r"unrecognized arguments: --bogus \(plural-kit report --help lists the options\)"),
])
def test_cli_parameter_errors_are_one_line(tmp_path, capsys, args, message):
    nb = _typed(tmp_path / "typed.ipynb")
    argv = ["report", str(nb), "-o", str(tmp_path / "r.html"), *args]
    if args[0] == "-p" and len(args) == 2:
        argv = ["report", str(nb), *args]  # -p NAME with nothing after it
    try:
        _one_line_exit_2(capsys, argv, message)
    except SystemExit as exit_:  # argparse's own errors end the program
        assert exit_.code == 2
        err = capsys.readouterr().err
        assert re.fullmatch(rf"plural-kit: error: {message}\n", err), err
    assert not (tmp_path / "r.executed.ipynb").exists()


def test_cli_value_for_a_string_parameter_stays_as_typed(tmp_path):
    nb = _typed(tmp_path / "typed.ipynb")
    assert main(["report", str(nb), "-o", str(tmp_path / "r.html"), "-p", "name", "05", "-p", "x", "2",
                 "-p", "opt", "7"]) == 0
    out = nbformat.read(tmp_path / "r.executed.ipynb", as_version=4).cells[-1].outputs[0]["text"]
    assert out.strip() == "3 2 '05' False [1] 7"


@pytest.mark.parametrize("content, message", [
    ("garbage", r"\S+/bad\.ipynb is not a readable Jupyter notebook \(NotJSONError: Notebook does not appear to be JSON: .*\)"),
    ("", r"\S+/bad\.ipynb is not a readable Jupyter notebook \(NotJSONError: .*\)"),
    ('{"a": 1}', r"\S+/bad\.ipynb is not a readable Jupyter notebook \(ValidationError: .*\)"),
    (None, r"'\S+/bad\.ipynb' is a folder, not a notebook"),
])
def test_a_file_that_is_not_a_notebook_is_one_line(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.ipynb"
    bad.mkdir() if content is None else bad.write_text(content)
    _one_line_exit_2(capsys, ["report", str(bad), "-o", str(tmp_path / "r.html")], message)
    _one_line_exit_2(capsys, ["report", str(bad), "--list-parameters"], message)


@pytest.mark.parametrize("target, setup, cls, problem", [
    ("/proc/plural_kit_x.json", None, FileNotFoundError, "No such file or directory"),
    ("afile/m.json", lambda d: (d / "afile").write_text("x"), FileExistsError, r"\S+/afile is a file, not a folder"),
    ("dir/metrics.json", lambda d: (d / "dir" / "metrics.json").mkdir(parents=True), IsADirectoryError, "it is a folder"),
])
def test_failed_writes_name_the_target_not_a_temporary_file(tmp_path, target, setup, cls, problem):
    """Before: ``[Errno 2] No such file or directory: '/proc/.x.json.k2j3.tmp'``."""
    if setup is not None:
        setup(tmp_path)
    path = target if target.startswith("/") else tmp_path / target
    with pytest.raises(cls) as err:
        save_metrics(Path(path).parent, {"a": 1}, name=Path(path).name)
    assert re.fullmatch(rf"cannot write {re.escape(str(path))}: {problem}", err.value.strerror), err.value.strerror
    assert ".tmp" not in str(err.value)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_disk_full_while_writing_names_the_target(tmp_path, monkeypatch):
    import errno

    from plural_kit.io import atomic_write

    def full(fh):
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=rf"cannot write {re.escape(str(tmp_path / 'r.html'))}: No space left on device"):
        atomic_write(tmp_path / "r.html", full)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ what a user sees on stderr when a lesson fails
def _cli(*args, cwd):
    """``plural-kit ARGS`` in a fresh process (the kernel's own stderr and papermill's bar are visible there)."""
    import subprocess
    import sys

    entry = "import sys; from plural_kit.report import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", entry, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)


def test_a_failing_cell_prints_only_the_error_line(tmp_path):
    """Before: papermill's progress bar and the kernel's "Kernel is running over TCP without encryption"
    warning came first on stderr."""
    nb = _tiny(tmp_path / "bad.ipynb", "import sys\nprint('to-stderr', file=sys.stderr)\nraise KeyError('k')")
    proc = _cli("report", nb, "-o", tmp_path / "bad.html", cwd=tmp_path)
    executed = (tmp_path / "bad.executed.ipynb").resolve()
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (f"plural-kit: error: bad.ipynb cell 2 (In [3]) `import sys` raised KeyError: 'k' "
                           f"-- the executed notebook is kept at {executed}\n")


def test_verbose_shows_progress_kernel_log_cell_output_and_traceback(tmp_path):
    nb = _tiny(tmp_path / "bad.ipynb", "print('cell-output-seen')\n1 / 0")
    proc = _cli("report", nb, "-o", tmp_path / "bad.html", "--verbose", cwd=tmp_path)
    assert proc.returncode == 1
    err = proc.stderr
    assert "Executing:" in err and "cell-output-seen" in err  # the bar, and papermill's log of the outputs
    assert "Kernel is running over TCP" in err  # the kernel's own stderr
    assert "ZeroDivisionError                         Traceback (most recent call last)" in err
    assert "\x1b[" not in err.split("Traceback", 1)[1]  # the traceback without colour codes
    assert err.splitlines()[-1].startswith("plural-kit: error: bad.ipynb cell 2 (In [3]) `print('cell-output-seen')` "
                                           "raised ZeroDivisionError: division by zero")


def test_a_kernel_that_dies_is_one_line_naming_its_cell(tmp_path):
    """Before: nbclient's DeadKernelError traceback, after "Kernel died while waiting for execute reply."."""
    nb = _tiny(tmp_path / "dead.ipynb", "")
    cells = nbformat.read(nb, as_version=4)
    cells.cells[2:] = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell(""),
                       nbformat.v4.new_code_cell("import os\nos._exit(1)"), nbformat.v4.new_code_cell("print(2)")]
    nbformat.write(cells, nb)
    proc = _cli("report", nb, "-o", tmp_path / "dead.html", "-p", "n", "4", cwd=tmp_path)
    executed = (tmp_path / "dead.executed.ipynb").resolve()
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == ("plural-kit: error: dead.ipynb cell 4 `import os` raised DeadKernelError: the kernel died "
                           "(out of memory, or a crash in compiled code? verbose (-v) shows the kernel's stderr) "
                           f"-- the executed notebook is kept at {executed}\n")
    assert not (tmp_path / "dead.html").exists()


def test_a_notebook_file_that_does_not_exist_says_so(capsys):
    _one_line_exit_2(capsys, ["report", "/no/such/lesson.ipynb"],
                     r"no notebook '/no/such/lesson\.ipynb': no such file, and no lesson 'lesson' in notebooks/; "
                     r"known lessons: 01_.*")


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into a read-only folder: the /proc case above checks an unwritable folder")
def test_an_output_folder_without_write_permission_is_refused(tiny_notebook, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _one_line_exit_2(capsys, ["report", str(tiny_notebook), "-o", str(locked / "r.html")],
                         r"cannot write the report \S+/locked/r\.html: cannot create files in \S+/locked "
                         r"\(Permission denied\); choose another --output")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("name", ["", " "])
def test_an_empty_notebook_name_is_not_a_prefix_of_every_lesson(capsys, name):
    """Before: "'' matches several notebooks (01_..., 02_..., ...)"."""
    _one_line_exit_2(capsys, ["report", name], r"the notebook is empty \(an unset variable\?\); known lessons: 01_.*")


def test_an_unknown_kernel_is_refused_before_anything_is_written(tiny_notebook, tmp_path):
    """Before: jupyter_client's NoSuchKernel (a KeyError) from inside papermill."""
    with pytest.raises(ValueError, match=r"no Jupyter kernel 'no-such-kernel' is installed"):
        run_report(tiny_notebook, {}, tmp_path / "out" / "r.html", kernel_name="no-such-kernel", progress=False)
    assert not (tmp_path / "out").exists()
