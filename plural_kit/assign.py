"""Course assignments: otter-grader masters under ``assignments/``, built and graded offline.

Command line::

    plural-kit assign LESSON --output DIR     # DIR/student/NAME.ipynb, DIR/autograder/NAME-autograder_*.zip
    plural-kit grade ZIP SUBMISSION.ipynb     # offline, no Docker: one line per question

A master is an otter-grader notebook (``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION`` ...).
Public tests check shapes and types and give a hint; hidden tests call the student's
functions on data they generate from their own fixed seeds and compare with the package.
Building runs the master's own tests on its solutions (a master that fails them does not
build). The autograder zip carries a wheel of this plural_kit, so ``otter grade`` (Docker) and
Gradescope install the same version the master was written against.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pandas as pd
import yaml

from plural_kit.report import check_output_folder, read_notebook
from plural_kit.results import Result, Summary, frame_summary

ASSIGNMENT_DIR = Path(__file__).resolve().parent.parent / "assignments"
_CONFIG_MARK = "# ASSIGNMENT CONFIG"
_TORCH_CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


class AssignmentError(RuntimeError):
    """Building or grading an assignment failed; the message says which step and why."""


def find_assignment(name: str | os.PathLike) -> Path:
    """The master notebook given as a path or a prefix of a master in ``assignments/`` (``"01"``)."""
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_dir():
        raise FileNotFoundError(f"{str(name)!r} is a folder, not a notebook")
    if path.suffix == ".ipynb" and path.exists():
        return path
    masters = sorted(ASSIGNMENT_DIR.glob("*.ipynb")) if ASSIGNMENT_DIR.is_dir() else []
    if not str(name).strip():  # a prefix of every master
        raise FileNotFoundError(f"the assignment is empty (an unset variable?); assignments: {[p.stem for p in masters]}")
    hits = [p for p in masters if p.stem == str(name) or p.stem.startswith(str(name))]
    if len(hits) != 1:
        known = [p.stem for p in masters]
        what = "no" if not hits else "more than one"
        missing = " (no such file)" if path.suffix == ".ipynb" and not hits else ""
        raise FileNotFoundError(f"{what} assignment matches {str(name)!r}{missing}; assignments: {known}")
    return hits[0]


def _config_cell(nb, master) -> nbformat.NotebookNode:
    for cell in nb.cells:
        if cell.cell_type == "raw" and cell.source.lstrip().startswith(_CONFIG_MARK):
            return cell
    raise ValueError(f"{master} has no raw '{_CONFIG_MARK}' cell; it is not an otter-grader master")


def _config_of(cell) -> dict:
    return yaml.safe_load(cell.source.split("\n", 1)[1]) or {}


def assignment_config(master: str | os.PathLike) -> dict:
    """The master's ``# ASSIGNMENT CONFIG`` (the YAML of its first raw cell that starts with it)."""
    return _config_of(_config_cell(read_notebook(master), master))


def _source_root() -> Path | None:
    root = Path(__file__).resolve().parent.parent
    return root if (root / "pyproject.toml").is_file() else None


def _run(cmd: list[str], step: str, cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise AssignmentError(f"{step} failed (exit {proc.returncode}): {_last_error(proc.stderr or proc.stdout)}")
    return proc.stdout


def _last_error(output: str, limit: int = 600) -> str:
    """The last top-level exception of ``output`` and what follows it, passing tests left out, on one line
    (otter lists the failed tests of an assignment under its exception)."""
    raw = output.rstrip().splitlines()
    start = max((i for i, line in enumerate(raw) if re.match(r"^[A-Za-z_.]+(Error|Exception): ", line)), default=None)
    keep = [line.strip() for line in (raw[start:] if start is not None else raw[-1:])
            if line.strip() and "Test case passed" not in line and "All test cases passed" not in line]
    text = " | ".join(keep) or "no output"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True, repr=False)
