"""Reports: run a lesson notebook with papermill and write HTML; save a notebook's metrics.

Command line::

    plural-kit report NOTEBOOK [-p NAME VALUE ...] [--output FILE.html] [--no-input] [--verbose]

A report stands alone: its formulas are rendered to MathML when it is written (no MathJax, no
script from a CDN), and its files are named after it (``r.html``, ``r.executed.ipynb``,
``r.metrics.json``), so several reports can share a folder.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache
from html import escape as html_escape
from pathlib import Path


from plural_kit.io import atomic_write_text, jsonable

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def save_metrics(output_dir: str | os.PathLike, metrics: dict, name: str = "metrics.json") -> Path:
    """Write ``metrics`` (nested dicts of numbers, arrays, DataFrames) as JSON in ``output_dir``."""
    return atomic_write_text(Path(output_dir) / name, json.dumps(jsonable(metrics), indent=2, sort_keys=True))


def find_notebook(name: str | os.PathLike) -> Path:
    """Resolve a notebook given as a path, a file name in ``notebooks/`` or a prefix like ``01``."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_dir():
        raise FileNotFoundError(f"{str(name)!r} is a folder, not a notebook")
    if path.suffix == ".ipynb" and path.exists():
        return path
    candidates = sorted(NOTEBOOK_DIR.glob("*.ipynb")) if NOTEBOOK_DIR.is_dir() else []
    if not str(name).strip():  # a prefix of every lesson
        raise FileNotFoundError(f"the notebook is empty (an unset variable?); known lessons: "
                                f"{', '.join(p.stem for p in candidates) or 'none found'}")
    stem = path.name.removesuffix(".ipynb")
    matches = [p for p in candidates if p.stem == stem] or [p for p in candidates if p.stem.startswith(stem)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.stem for p in candidates) or "none found"
    if not matches and path.suffix == ".ipynb":  # a file name: say the file is missing, not only the lesson
        raise FileNotFoundError(f"no notebook {str(name)!r}: no such file, and no lesson {stem!r} in "
                                f"notebooks/; known lessons: {known}")
    if not matches:
        raise FileNotFoundError(f"no notebook {str(name)!r}; known lessons: {known}")
    raise FileNotFoundError(f"{str(name)!r} matches several notebooks ({', '.join(p.stem for p in matches)})")


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, dict]:
    """The parameters a notebook declares in its ``parameters`` cell (name → type, default).

    Raises ``ValueError`` (one line naming the file) when the file is not a readable notebook.
    """
    import papermill as pm

    try:
        return dict(pm.inspect_notebook(str(notebook)))
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as err:  # nbformat: NotJSONError, jsonschema's ValidationError, KeyError ... (no common base)
        raise _unreadable(notebook, err) from None


def read_notebook(path: str | os.PathLike):
    """The notebook at ``path`` (``nbformat`` v4 node). ``FileNotFoundError`` for a missing file or a
    folder, ``ValueError`` when the file is not a readable notebook; both one line naming ``path``."""
    import nbformat

    if Path(path).is_dir():
        raise FileNotFoundError(f"{str(path)!r} is a folder, not a notebook")
    try:
        return nbformat.read(str(path), as_version=4)
    except (FileNotFoundError, PermissionError):
        raise
    except Exception as err:  # as in notebook_parameters
        raise _unreadable(path, err) from None


def _unreadable(path, err: Exception) -> ValueError:
    first = next((ln.strip() for ln in str(err).splitlines() if ln.strip()), type(err).__name__)
    if len(first) > 200:
        first = first[:200] + "..."
    return ValueError(f"{path} is not a readable Jupyter notebook ({type(err).__name__}: {first})")


_TYPE_WORDS = {"int": "an int", "float": "a finite number", "bool": "true or false", "str": "a string", "list": "a list"}


