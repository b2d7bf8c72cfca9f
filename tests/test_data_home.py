"""Data home resolution, the registry, and checksummed downloads from a local HTTP server."""
from __future__ import annotations

import functools
import hashlib
import http.server
import json
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from plural_kit.data import home
from plural_kit.data.home import DataChecksumError, DataNotFoundError, data_home, fetch

REL = "repeng_true_facts/true_facts.json"


def test_data_home_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("PLURAL_KIT_DATA_HOME", str(tmp_path / "env"))
    assert data_home() == (tmp_path / "env").resolve()
    assert data_home(tmp_path / "arg") == (tmp_path / "arg").resolve()  # the argument wins
    monkeypatch.delenv("PLURAL_KIT_DATA_HOME")
    assert data_home() == Path("~/.cache/plural_kit/data").expanduser().resolve()
    monkeypatch.setenv("HOME", str(tmp_path / "h"))
    assert data_home() == (tmp_path / "h" / ".cache" / "plural_kit" / "data").resolve()


def test_fetch_uses_mirror(data_mirror):
    assert fetch(REL) == data_mirror / REL
    assert fetch(REL, data_home=data_mirror) == data_mirror / REL


def test_fetch_rejects_paths_outside_home(tmp_path):
    for bad in ("../etc/passwd", "/etc/passwd", ""):
        with pytest.raises(ValueError, match="relative path"):
            fetch(bad, data_home=tmp_path)


def test_registry_matches_mirror(data_mirror):
    """Every registered file is in the mirror with the registered size and sha256."""
    reg = home.registry()
    assert len(reg) >= 170
    for rel, entry in reg.items():
        path = data_mirror / rel
        assert path.is_file(), rel
        assert path.stat().st_size == entry["size"], rel
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], rel


def test_registry_is_generated_from_mirror(data_mirror):
    from plural_kit.data._registry_build import build_registry

    assert build_registry(data_mirror) == home._load_registry()


def test_packaged_mfq2_needs_no_data_home(tmp_path):
    """The MFQ-2 items ship inside the package with the registered sha256 and their citation."""
    entry = home.registry()["mfq2/items.csv"]
    path = fetch("mfq2/items.csv", data_home=tmp_path / "empty")
    assert path == home.packaged_path("mfq2/items.csv") and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
    assert entry["url"] is None  # nothing to download
    assert "Atari" in (path.parent / "README.md").read_text()
    assert not (tmp_path / "empty").exists()  # nothing written into the data home
    # a copy in the data home wins
    (tmp_path / "home" / "mfq2").mkdir(parents=True)
    (tmp_path / "home" / "mfq2" / "items.csv").write_bytes(path.read_bytes())
    assert fetch("mfq2/items.csv", data_home=tmp_path / "home") == (tmp_path / "home" / "mfq2" / "items.csv").resolve()
    assert home.packaged_path(REL) is None


def test_packaged_copy_must_match_mirror(tmp_path, monkeypatch):
    from plural_kit.data import _registry_build

    mirror = tmp_path / "mirror"
    (mirror / "mfq2").mkdir(parents=True)
    (mirror / "mfq2" / "items.csv").write_text("item,foundation,text\n")
    monkeypatch.setattr(_registry_build, "SOURCES", {"mfq2": _registry_build.SOURCES["mfq2"]})
    with pytest.raises(ValueError, match="byte-identical"):
        _registry_build.build_registry(mirror)


def test_registry_urls_are_pinned(monkeypatch):
    monkeypatch.delenv("PLURAL_KIT_DATA_URL", raising=False)
    assert home.registry_url("anthropic_evals/persona/agreeableness.jsonl") == (
        "https://raw.githubusercontent.com/anthropics/evals/"
        "84fcc677e52e1902d696c32cd1a6b663e70d3993/persona/agreeableness.jsonl"
    )
    assert home.registry_url("d3code/d3-raters.csv").endswith("/D3code/d3c12e9599b1f1ba7fc1e80a42079d6be6c6b6e9/dataset/d3-raters.csv")
    assert home.registry_url("mfq2/items.csv") is None
    with pytest.raises(KeyError, match="not in the data registry"):
        home.registry_url("nope/nothing.csv")


