"""Shared test setup (unit tests and notebooks): the data home, and tests whose data is missing.

Data home: ``PLURAL_KIT_DATA_HOME`` when set; else the project's mirror ``<root>/shared/data``
when it exists (the variable is then set at start-up, before any notebook kernel is launched, so
kernels started by nbval and papermill inherit it); else the loaders' default cache
(``~/.cache/plural_kit/data``), which they fill by downloading from the public sources.

Missing data: a test that errors because a data set is neither in the data home nor downloadable
(:class:`plural_kit.data.DataNotFoundError` for a registered file of the session's data home,
raised in the test, in a fixture, or inside a lesson run by papermill) is reported as
skipped, with the data set and how to get it, and the run ends with one line that counts them.
Under ``CI=true`` nothing is skipped for missing data: those tests fail (CI has the mirror).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]  # tests/test_data_home.py runs this file's hooks on small test files

# The repository lives at <root>/<checkout> and the mirror at <root>/shared/data (CI lays it out the same).
MIRROR = Path(__file__).resolve().parent.parent / "shared" / "data"
HOW_TO_GET_DATA = (
    "set PLURAL_KIT_DATA_HOME to a data mirror laid out like shared/data, or run online so that "
    "the loaders download it from its public source"
)
_MISSING = pytest.StashKey[dict]()  # data set folder -> node ids of the tests not run for it
_ORIGIN = pytest.StashKey[str]()
_MESSAGE = re.compile(r"(\S+) is not in (.+?) and ")  # how every DataNotFoundError message starts


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.stash[_MISSING] = {}
    if os.environ.get("PLURAL_KIT_DATA_HOME"):
        config.stash[_ORIGIN] = "PLURAL_KIT_DATA_HOME"
    elif MIRROR.is_dir():
        os.environ["PLURAL_KIT_DATA_HOME"] = str(MIRROR)
        config.stash[_ORIGIN] = "the mirror beside the checkout"
    else:
        config.stash[_ORIGIN] = "no mirror found: the download cache"


def pytest_report_header(config):
    from plural_kit.data.home import data_home

    return f"plural_kit data home: {data_home()} ({config.stash[_ORIGIN]})"


def _registered_missing(rel: str, home: str | os.PathLike | None) -> str | None:
    """``rel`` when it is a registered file missing from the session's data home, else None."""
    from plural_kit.data.home import _load_registry, data_home

    if home is None or Path(home).expanduser().resolve() != data_home():
        return None  # a test's own data home (tmp_path ...): a missing file there is the test's business
    return rel if rel in _load_registry()["files"] else None


def _missing_data(exc: BaseException) -> str | None:
    """The registered file behind a test error when the error is missing data, else None.

    Follows explicit chaining (``raise ... from err``) only, so that a failing assertion made
    while handling a DataNotFoundError is still a failure.
    """
    from plural_kit.data.home import DataNotFoundError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DataNotFoundError):
            return _registered_missing(exc.relative_path or "", exc.data_home)
        if type(exc).__name__ == "PapermillExecutionError" and getattr(exc, "ename", "") == "DataNotFoundError":
            m = _MESSAGE.match(str(getattr(exc, "evalue", "")))  # raised in the kernel: only its text crosses
            return _registered_missing(m.group(1), m.group(2)) if m else None
        exc = exc.__cause__
    return None


def _record(config, rel: str, nodeid: str) -> None:
    config.stash[_MISSING].setdefault(rel.split("/", 1)[0], set()).add(nodeid)


def _as_skipped(report, item, reason: str) -> None:
    report.outcome = "skipped"
    report.longrepr = (str(item.path), item.location[1] + 1, f"Skipped: {reason}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if not report.failed or report.when == "teardown" or call.excinfo is None or _in_ci():
        return report
    from plural_kit.data.home import data_home

    rel = _missing_data(call.excinfo.value)
    if rel is not None:
        _record(item.config, rel, item.nodeid)
        _as_skipped(report, item, f"needs data set {rel}: not in {data_home()} and not downloadable; "
                                  f"{HOW_TO_GET_DATA}")
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """One line after pytest's short summary: how many tests were not run for missing data."""
    result = yield
    missing = config.stash.get(_MISSING, {})
    if missing:
        from plural_kit.data.home import data_home

        n = len(set().union(*missing.values()))
        terminalreporter.write_line(
            f"plural_kit: {n} test(s) not run: their data is not in {data_home()} and could not be "
            f"downloaded (needed: {', '.join(sorted(missing))}); to run them, {HOW_TO_GET_DATA} "
            f"(under CI=true they fail instead)",
            yellow=True,
            bold=True,
        )
    return result


@pytest.fixture(scope="session")
def plural_kit_data_home() -> Path:
    """The data home the tests read (resolved; see the module docstring)."""
    from plural_kit.data.home import data_home

    return data_home()


@pytest.fixture()
def data_mirror(request, plural_kit_data_home) -> Path:
    """The data home when it is a full mirror (every registered file present); otherwise the
    test is skipped as missing data (failed under ``CI=true``)."""
    from plural_kit.data.home import registry

    missing = [rel for rel in registry() if not (plural_kit_data_home / rel).is_file()]
    if not missing:
        return plural_kit_data_home
    reason = (f"needs the full data mirror, but {len(missing)} registered file(s) (e.g. {missing[0]}) are "
              f"not in {plural_kit_data_home}: set PLURAL_KIT_DATA_HOME to a mirror laid out like shared/data")
    if _in_ci():
        pytest.fail(reason, pytrace=False)
    request.config.stash[_MISSING].setdefault("the full mirror", set()).add(request.node.nodeid)
    pytest.skip(reason)