class BuiltAssignment(Result):
    """The files of a built assignment: ``student`` (hand out), ``autograder`` (the zip to grade
    with), ``solution`` (the master with its solutions, executed by otter)."""

    name: str
    student: Path
    autograder: Path
    solution: Path
    questions: pd.DataFrame  # question, points, manual

    title = "assignment"

    def to_frame(self) -> pd.DataFrame:
        return self.questions.copy()

    def summary(self) -> Summary:
        return frame_summary(f"assignment {self.name}: {self.questions['points'].sum():g} points",
                             self.to_frame(), [f"student: {self.student}", f"autograder: {self.autograder}"])

    def to_dict(self) -> dict:
        return {"name": self.name, "student": str(self.student), "autograder": str(self.autograder),
                "solution": str(self.solution), "questions": self.questions.to_dict(orient="records")}

    def _repr_fields(self) -> dict:
        return {"name": self.name, "questions": len(self.questions), "points": float(self.questions["points"].sum())}


def _check_output(output: str | os.PathLike) -> Path:
    """``output`` as a ``Path`` once it is known that it can be written, and that replacing it
    deletes only an earlier build (``student/``, ``autograder/``): ``ValueError`` (one line) if not."""
    if not str(output).strip():  # Path("") is the current folder, which would be replaced
        raise ValueError("--output is empty (an unset variable?): give the folder to write student/ and autograder/ to")
    output = Path(output)
    what = f"the assignment to {output}"
    if output.exists() and not output.is_dir():
        raise ValueError(f"cannot write {what}: {output} is a file, not a folder; choose another --output")
    check_output_folder(output.parent, what)
    if output.is_dir():
        check_output_folder(output, what)
        other = sorted(p.name for p in output.iterdir() if p.name not in ("student", "autograder"))
        if other:
            shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
            raise ValueError(f"will not replace {output}: it holds {shown}, not written by plural-kit assign; "
                             "choose a new folder (or an earlier build's) for --output")
    return output


def _questions(nb) -> pd.DataFrame:
    """The questions of a master notebook (``nbformat`` node): name, points, manual."""
    rows = []
    for cell in nb.cells:
        if cell.cell_type == "raw" and cell.source.lstrip().startswith("# BEGIN QUESTION"):
            meta = yaml.safe_load(cell.source.split("\n", 1)[1]) or {}
            rows.append({"question": meta["name"], "points": float(meta.get("points", 1)),
                         "manual": bool(meta.get("manual", False))})
    return pd.DataFrame(rows, columns=["question", "points", "manual"]).set_index("question")


def build_assignment(name: str | os.PathLike, output: str | os.PathLike, *, bundle_package: bool = True,
                     run_tests: bool = True) -> BuiltAssignment:
    """Build the student notebook and the autograder zip of a master with ``otter assign``.

    ``bundle_package``: put a wheel of this plural_kit into the autograder (needs the source
    tree, as in an editable install). ``run_tests``: let otter check the solutions pass first.
    ``output`` is replaced, if it holds only an earlier build. Raises :class:`AssignmentError`
    naming the failed step; ``ValueError`` (before any work) when ``output`` cannot be written or
    holds other files, or the master is not a readable otter-grader notebook.
    """
    master = find_assignment(name)
    nb = read_notebook(master)
    config_cell = _config_cell(nb, master)
    config = _config_of(config_cell)
    output = _check_output(output)
    with tempfile.TemporaryDirectory(prefix="plural_kit_assign_") as tmp:
        tmp = Path(tmp)
        root = _source_root()
        if bundle_package and root is not None:
            src = tmp / "src"  # a private copy: builds from the checkout itself share its build/ folder
            shutil.copytree(root / "plural_kit", src / "plural_kit", ignore=shutil.ignore_patterns("__pycache__"))
            for name in ("pyproject.toml", "README.md"):
                shutil.copy2(root / name, src / name)
            _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                  str(tmp), str(src)], "building the plural_kit wheel", tmp)
            wheel = next(tmp.glob("plural_kit-*.whl")).name
            # CPU torch in the grading image (the +cpu wheels win over PyPI's CUDA build); then this package
            (tmp / "requirements.txt").write_text(f"{_TORCH_CPU_INDEX}\nfiles/{wheel}\n")
            config["requirements"] = "requirements.txt"
            config["autograder_files"] = [*config.get("autograder_files", []), wheel]
        config_cell.source = f"{_CONFIG_MARK}\n" + yaml.safe_dump(config, sort_keys=False)
        copy = tmp / master.name
        nbformat.write(nb, str(copy))
        cmd = [sys.executable, "-m", "otter", "assign", "--no-pdfs", copy.name, "dist"]
        if not run_tests:
            cmd.insert(-2, "--no-run-tests")
        _run(cmd, f"otter assign {master.name}", tmp)
        if output.exists():
            shutil.rmtree(output)
        shutil.copytree(tmp / "dist", output)
    student = output / "student" / master.name
    zips = sorted((output / "autograder").glob("*-autograder_*.zip"))
    if not student.is_file() or len(zips) != 1:
        raise AssignmentError(f"otter assign did not write student/{master.name} and one autograder zip in {output}")
    return BuiltAssignment(master.stem, student, zips[0], output / "autograder" / master.name, _questions(nb))


