"""Course assignments (plural_kit.assign): every master builds with otter-grader, its solutions score
full marks, the untouched student notebook scores zero, and a typical mistake loses marks on exactly
the question it gets wrong. Grading is offline (``otter run``), no Docker."""
from __future__ import annotations

import ast
import re

import nbformat
import pytest
import yaml

from plural_kit import assign
from plural_kit.results import check_result

MASTERS = sorted(p.stem for p in assign.ASSIGNMENT_DIR.glob("*.ipynb"))

#: One typical mistake per assignment: (question, solution source to change, change).
MISTAKES = {
    "01_mixture_modeling": ("q2", "return np.exp(", "return -np.exp("),  # gradient with the wrong sign
    "02_cultural_bias_audit": ("q1", ".sum()) / np.log(2)", ".sum())"),  # JS divergence in nats, not bits
    "03_misalignment_probes": (  # the probe scored on its own training rows
        "q2", "np.mean(probe.predict(X[test_idx]) == y[test_idx])", "np.mean(probe.predict(X[train_idx]) == y[train_idx])"),
    "04_pluralistic_rewards_on_real_text": (  # chosen and rejected swapped
        "q1", 'get_indexer(part["chosen"])], X[statements.get_indexer(part["rejected"])]',
        'get_indexer(part["rejected"])], X[statements.get_indexer(part["chosen"])]'),
    "05_rankings_and_judges": ("q1", "r[b] -= k * (s - e)", "r[b] += k * (s - e)"),  # the loser gains too
    "06_noise_or_disagreement": ("q3", "dtype=float) - reference", "dtype=float)"),  # conjunction not centred
    "07_real_people": ("q1", "keyed = wide.where(~reverse, 6 - wide)", "keyed = wide"),  # reverse keys forgotten
}


def _cells(master):
    return nbformat.read(str(assign.ASSIGNMENT_DIR / f"{master}.ipynb"), as_version=4).cells


def _questions(master):
    """{name: (metadata, [test cell sources])} of a master."""
    out, current, in_tests = {}, None, False
    for cell in _cells(master):
        src = cell.source.lstrip()
        if cell.cell_type == "raw" and src.startswith("# BEGIN QUESTION"):
            meta = yaml.safe_load(src.split("\n", 1)[1])
            current = meta["name"]
            out[current] = (meta, [])
        elif cell.cell_type == "raw" and src.startswith("# BEGIN TESTS"):
            in_tests = True
        elif cell.cell_type == "raw" and src.startswith("# END TESTS"):
            in_tests = False
        elif in_tests and cell.cell_type == "code":
            out[current][1].append(cell.source)
    return out


def _config(test_source):
    m = re.match(r'""" # BEGIN TEST CONFIG\n(.*?)""" # END TEST CONFIG', test_source, flags=re.S)
    return yaml.safe_load(m.group(1)) if m else {}


def test_there_is_a_master_per_lesson_prefix():
    assert MASTERS, "no assignment masters under assignments/"
    assert set(MISTAKES) == set(MASTERS), "every master needs a typical-mistake submission in this test"


@pytest.mark.parametrize("master", MASTERS)
def test_master_shape(master):
    questions = _questions(master)
    assert 4 <= len(questions) <= 6, f"{master}: {len(questions)} questions, want 4-6"
    manual = [q for q, (meta, _) in questions.items() if meta.get("manual")]
    assert manual, f"{master}: no written question graded by hand"
    for q, (meta, tests) in questions.items():
        assert meta.get("points", 0) > 0, f"{master} {q}: no points"
        if meta.get("manual"):
            continue
        hidden = [t for t in tests if _config(t).get("hidden")]
        public = [t for t in tests if not _config(t).get("hidden")]
        assert public and hidden, f"{master} {q}: needs public tests (with a hint) and hidden tests"
        for t in tests:
            message = _config(t).get("failure_message", "")
            assert message, f"{master} {q}: a test without a failure message"
            # otter 7 writes the message into the test file between double quotes, unescaped
            assert '"' not in message and "\\" not in message, f"{master} {q}: quote in {message!r}"
        for t in hidden:  # hidden tests make their own data: never the student's seed or data
            body = t.split('""" # END TEST CONFIG', 1)[-1]
            fn = ast.parse(body).body[0]
            args = {a.arg for a in fn.args.args}
            assert not args & {"seed", "data", "train", "validation"}, f"{master} {q}: hidden test reads {args}"


def test_find_assignment_and_config_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no assignment matches 'zz'"):
        assign.find_assignment("zz")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    path = tmp_path / "plain.ipynb"
    nbformat.write(nb, str(path))
    with pytest.raises(ValueError, match="not an otter-grader master"):
        assign.assignment_config(path)
    assert assign.assignment_config(assign.find_assignment(MASTERS[0]))["name"] == MASTERS[0]