def _check_parameter(name: str, value, spec: dict):
    """``value`` for parameter ``name`` (numpy scalars made plain), or ``ValueError`` (one line) when
    its type does not fit the one the notebook declares (``int``, ``float``, ``bool``, ``str``, ``list``)."""
    import math
    import numbers

    if hasattr(value, "item") and type(value).__module__ == "numpy" and getattr(value, "ndim", None) == 0:
        value = value.item()
    declared = str(spec.get("inferred_type_name") or "")
    default = spec.get("default")
    ok = {
        "int": lambda v: isinstance(v, numbers.Integral) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v),
        "bool": lambda v: isinstance(v, bool),
        "str": lambda v: isinstance(v, str),
        "list": lambda v: isinstance(v, (list, tuple)),
    }.get(declared)
    if ok is None or ok(value) or (value is None and default == "None"):
        return value
    raise ValueError(f"parameter {name} takes {_TYPE_WORDS[declared]} (default {default}), got {value!r} "
                     f"({type(value).__name__})")


def _parse_value(name: str, raw: str):
    """Parse a ``-p NAME VALUE`` value as YAML (numbers, booleans, lists, plain strings).

    Raises ``ValueError`` (one line) when ``raw`` is not valid YAML, e.g. ``"[1, 2"``.
    """
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as err:
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ValueError(
            f"-p {name} {raw!r} is not a valid YAML value ({problem}); quote a string as -p {name} \"'...'\""
        ) from None


class NotebookCellError(RuntimeError):
    """A cell of a report's notebook raised; the message is one line naming the cell.

    Attributes: ``notebook`` (the source), ``cell_index`` (0-based index of the cell in the source
    notebook, as in ``nbformat``'s ``nb.cells``; ``"?"`` when a dead kernel left no trace of it),
    ``execution_count`` (``None`` when the kernel died in the cell), ``source_line`` (first
    non-empty line of the cell), ``ename``, ``evalue`` (the exception's type name and message),
    ``executed`` (the executed notebook, kept for inspection),
    ``traceback`` (the kernel's traceback lines, ANSI colours removed; empty when it died).
    """

    def __init__(self, notebook: Path, cell_index: int | str, execution_count, source: str, ename: str,
                 evalue: str, executed: Path, traceback: list[str] | tuple = ()):
        import re

        self.notebook, self.cell_index, self.execution_count = notebook, cell_index, execution_count
        self.source_line = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
        self.ename, self.evalue, self.executed = ename, evalue, executed
        self.traceback = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in traceback]
        first = next((ln.strip() for ln in str(evalue).splitlines() if ln.strip()), "")
        if len(first) > 1000:
            first = first[:1000] + "..."
        prompt = f" (In [{execution_count}])" if execution_count is not None else ""
        super().__init__(
            f"{notebook.name} cell {cell_index}{prompt} `{self.source_line}` raised "
            f"{ename}: {first} -- the executed notebook is kept at {executed}"
        )


def report_paths(output: str | os.PathLike) -> dict[str, Path]:
    """The files of one report, all beside the HTML and named after it (``<stem>``).

    ``{"html": <stem>.html, "executed": <stem>.executed.ipynb, "metrics": <stem>.metrics.json}``:
    the HTML report, the executed notebook, and the notebook's ``metrics.json``. Reports with
    different names can share a folder. Any other file ``F`` the notebook writes into its
    ``output_dir`` lands as ``<stem>.F``.
    """
    html = Path(output).expanduser().resolve()
    if html.suffix.lower() not in (".html", ".htm"):
        raise ValueError(f"the report is an HTML file: --output must end in .html, got {str(output)!r}")
    stem = html.stem
    return {
        "html": html,
        "executed": html.with_name(f"{stem}.executed.ipynb"),
        "metrics": html.with_name(f"{stem}.metrics.json"),
    }