@dataclass(frozen=True, repr=False)
class Grades(Result):
    """Scores of one graded submission: one row per question (``score``, ``max_score``, ``output``:
    otter's feedback, the failure messages of the tests that failed)."""

    submission: str
    table: pd.DataFrame

    title = "grades"

    @property
    def total(self) -> float:
        return float(self.table["score"].sum())

    @property
    def max_total(self) -> float:
        return float(self.table["max_score"].sum())

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def summary(self) -> Summary:
        return frame_summary(f"{self.submission}: {self.total:g} / {self.max_total:g}",
                             self.table[["score", "max_score"]])

    def to_dict(self) -> dict:
        return {"submission": self.submission, "total": self.total, "max_total": self.max_total,
                "scores": self.table["score"].to_dict(), "max_scores": self.table["max_score"].to_dict()}

    def _repr_fields(self) -> dict:
        return {"submission": self.submission, "score": f"{self.total:g}/{self.max_total:g}"}


def grade(autograder: str | os.PathLike, submission: str | os.PathLike,
          output_dir: str | os.PathLike | None = None) -> Grades:
    """Grade ``submission`` (a notebook) with the autograder zip, offline (``otter run``, no Docker).

    Only autograded questions are scored; written answers are graded by hand.
    """
    for what, given in (("autograder", autograder), ("submission", submission)):
        if not str(given).strip():  # Path("") is the current folder
            raise FileNotFoundError(f"the {what} is empty (an unset variable?): give a file")
    autograder, submission = Path(autograder).resolve(), Path(submission).resolve()
    for path in (autograder, submission):
        if path.is_dir():
            raise FileNotFoundError(f"{path} is a folder, not a file")
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(autograder) or "otter_config.json" not in zipfile.ZipFile(autograder).namelist():
        raise ValueError(f"{autograder} is not an otter autograder zip (plural-kit assign writes one under "
                         "OUTPUT/autograder/)")
    if submission.suffix == ".ipynb":
        read_notebook(submission)  # otter's own error for a broken notebook is a traceback, exit 1
    if output_dir is not None:
        check_output_folder(output_dir, f"the grading results to {output_dir}", "choose another output_dir")
    with tempfile.TemporaryDirectory(prefix="plural_kit_grade_") as tmp:
        out = Path(output_dir) if output_dir is not None else Path(tmp)
        _run([sys.executable, "-m", "otter", "run", "-a", str(autograder), "-o", str(out), str(submission)],
             f"otter run on {submission.name}", out)
        results = json.loads((out / "results.json").read_text())
    rows = [{"question": t["name"], "score": float(t["score"]), "max_score": float(t["max_score"]),
             "output": t.get("output", "")} for t in results["tests"] if "score" in t]
    return Grades(submission.name, pd.DataFrame(rows).set_index("question"))