def test_cli_user_errors_are_one_line(capsys):
    from plural_kit.report import main

    assert main(["assign", "zz", "--output", "/tmp/never"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("plural-kit: error: no assignment matches") and "\n" not in err
    assert main(["grade", "/no/such.zip", "/no/such.ipynb"]) == 2


@pytest.mark.parametrize("content", [b"not a zip at all", None])
def test_grading_with_something_that_is_not_an_autograder_is_a_usage_error(tmp_path, capsys, content):
    """A text file or an empty zip as the autograder exited 1 with otter's raw BadZipFile / FileNotFoundError."""
    import zipfile

    from plural_kit.report import main

    fake = tmp_path / "autograder.zip"
    if content is None:
        zipfile.ZipFile(fake, "w").close()
    else:
        fake.write_bytes(content)
    submission = tmp_path / "sub.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(submission))
    assert main(["grade", str(fake), str(submission)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an otter autograder zip" in err, err


def test_last_error_is_one_line():
    out = ("Traceback (most recent call last):\n  File x\nRuntimeError: Some tests failed:\n    q1 results: All test cases passed!\n"
           "    q5 - 1 result:\n        ✅ Test case passed\n    q5 - 2 failed\n        TypeError: x\n")
    assert assign._last_error(out) == "RuntimeError: Some tests failed: | q5 - 1 result: | q5 - 2 failed | TypeError: x"


def _fill(student_nb, solution_nb, mistake=None):
    """The student notebook with the solution's code answers pasted in (and one changed, for a mistake)."""
    answers = [c for c in student_nb.cells if c.cell_type == "code" and "otter_answer_cell" in c.metadata.get("tags", [])]
    solutions = [c for c in solution_nb.cells
                 if c.cell_type == "code" and "otter_assign_solution_cell" in c.metadata.get("tags", [])]
    assert len(answers) == len(solutions)
    for a, s in zip(answers, solutions):
        a.source = s.source
    if mistake:
        _, old, new = mistake
        hits = [a for a in answers if old in a.source]
        assert len(hits) == 1, f"the mistake's source {old!r} is in {len(hits)} answers"
        hits[0].source = hits[0].source.replace(old, new)
    return student_nb


@pytest.fixture(scope="module", params=MASTERS)
def built(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    return assign.build_assignment(request.param, out / "dist", run_tests=False), out


def test_assignment_grades(built):
    """Solutions: full marks (and grader.check passes offline in the student notebook); untouched: zero;
    the typical mistake: below full marks on its question only."""
    from nbclient import NotebookClient

    b, out = built
    check_result(b)
    assert (b.autograder.parent / "requirements.txt").read_text().splitlines()[-1].startswith("files/plural_kit-")
    student = nbformat.read(str(b.student), as_version=4)
    solution = nbformat.read(str(b.solution), as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in student.cells), "papermill tag lost"
    assert not any("BEGIN SOLUTION" in c.source for c in student.cells)

    filled = _fill(nbformat.read(str(b.student), as_version=4), solution)
    NotebookClient(filled, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(b.student.parent)}}).execute()
    checks = [o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
              for c in filled.cells if c.cell_type == "code" and "grader.check(" in c.source for o in c.outputs]
    n_auto = int((~b.questions["manual"]).sum())
    assert len(checks) == n_auto and all("passed" in text for text in checks), checks
    full = out / "solution.ipynb"
    nbformat.write(filled, str(full))
    g = assign.grade(b.autograder, full)
    check_result(g)
    assert g.total == g.max_total == b.questions.loc[~b.questions["manual"], "points"].sum(), g.to_frame()

    zero = assign.grade(b.autograder, b.student)
    assert zero.total == 0, zero.to_frame()

    mistake = MISTAKES[b.name]
    wrong = out / "mistake.ipynb"
    nbformat.write(_fill(nbformat.read(str(b.student), as_version=4), solution, mistake), str(wrong))
    scores = assign.grade(b.autograder, wrong).to_frame()
    lost = scores.index[scores["score"] < scores["max_score"]].tolist()
    assert lost == [mistake[0]], scores


# ------------------------------------------------------------------ user errors: one line, exit 2, before any work
def _one_line_exit_2(capsys, argv, message):
    from plural_kit.report import main

    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1, captured.err
    assert re.fullmatch(rf"plural-kit: error: {message}\n", captured.err), captured.err


@pytest.mark.parametrize("output, message", [
    # before: "Not a directory (afile/sub)", after the wheel and otter had run
    ("afile/sub", r"cannot write the assignment to afile/sub: afile is a file, not a folder; choose another --output"),
    ("afile", r"cannot write the assignment to afile: afile is a file, not a folder; choose another --output"),
    ("/proc/plural_kit_out", r"cannot write the assignment to /proc/plural_kit_out: cannot create files in /proc "
                             r"\(.+\); choose another --output"),
    # before: Path("") is ".", which was replaced: -o "$UNSET" deleted the current folder
    ("", r"--output is empty \(an unset variable\?\): give the folder to write student/ and autograder/ to"),
    (".", r"will not replace \.: it holds afile, notes\.txt, not written by plural-kit assign; choose a new folder "
          r"\(or an earlier build's\) for --output"),
])
def test_assign_output_that_cannot_be_written_or_replaced_is_refused_before_building(tmp_path, capsys, monkeypatch,
                                                                                     output, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    _one_line_exit_2(capsys, ["assign", MASTERS[0], "-o", output], message)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_assign_replaces_an_earlier_build_only(tmp_path):
    earlier = tmp_path / "dist"
    (earlier / "student").mkdir(parents=True)
    (earlier / "autograder").mkdir()
    assert assign._check_output(earlier) == earlier  # an earlier build: replaced
    (earlier / "grades.csv").write_text("q1,3")
    with pytest.raises(ValueError, match=r"will not replace \S+/dist: it holds grades\.csv, not written by"):
        assign._check_output(earlier)


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() == 0,
                    reason="root writes into a read-only folder: the /proc case checks an unwritable folder")
def test_assign_into_a_folder_without_write_permission_is_refused(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        _one_line_exit_2(capsys, ["assign", MASTERS[0], "-o", str(locked / "dist")],
                         r"cannot write the assignment to \S+/locked/dist: cannot create files in \S+/locked "
                         r"\(Permission denied\); choose another --output")
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("content, message", [
    ("garbage", r"\S*bad\.ipynb is not a readable Jupyter notebook \(NotJSONError: Notebook does not appear to be JSON: .*\)"),
    ('{"a": 1}', r"\S*bad\.ipynb is not a readable Jupyter notebook \(ValidationError: .*\)"),  # was a traceback
    (None, r"'\S*bad\.ipynb' is a folder, not a notebook"),
])
def test_a_master_or_submission_that_is_not_a_notebook_is_one_line(tmp_path, capsys, content, message):
    import zipfile

    bad = tmp_path / "bad.ipynb"
    bad.mkdir() if content is None else bad.write_text(content)
    _one_line_exit_2(capsys, ["assign", str(bad), "-o", str(tmp_path / "dist")], message)
    assert not (tmp_path / "dist").exists()
    autograder = tmp_path / "autograder.zip"  # looks like one: the submission is checked before otter runs
    with zipfile.ZipFile(autograder, "w") as z:
        z.writestr("otter_config.json", "{}")
    if content is None:  # was "no such file"
        message = r"\S+/bad\.ipynb is a folder, not a file"
    _one_line_exit_2(capsys, ["grade", str(autograder), str(bad)], message)  # was otter's error, exit 1


def test_a_master_path_that_does_not_exist_says_so(capsys):
    _one_line_exit_2(capsys, ["assign", "/no/such/master.ipynb", "-o", "/tmp/never"],
                     r"no assignment matches '/no/such/master\.ipynb' \(no such file\); assignments: \[.*\]")


def test_grading_results_under_a_file_are_refused(tmp_path):
    import zipfile

    autograder = tmp_path / "autograder.zip"
    with zipfile.ZipFile(autograder, "w") as z:
        z.writestr("otter_config.json", "{}")
    submission = tmp_path / "sub.ipynb"
    nbformat.write(nbformat.v4.new_notebook(), str(submission))
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ValueError, match=r"cannot write the grading results to \S+/afile/out: \S+/afile is a file, "
                                         r"not a folder; choose another output_dir"):
        assign.grade(autograder, submission, output_dir=tmp_path / "afile" / "out")


@pytest.mark.parametrize("argv, message", [
    (["assign", "", "-o", "dist"], r"the assignment is empty \(an unset variable\?\); assignments: \[.*\]"),  # was "more than one"
    (["grade", "", "sub.ipynb"], r"the autograder is empty \(an unset variable\?\): give a file"),  # was "<cwd> is not ..."
    (["grade", "a.zip", " "], r"the submission is empty \(an unset variable\?\): give a file"),
])
def test_empty_arguments_are_named(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    _one_line_exit_2(capsys, argv, message)
    assert list(tmp_path.iterdir()) == []