@lru_cache(maxsize=1)
def _math_exporter_class():
    """An ``HTMLExporter`` whose reports stand alone: LaTeX rendered to MathML, no CDN scripts."""
    from jinja2 import pass_context
    from nbconvert import HTMLExporter
    from nbconvert.filters.markdown_mistune import IPythonRenderer, MarkdownWithMath

    class MathMLRenderer(IPythonRenderer):
        def inline_math(self, body: str) -> str:
            return _mathml(body, "inline")

        def block_math(self, body: str) -> str:
            return _mathml(body, "block")

        def latex_environment(self, name: str, body: str) -> str:
            return _mathml(f"\\begin{{{name}}}{body}\\end{{{name}}}", "block")

    class StandaloneHTMLExporter(HTMLExporter):
        @pass_context
        def markdown2html(self, context, source):
            cell = context.get("cell", {})
            renderer = MathMLRenderer(
                escape=False,
                attachments=cell.get("attachments", {}),
                embed_images=self.embed_images,
                path=context.get("resources", {}).get("metadata", {}).get("path", ""),
                anchor_link_text=self.anchor_link_text,
                exclude_anchor_links=self.exclude_anchor_links,
                **self.lexer_options,
            )
            return MarkdownWithMath(renderer=renderer).render(source)

    return StandaloneHTMLExporter


