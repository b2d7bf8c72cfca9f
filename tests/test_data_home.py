"""Data home resolution, the registry, and checksummed downloads from a local HTTP server."""
from __future__ import annotations

import functools
import hashlib
import http.server
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


def test_fetch_uses_mirror(plural_kit_data_home):
    assert fetch(REL) == plural_kit_data_home.resolve() / REL
    assert fetch(REL, data_home=plural_kit_data_home) == plural_kit_data_home.resolve() / REL


def test_fetch_rejects_paths_outside_home(tmp_path):
    for bad in ("../etc/passwd", "/etc/passwd", ""):
        with pytest.raises(ValueError, match="relative path"):
            fetch(bad, data_home=tmp_path)


def test_registry_matches_mirror(plural_kit_data_home):
    """Every registered file is in the mirror with the registered size and sha256."""
    reg = home.registry()
    assert len(reg) >= 170
    for rel, entry in reg.items():
        path = plural_kit_data_home / rel
        assert path.is_file(), rel
        assert path.stat().st_size == entry["size"], rel
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"], rel


def test_registry_is_generated_from_mirror(plural_kit_data_home):
    from plural_kit.data._registry_build import build_registry

    assert build_registry(plural_kit_data_home) == home._load_registry()


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
def http_mirror(tmp_path, plural_kit_data_home):
    """A local HTTP server on 127.0.0.1 serving a temporary copy of one mirrored file."""
    served = tmp_path / "served"
    (served / REL).parent.mkdir(parents=True)
    shutil.copy(plural_kit_data_home / REL, served / REL)
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


def test_download_with_checksum(http_mirror, tmp_path, monkeypatch, plural_kit_data_home):
    served, url = http_mirror
    monkeypatch.setenv("PLURAL_KIT_DATA_URL", url)
    cache = tmp_path / "cache"
    path = fetch(REL, data_home=cache)
    assert path == cache.resolve() / REL
    assert path.read_bytes() == (plural_kit_data_home / REL).read_bytes()
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
    assert "PLURAL_KIT_DATA_HOME" in msg and "data_home" in msg


def test_missing_file_without_url(tmp_path):
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
