"""Reports: run a lesson notebook with papermill and write HTML; save a notebook's metrics.

Command line::

    plural-kit report NOTEBOOK [-p NAME VALUE ...] [--output FILE.html] [--no-input]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict"):  # pandas objects
        return _jsonable(value.to_dict())
    return value


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file through ``write(binary file handle)`` into a temporary file, then rename it
    into place atomically (a reader never sees half a file; an interrupted write leaves none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it ordinary permissions
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def save_metrics(output_dir: str | os.PathLike, metrics: dict, name: str = "metrics.json") -> Path:
    """Write ``metrics`` (nested dicts of numbers, arrays, DataFrames) as JSON in ``output_dir``."""
    return atomic_write_text(Path(output_dir) / name, json.dumps(_jsonable(metrics), indent=2, sort_keys=True))


def find_notebook(name: str | os.PathLike) -> Path:
    """Resolve a notebook given as a path, a file name in ``notebooks/`` or a prefix like ``01``."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.exists():
        return path
    candidates = sorted(NOTEBOOK_DIR.glob("*.ipynb")) if NOTEBOOK_DIR.is_dir() else []
    stem = path.name.removesuffix(".ipynb")
    matches = [p for p in candidates if p.stem == stem] or [p for p in candidates if p.stem.startswith(stem)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(p.stem for p in candidates) or "none found"
    if not matches:
        raise FileNotFoundError(f"no notebook {str(name)!r}; known lessons: {known}")
    raise FileNotFoundError(f"{str(name)!r} matches several notebooks ({', '.join(p.stem for p in matches)})")


def notebook_parameters(notebook: str | os.PathLike) -> dict[str, dict]:
    """The parameters a notebook declares in its ``parameters`` cell (name → type, default)."""
    import papermill as pm

    return dict(pm.inspect_notebook(str(notebook)))


def _parse_value(raw: str):
    """Parse a ``-p`` value as YAML (numbers, booleans, lists), falling back to the raw string."""
    import yaml

    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError:
        return raw


def run_report(
    notebook: str | os.PathLike,
    parameters: dict | None = None,
    output: str | os.PathLike | None = None,
    *,
    hide_input: bool = False,
    kernel_name: str = "python3",
    progress: bool = True,
) -> Path:
    """Execute ``notebook`` with papermill and write an HTML report; return the HTML path.

    The executed notebook is kept beside the HTML (``<output>.ipynb``). Unknown parameter names
    raise ``ValueError`` listing the notebook's parameters. ``output_dir`` defaults to the
    folder of the HTML report so that ``metrics.json`` lands next to it.
    """
    import nbformat
    import papermill as pm
    from nbconvert import HTMLExporter

    nb_path = find_notebook(notebook)
    declared = notebook_parameters(nb_path)
    parameters = dict(parameters or {})
    unknown = sorted(set(parameters) - set(declared))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {nb_path.name}; it takes {sorted(declared)}")
    html_path = Path(output) if output else Path("reports") / f"{nb_path.stem}.html"
    html_path = html_path.resolve()
    html_path.parent.mkdir(parents=True, exist_ok=True)
    if "output_dir" in declared and "output_dir" not in parameters:
        parameters["output_dir"] = str(html_path.parent)
    executed = html_path.with_suffix(".ipynb")
    pm.execute_notebook(
        str(nb_path), str(executed), parameters=parameters, cwd=str(nb_path.parent),
        kernel_name=kernel_name, progress_bar=progress,
    )
    exporter = HTMLExporter(exclude_input=hide_input, exclude_input_prompt=hide_input)
    body, _ = exporter.from_notebook_node(nbformat.read(str(executed), as_version=4))
    atomic_write_text(html_path, body)
    return html_path


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``plural-kit`` command."""
    parser = argparse.ArgumentParser(prog="plural-kit", description="plural_kit lessons and reports")
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="run a lesson notebook with papermill and write an HTML report")
    rep.add_argument("notebook", help="path, file name or prefix of a notebook in notebooks/ (e.g. 01)")
    rep.add_argument("-p", "--parameter", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                     help="set a notebook parameter (value parsed as YAML); repeatable")
    rep.add_argument("-o", "--output", help="HTML file to write (default reports/<notebook>.html)")
    rep.add_argument("--no-input", action="store_true", help="hide code cells in the report")
    rep.add_argument("--list-parameters", action="store_true", help="print the notebook's parameters and exit")
    args = parser.parse_args(argv)
    try:
        nb_path = find_notebook(args.notebook)
        if args.list_parameters:
            for name, spec in notebook_parameters(nb_path).items():
                print(f"{name}: {spec.get('inferred_type_name')} = {spec.get('default')}  {spec.get('help', '')}")
            return 0
        params = {name: _parse_value(value) for name, value in args.parameter}
        html = run_report(nb_path, params, args.output, hide_input=args.no_input)
    except (FileNotFoundError, ValueError) as err:
        print(f"plural-kit: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