# The lab template without its CDN scripts (RequireJS, MathJax, Mermaid, the widget manager): the
# report must read the same offline. LaTeX outputs (text/latex) go through the MathML renderer too.
_STANDALONE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{% block data_latex scoped %}
<div class="jp-RenderedLatex jp-OutputArea-output {{ extra_class }}" data-mime-type="text/latex">
{{ output.data['text/latex'] | markdown2html }}
</div>
{%- endblock data_latex %}
"""


def _mathml(tex: str, display: str) -> str:
    """``tex`` as a MathML element (``display``: "inline" or "block"); the TeX source as code when
    latex2mathml cannot parse it."""
    from latex2mathml.converter import convert

    try:
        return convert(tex, display=display)
    except Exception:  # latex2mathml raises a dozen unrelated exception types for TeX it cannot parse
        code = html_escape(tex, quote=False)
        return f"<code class=\"tex\">$${code}$$</code>" if display == "block" else f"<code class=\"tex\">${code}$</code>"


def notebook_html(nb, hide_input: bool = False) -> str:
    """An executed notebook (``nbformat`` node) as one self-contained HTML page: its formulas are
    MathML (shown by any current browser, offline) and it loads no script from the network."""
    exporter = _math_exporter_class()(
        template_name="lab", raw_template=_STANDALONE_TEMPLATE,
        exclude_input=hide_input, exclude_input_prompt=hide_input,
    )
    body, _ = exporter.from_notebook_node(nb)
    return body


def _source_index(nb, cell_index: int) -> int:
    """Index in the source notebook of cell ``cell_index`` of papermill's executed notebook
    (which adds an ``injected-parameters`` cell)."""
    cells = [c for c in nb.cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]  # its banners
    injected = [i for i, c in enumerate(cells) if "injected-parameters" in c.metadata.get("tags", [])]
    return cell_index - sum(i < cell_index for i in injected)


def run_report(
    notebook: str | os.PathLike,
    parameters: dict | None = None,
    output: str | os.PathLike | None = None,
    *,
    hide_input: bool = False,
    kernel_name: str = "python3",
    progress: bool = True,
    verbose: bool = False,
) -> Path:
    """Execute ``notebook`` with papermill and write a self-contained HTML report; return its path.

    ``progress``: papermill's progress bar on stderr. ``verbose``: also papermill's log with each
    cell's output as it runs, and the kernel process's own stderr; without it neither is shown
    (e.g. "Kernel is running over TCP without encryption"), and a failure is only the exception below.

    ``output`` (default ``reports/<notebook>.html``) must end in ``.html``. Beside it go the
    executed notebook and the notebook's metrics (see :func:`report_paths`): when the notebook
    declares ``output_dir`` and it is not given, the notebook writes into a fresh folder whose
    files are then moved beside the HTML as ``<stem>.<file>`` (``metrics.json`` ->
    ``<stem>.metrics.json``), so reports never overwrite each other's metrics.

    Raises
    ------
    ValueError  unknown parameter names (the message lists the notebook's parameters), a value
        whose type is not the declared one, an output that is not ``.html``, one whose files would
        overwrite the source notebook (also through a link), or one that cannot be written (checked
        before the notebook runs).
    NotebookCellError  a cell raised, or the kernel died in it: one line naming the cell; the
        executed notebook is kept.
    """
    import nbformat
    import papermill as pm
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    nb_path = find_notebook(notebook).resolve()
    declared = notebook_parameters(nb_path)
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {nb_path.name}; it takes {sorted(declared)}")
    parameters = {k: _check_parameter(k, v, declared[k]) for k, v in parameters.items()}
    _check_kernel(kernel_name)
    if output is not None and not str(output).strip():
        raise ValueError("--output is empty (an unset variable?): give an .html path, or leave -o out for "
                         f"reports/{nb_path.stem}.html")
    paths = report_paths(output if output is not None else Path("reports") / f"{nb_path.stem}.html")
    _check_outputs(paths, nb_path)
    html_path = paths["html"]
    outputs = None
    if "output_dir" in declared and "output_dir" not in parameters:
        outputs = Path(tempfile.mkdtemp(dir=html_path.parent, prefix=f".{html_path.stem}.outputs."))
        parameters["output_dir"] = str(outputs)
    try:
        with _papermill_log(verbose):
            try:
                pm.execute_notebook(
                    str(nb_path), str(paths["executed"]), parameters=parameters, cwd=str(nb_path.parent),
                    kernel_name=kernel_name, progress_bar=progress, log_output=verbose,
                    kernel_manager_class=_kernel_manager(None if verbose else subprocess.DEVNULL),
                )
            except PapermillExecutionError as err:
                executed = nbformat.read(str(paths["executed"]), as_version=4)
                raise NotebookCellError(nb_path, _source_index(executed, err.cell_index), err.exec_count, err.source,
                                        err.ename, err.evalue, paths["executed"], err.traceback) from err
            except DeadKernelError as err:
                raise _died(nb_path, paths["executed"]) from err
        if outputs is not None:
            protected = {nb_path, html_path, paths["executed"]}
            for entry in sorted(outputs.iterdir()):
                dest = html_path.with_name(f"{html_path.stem}.{entry.name}")
                if dest in protected or _same_file(dest, nb_path):  # a notebook output named "ipynb" or "html"
                    dest = html_path.with_name(f"{html_path.stem}.output.{entry.name}")
                os.replace(entry, dest)
    finally:
        if outputs is not None:
            shutil.rmtree(outputs, ignore_errors=True)
    atomic_write_text(html_path, notebook_html(nbformat.read(str(paths["executed"]), as_version=4), hide_input))
    return html_path


def _check_kernel(kernel_name: str) -> None:
    """``ValueError`` (one line) when no Jupyter kernel ``kernel_name`` is installed."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec(kernel_name)
    except NoSuchKernel:
        raise ValueError(f"no Jupyter kernel {kernel_name!r} is installed (for python3: pip install ipykernel)"
                         ) from None


def _kernel_manager(stderr):
    """nbclient's kernel manager class, its kernel's stderr going to ``stderr`` (a file, ``None``: this
    process's stderr, or ``subprocess.DEVNULL``). The kernel writes its own log there ("Kernel is
    running over TCP without encryption", "KeyboardInterrupt caught in kernel" at shutdown,
    tornado's tracebacks), not the cells' output."""
    from jupyter_client import AsyncKernelManager

    class KernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw):
            await super().start_kernel(stderr=stderr, **kw)

    return KernelManager