@pytest.fixture
def http_mirror(tmp_path):
    """A local HTTP server on 127.0.0.1 serving a temporary copy of one registered file."""
    served = tmp_path / "served"
    (served / REL).parent.mkdir(parents=True)
    shutil.copy(fetch(REL), served / REL)
    handler = functools.partial(_QuietHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


def test_download_with_checksum(http_mirror, tmp_path, monkeypatch):
    served, url = http_mirror
    monkeypatch.setenv("PLURAL_KIT_DATA_URL", url)
    cache = tmp_path / "cache"
    path = fetch(REL, data_home=cache)
    assert path == cache.resolve() / REL
    assert path.read_bytes() == (served / REL).read_bytes()
    # a second call uses the cached copy: it works with the server's file gone
    (served / REL).unlink()
    assert fetch(REL, data_home=cache) == path


def test_download_checksum_mismatch(http_mirror, tmp_path, monkeypatch):
    served, url = http_mirror
    (served / REL).write_text('["tampered"]\n')
    monkeypatch.setenv("PLURAL_KIT_DATA_URL", url)
    cache = tmp_path / "cache"
    with pytest.raises(DataChecksumError, match="sha256") as err:
        fetch(REL, data_home=cache)
    assert REL in str(err.value) and url in str(err.value)
    assert not (cache / REL).exists()  # nothing kept
    assert not any(p.is_file() for p in cache.rglob("*"))  # no partial/temporary file either


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_missing_file_offline(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{_closed_port()}"  # nothing listens there: a connection error
    monkeypatch.setenv("PLURAL_KIT_DATA_URL", url)
    with pytest.raises(DataNotFoundError) as err:
        fetch(REL, data_home=tmp_path)
    msg = str(err.value)
    assert REL in msg and f"{url}/{REL}" in msg
    assert "PLURAL_KIT_DATA_HOME" in msg and "data_home" in msg and "online" in msg
    assert err.value.relative_path == REL and err.value.data_home == tmp_path.resolve()
    assert msg.startswith(f"{REL} is not in {tmp_path.resolve()} and ")  # the test suite parses this
    assert not any(tmp_path.iterdir())  # no empty folders left behind either


def test_offline_download_fails_fast(tmp_path, monkeypatch):
    """A download that cannot connect gives up after the connect timeout, not requests' default."""
    import time

    import requests

    seen = {}

    def no_network(url, timeout=None, **kwargs):
        seen["timeout"] = timeout
        raise requests.ConnectionError("no network")

    monkeypatch.delenv("PLURAL_KIT_DATA_URL", raising=False)
    monkeypatch.setattr(requests, "get", no_network)
    start = time.monotonic()
    with pytest.raises(DataNotFoundError, match="could not be downloaded"):
        fetch(REL, data_home=tmp_path)
    assert time.monotonic() - start < 5
    assert seen["timeout"] == home.DOWNLOAD_TIMEOUT and home.DOWNLOAD_TIMEOUT[0] <= 10


def test_missing_file_without_url(tmp_path, monkeypatch):
    reg = json.loads(json.dumps(home._load_registry()))
    reg["sources"]["mfq2"]["packaged"] = False  # as if the items were not shipped
    monkeypatch.setattr(home, "_load_registry", lambda: reg)
    with pytest.raises(DataNotFoundError, match="no known public URL") as err:
        fetch("mfq2/items.csv", data_home=tmp_path)
    assert "PLURAL_KIT_DATA_HOME" in str(err.value)


def test_unregistered_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="not in the data registry"):
        fetch("hh_rlhf/helpful-base/train.jsonl.gz", data_home=tmp_path)
    # but a file placed in the data home by hand is used
    (tmp_path / "hh_rlhf" / "helpful-base").mkdir(parents=True)
    (tmp_path / "hh_rlhf" / "helpful-base" / "train.jsonl.gz").write_bytes(b"")
    assert fetch("hh_rlhf/helpful-base/train.jsonl.gz", data_home=tmp_path).is_file()


def test_import_needs_no_network():
    """Importing the data package opens no connection."""
    code = (
        "import socket\n"
        "def refuse(*a, **k): raise AssertionError('network used at import')\n"
        "socket.socket.connect = refuse; socket.create_connection = refuse\n"
        "import plural_kit.data\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, timeout=120)


# ------------------------------------------------------------------ the test suite without data
_SUITE = '''
import pytest
from papermill.exceptions import PapermillExecutionError
from plural_kit.data import load_d3code_raters, load_mfq2_items
from plural_kit.data.home import DataNotFoundError, data_home, fetch


def test_needs_d3code():
    load_d3code_raters()


@pytest.fixture(scope="module")
def lesson():
    msg = f"seegull/stereotypes_global_v2.csv is not in {data_home()} and could not be downloaded"
    raise PapermillExecutionError(3, 2, "pkd.load_seegull()", "DataNotFoundError", msg, [])


def test_lesson_a(lesson):
    pass


def test_lesson_b(lesson):
    pass


def test_packaged_items_run_offline():
    assert len(load_mfq2_items()) == 36


def test_own_data_home_is_a_real_failure(tmp_path):
    fetch("d3code/d3-raters.csv", data_home=tmp_path)


def test_assertion_while_handling_is_a_real_failure():
    try:
        load_d3code_raters()
    except DataNotFoundError:
        assert False, "a bug found while handling missing data"


def test_unregistered_file_is_a_real_failure():
    fetch("d3code/not-registered.csv")


def test_other_lesson_error_is_a_real_failure():
    raise PapermillExecutionError(1, 1, "1/0", "ZeroDivisionError", "division by zero", [])
'''


@pytest.fixture
def offline_suite(pytester, monkeypatch, tmp_path):
    """The repository's conftest.py and a small test file, run with an empty data home and no network."""
    monkeypatch.setenv("PLURAL_KIT_DATA_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("PLURAL_KIT_DATA_URL", f"http://127.0.0.1:{_closed_port()}")  # downloads fail at once
    pytester.makeconftest((Path(__file__).resolve().parents[1] / "conftest.py").read_text())
    pytester.makepyfile(test_suite=_SUITE)
    return pytester


def test_missing_data_is_skipped_and_summarised(offline_suite, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    result = offline_suite.runpytest("-ra", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, skipped=3, failed=4)
    result.stdout.fnmatch_lines([
        "SKIPPED *test_suite.py:7: needs data set d3code/d3-raters.csv: not in *empty and not downloadable; "
        "set PLURAL_KIT_DATA_HOME*",
        "SKIPPED *test_suite.py:17: needs data set seegull/stereotypes_global_v2.csv*",  # both tests of the
        "SKIPPED *test_suite.py:21: needs data set seegull/stereotypes_global_v2.csv*",  # failed lesson run
        "FAILED *test_own_data_home_is_a_real_failure*",
        "FAILED *test_assertion_while_handling_is_a_real_failure*",
        "FAILED *test_unregistered_file_is_a_real_failure*",
        "FAILED *test_other_lesson_error_is_a_real_failure*",
        "plural_kit: 3 test(s) not run: their data is not in *empty and could not be downloaded "
        "(needed: d3code, seegull); to run them, set PLURAL_KIT_DATA_HOME to a data mirror*online*",
        "*4 failed, 1 passed, 3 skipped*",
    ])


def test_missing_data_fails_under_ci(offline_suite, monkeypatch):
    monkeypatch.setenv("CI", "true")
    result = offline_suite.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=5, errors=2)
    assert "not run" not in result.stdout.str()


# ------------------------------------------------------------------ integrity after the download
def _copy_home(tmp_path, rel=REL) -> Path:
    """A data home holding a copy of one registered file (from the session's data home)."""
    dest = tmp_path / "home" / rel
    dest.parent.mkdir(parents=True)
    shutil.copy(fetch(rel), dest)
    return dest


def _flip(path: Path, offset: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x20
    path.write_bytes(bytes(data))


def test_mirror_file_with_other_bytes_is_refused(tmp_path):
    """Same size, one byte flipped, in a mirror: the error names the file, both hashes and the fix."""
    import plural_kit.data as pkd

    dest = _copy_home(tmp_path)
    _flip(dest)
    actual = hashlib.sha256(dest.read_bytes()).hexdigest()
    expected = home.registry()[REL]["sha256"]
    with pytest.raises(DataChecksumError) as err:
        fetch(REL, data_home=tmp_path / "home")
    msg = str(err.value)
    assert msg == (f"{dest.resolve()} is damaged or was changed: its sha256 is {actual} ({dest.stat().st_size} bytes) "
                   f"but the data registry has {expected} ({dest.stat().st_size} bytes) for {REL}. Delete it (it is "
                   f"downloaded again from {home.registry_url(REL)} on the next load) or replace it with a good copy "
                   f"from the project's mirror (shared/data/{REL}).")
    assert (err.value.relative_path, err.value.expected, err.value.actual) == (REL, expected, actual)
    assert dest.is_file()  # a mirror is not deleted behind the user's back
    with pytest.raises(DataChecksumError, match="is damaged or was changed"):
        pkd.load_true_facts(data_home=tmp_path / "home")  # every loader goes through the check


def test_truncated_copy_is_refused(tmp_path):
    dest = _copy_home(tmp_path)
    dest.write_bytes(dest.read_bytes()[:100])
    with pytest.raises(DataChecksumError, match=r"\(100 bytes\) but the data registry has [0-9a-f]{64} \(\d+ bytes\)"):
        fetch(REL, data_home=tmp_path / "home")


def test_downloaded_copy_edited_afterwards_is_refused(http_mirror, tmp_path, monkeypatch):
    """Edited in place with its size and mtime kept (os.utime): still caught (ctime, inode)."""
    import os

    served, url = http_mirror
    monkeypatch.setenv("PLURAL_KIT_DATA_URL", url)
    cache = tmp_path / "cache"
    path = fetch(REL, data_home=cache)
    st = path.stat()
    _flip(path, 3)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_mtime_ns, path.stat().st_size) == (st.st_mtime_ns, st.st_size)
    with pytest.raises(DataChecksumError, match=rf"{path} is damaged or was changed: .* Delete it \(it is downloaded "
                                                rf"again from {url}/{REL} on the next load\)"):
        fetch(REL, data_home=cache)
    path.unlink()  # the fix the message gives
    assert fetch(REL, data_home=cache) == path and hashlib.sha256(path.read_bytes()).hexdigest() == \
        home.registry()[REL]["sha256"]


def test_each_file_is_hashed_once_per_process(tmp_path, monkeypatch):
    dest = _copy_home(tmp_path)
    calls = []
    real = home.file_sha256
    monkeypatch.setattr(home, "file_sha256", lambda p: calls.append(p) or real(p))
    for _ in range(5):
        fetch(REL, data_home=tmp_path / "home")
    assert len(calls) == 1
    dest.write_bytes(dest.read_bytes())  # rewritten (same bytes): checked again, and still fine
    fetch(REL, data_home=tmp_path / "home")
    assert len(calls) == 2


def test_damaged_packaged_copy_says_reinstall(tmp_path, monkeypatch):
    rel = "mfq2/items.csv"
    fake = tmp_path / "packaged"
    (fake / "mfq2").mkdir(parents=True)
    shutil.copy(home.packaged_path(rel), fake / rel)
    _flip(fake / rel)
    monkeypatch.setattr(home, "_PACKAGED", fake)
    with pytest.raises(DataChecksumError, match=r"items.csv is damaged or was changed: .* The copy shipped inside "
                                                r"plural_kit is damaged: reinstall plural_kit\.$"):
        fetch(rel, data_home=tmp_path / "empty")


def test_session_data_home_passes_the_check(data_mirror):
    """The mirror itself: every registered file passes (read through fetch, hashed once)."""
    for rel in home.registry():
        assert fetch(rel) == data_mirror / rel or fetch(rel) == home.packaged_path(rel)