@contextmanager
def _papermill_log(verbose: bool):
    """Within it, papermill's log (and nbclient's, which papermill hands its logger) goes to stderr
    from INFO up when ``verbose``, and nowhere otherwise: its warnings ("Kernel died while waiting
    for execute reply.", "Autosave too slow ...") repeat what the exception says or are noise."""
    import logging

    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(sys.stderr) if verbose else logging.NullHandler()
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.CRITICAL + 1)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _died(nb_path: Path, executed: Path) -> NotebookCellError:
    """The error for a kernel that died (out of memory, a crash in compiled code, ``os._exit``):
    the cell is the last one papermill started (the cells after it have no ``start_time``)."""
    cell_index, source = "?", ""
    if executed.is_file():
        import nbformat

        nb = nbformat.read(str(executed), as_version=4)
        started = [i for i, c in enumerate(nb.cells) if c.metadata.get("papermill", {}).get("start_time")]
        if started:
            cell_index, source = _source_index(nb, started[-1]), nb.cells[started[-1]].source
    return NotebookCellError(nb_path, cell_index, None, source, "DeadKernelError",
                             "the kernel died (out of memory, or a crash in compiled code? verbose (-v) shows "
                             "the kernel's stderr)", executed)


def _same_file(a: Path, b: Path) -> bool:
    """True when ``a`` exists and is ``b`` (the same file through a symlink or a hard link too)."""
    try:
        return a.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_outputs(paths: dict[str, Path], nb_path: Path) -> None:
    """Before anything runs: every file of the report can be written, and none of them is the
    source notebook (by name, symlink or hard link). ``ValueError`` (one line) naming the path."""
    for kind, path in paths.items():
        if path.resolve() == nb_path or _same_file(path, nb_path):
            raise ValueError(f"the report's {kind} file {path} would overwrite the notebook itself ({nb_path}); "
                             f"choose another --output")
        if path.is_dir():
            raise ValueError(f"cannot write the report's {kind} file {path}: it is a folder; choose another --output")
    check_output_folder(paths["html"].parent, f"the report {paths['html']}")


def check_output_folder(folder: str | os.PathLike, what: str, hint: str = "choose another --output") -> None:
    """Before any work: ``folder`` is a folder, or can be made one, where files can be created
    (it is made if missing). ``ValueError`` (one line) ``cannot write WHAT: <why>; HINT``, e.g.
    ``cannot write the report a/r.html: a is a file, not a folder; choose another --output``."""
    folder = Path(folder)
    blocking = next((d for d in (folder, *folder.parents) if d.exists() and not d.is_dir()), None)
    if blocking is not None:
        raise ValueError(f"cannot write {what}: {blocking} is a file, not a folder; {hint}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot write {what}: cannot create the folder {folder} "
                         f"({err.strerror or type(err).__name__}); {hint}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".plural_kit.", suffix=".probe")
    except OSError as err:
        raise ValueError(f"cannot write {what}: cannot create files in {folder} "
                         f"({err.strerror or type(err).__name__}); {hint}") from None
    os.close(fd)
    os.unlink(probe)


def _one_line_usage(command: str):
    """An ``argparse`` ``error`` for ``plural-kit COMMAND``: the usage error as one line, exit status 2."""
    def error(message: str):
        print(f"plural-kit: error: {message} (plural-kit {command}{' ' if command else ''}--help lists the options)",
              file=sys.stderr)
        sys.exit(2)
    return error


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``plural-kit`` command.

    Exit status: 0 done; 1 a cell of the notebook raised or its kernel died (one line names it;
    ``report --verbose`` shows papermill's progress, the kernel's log and the traceback too); 2 a usage error,
    one line naming it (unknown notebook or parameter, a value that is not YAML or not of the
    parameter's type, a file that is not a notebook, an output that is not ``.html``, cannot be
    written, or would overwrite the notebook); 130 interrupted.
    """
    parser = argparse.ArgumentParser(prog="plural-kit", description="plural_kit lessons and reports")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="run a lesson notebook with papermill and write an HTML report")
    rep.add_argument("notebook", help="path, file name or prefix of a notebook in notebooks/ (e.g. 01)")
    rep.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a notebook parameter (value parsed as YAML); repeatable")
    rep.add_argument("-o", "--output", help="HTML file to write (default reports/<notebook>.html); the executed "
                     "notebook and the metrics go beside it as <name>.executed.ipynb and <name>.metrics.json")
    rep.add_argument("--no-input", action="store_true", help="hide code cells in the report")
    rep.add_argument("--list-parameters", action="store_true", help="print the notebook's parameters and exit")
    rep.add_argument("-v", "--verbose", action="store_true", help="show papermill's progress bar, the kernel's "
                     "log and each cell's output as it runs, and a failing cell's traceback (stderr)")
    asg = sub.add_parser("assign", help="build an assignment: the student notebook and the otter autograder zip")
    asg.add_argument("assignment", help="path or prefix of a master in assignments/ (e.g. 01)")
    asg.add_argument("-o", "--output", required=True, help="directory to write: student/ and autograder/ (an "
                     "earlier build there is replaced; a folder with other files is refused)")
    asg.add_argument("--no-run-tests", action="store_true", help="do not check the solutions against the tests first")
    grd = sub.add_parser("grade", help="grade a submission offline with an autograder zip (otter run, no Docker)")
    grd.add_argument("autograder", help="the autograder zip written by 'plural-kit assign'")
    grd.add_argument("submission", help="the student's notebook")
    parser.error = _one_line_usage("")
    for name, command in sub.choices.items():
        command.error = _one_line_usage(name)  # e.g. "-p n" without a value: one line, exit 2
    args, extra = parser.parse_known_args(argv)
    if extra:  # what parse_args does, in one line
        sub.choices[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in ("assign", "grade"):
        return _run_command(lambda: _assignment_command(args))
    return _run_command(lambda: _report_command(args))


def _report_command(args) -> int:
    nb_path = find_notebook(args.notebook)
    if args.list_parameters:
        for name, spec in notebook_parameters(nb_path).items():
            print(f"{name}: {spec.get('inferred_type_name')} = {spec.get('default')}  {spec.get('help', '')}")
        return 0
    params = _cli_parameters(nb_path, args.parameter)
    try:
        html = run_report(nb_path, params, args.output, hide_input=args.no_input, progress=args.verbose,
                          verbose=args.verbose)
    except NotebookCellError as err:
        if args.verbose and err.traceback:
            print("\n".join(err.traceback), file=sys.stderr)
        raise
    print(f"wrote {html}")
    return 0


def _run_command(command: Callable[[], int]) -> int:
    """Run a subcommand; every error a user can cause is one line on stderr with its exit status:
    1 the work itself failed (a notebook cell, an assignment's build or grading), 2 a usage or
    file error, 130 interrupted."""
    from plural_kit.assign import AssignmentError

    try:
        return command()
    except (NotebookCellError, AssignmentError) as err:
        print(f"plural-kit: error: {err}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as err:
        print(f"plural-kit: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # e.g. the disk filled up while a file was written
        where = f" ({err.filename})" if err.filename else ""
        print(f"plural-kit: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("plural-kit: interrupted", file=sys.stderr)
        return 130


def _cli_parameters(nb_path: Path, pairs: list[list[str]]) -> dict:
    """``-p NAME VALUE`` pairs parsed as YAML; a parameter given twice is an error, and a value for a
    ``str`` parameter that YAML reads as a number or boolean (``-p layers 5``) stays the text typed."""
    params: dict = {}
    declared = None
    for name, raw in pairs:
        if name in params:
            raise ValueError(f"-p {name} is given twice")
        value = _parse_value(name, raw)
        if value is not None and not isinstance(value, (str, list, dict)):  # a number, boolean, date ...
            declared = notebook_parameters(nb_path) if declared is None else declared
            if str(declared.get(name, {}).get("inferred_type_name")) == "str":
                value = raw
        params[name] = value
    return params


def _assignment_command(args) -> int:
    from plural_kit.assign import build_assignment, grade

    if args.command == "assign":
        built = build_assignment(args.assignment, args.output, run_tests=not args.no_run_tests)
        print(f"wrote {built.student} and {built.autograder}")
        return 0
    grades = grade(args.autograder, args.submission)
    for q, row in grades.to_frame().iterrows():
        print(f"{q}: {row['score']:g} / {row['max_score']:g}")
    print(f"total: {grades.total:g} / {grades.max_total:g} (written answers are graded by hand)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
