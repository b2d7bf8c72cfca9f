"""Where real data comes from: a local mirror, else a checksummed download into a cache.

Resolution of the data home (first that is set wins):

1. the ``data_home=`` argument of any loader,
2. the environment variable ``PLURAL_KIT_DATA_HOME``,
3. ``~/.cache/plural_kit/data``.

The data home is laid out like the project's mirror (``shared/data``): ``<home>/<folder>/<file>``.
:func:`fetch` returns a file that exists there as is; otherwise a file shipped inside the package
(``plural_kit/data/packaged/``: the MFQ-2 items, which have no public download) is returned from
there, and any other file is downloaded from its public repository at a pinned commit
(``registry.json``), its sha256 checked and stored in the data home (pooch writes through a
temporary file, so an interrupted download leaves nothing). Set ``PLURAL_KIT_DATA_URL`` to a base
URL laid out like the mirror (e.g. an institution's copy) to download from there instead of the
canonical URLs. Nothing touches the network at import.

A file that is neither in the data home, nor packaged, nor downloadable (no URL, or no network)
raises :class:`DataNotFoundError`, always that class: the test suite skips a test that needs such
a file (and fails it under ``CI=true``).

Integrity does not stop at the download: every registered file :func:`fetch` returns (from the
data home, a mirror, the package or a download) is checked against the registry's size and
sha256 first, and one that differs raises :class:`DataChecksumError` naming the file, both
hashes and the fix. The check is remembered per process for the file's (path, mtime, size,
ctime, inode), so each file is hashed once per process (all 178 registered files, 58 MB: about
0.1-0.25 s in all) and again only when it changes.
"""
from __future__ import annotations

import json
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path, PurePosixPath

from plural_kit.io import file_sha256

__all__ = [
    "DATA_HOME_ENV",
    "DOWNLOAD_TIMEOUT",
    "DATA_URL_ENV",
    "DataChecksumError",
    "DataFormatError",
    "DataNotFoundError",
    "data_home",
    "verify",
    "fetch",
    "packaged_path",
    "registry",
    "registry_url",
]

DATA_HOME_ENV = "PLURAL_KIT_DATA_HOME"
DATA_URL_ENV = "PLURAL_KIT_DATA_URL"
DEFAULT_DATA_HOME = Path("~/.cache/plural_kit/data")
_REGISTRY_FILE = Path(__file__).with_name("registry.json")
_PACKAGED = Path(__file__).with_name("packaged")
#: seconds to wait for a connection and then between bytes of a download (requests' (connect,
#: read) timeout): offline, a download fails within seconds instead of hanging
DOWNLOAD_TIMEOUT: tuple[float, float] = (5.0, 30.0)

log = logging.getLogger(__name__)


class DataNotFoundError(FileNotFoundError):
    """A data file is neither in the data home, nor packaged, nor downloadable (no URL, or no network).

    ``relative_path``: the file inside the data home (e.g. ``"d3code/d3-raters.csv"``);
    ``data_home``: the data home that was searched. The message starts with the relative path.
    """

    def __init__(self, message: str, relative_path: str | None = None, data_home: Path | None = None):
        super().__init__(message)
        self.relative_path = relative_path
        self.data_home = data_home


class DataChecksumError(ValueError):
    """A data file's bytes differ from the registry's sha256 (or size).

    Raised for a download (nothing is kept) and for a file already in the data home, a mirror or
    the package (a damaged or edited copy: it is left in place, the message says how to replace
    it). ``path`` (None for a download), ``relative_path``, ``expected`` and ``actual`` (sha256
    hex digests; ``actual`` None when unknown).
    """

    def __init__(self, message: str, relative_path: str | None = None, path: Path | None = None,
                 expected: str | None = None, actual: str | None = None):
        super().__init__(message)
        self.relative_path, self.path, self.expected, self.actual = relative_path, path, expected, actual


class DataFormatError(ValueError):
    """A data file cannot be parsed (not valid JSON, JSON lines, CSV, YAML, gzip or UTF-8).

    The message is one line naming the file (and the line, where known); ``path`` and ``line``.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None, line: int | None = None):
        super().__init__(message)
        self.path = None if path is None else Path(path)
        self.line = line


_VERIFIED: dict[tuple, str] = {}  # (path, mtime_ns, size, ctime_ns, inode) -> sha256 found equal to the registry's
_VERIFIED_LOCK = threading.Lock()


def verify(path: str | os.PathLike, relative_path: str | os.PathLike) -> Path:
    """Check a local copy of a registered file against the registry's size and sha256; return ``path``.

    The result is remembered for the file's (path, mtime, size, ctime, inode): a file is hashed
    once per process, and again when it is rewritten. Unregistered files are returned unchecked.

    Raises
    ------
    DataChecksumError  the file's size or sha256 differs from the registry's; the message names
        the file, the expected and the actual sha256 and how to get a good copy.
    """
    path = Path(path)
    rel = _normalise(relative_path)
    entry = _load_registry()["files"].get(rel)
    if entry is None:
        return path
    st = path.stat()
    stamp = (str(path), st.st_mtime_ns, st.st_size, st.st_ctime_ns, st.st_ino)
    if _VERIFIED.get(stamp) == entry["sha256"]:
        return path
    actual = file_sha256(path)
    if actual != entry["sha256"] or st.st_size != entry["size"]:
        packaged = packaged_path(rel)
        if packaged is not None and path.resolve() == packaged.resolve():
            fix = "The copy shipped inside plural_kit is damaged: reinstall plural_kit."
        else:
            url = registry_url(rel)
            fix = (f"Delete it (it is downloaded again from {url} on the next load) or replace it with a good copy "
                   f"from the project's mirror (shared/data/{rel})." if url else
                   f"Replace it with a good copy from the project's mirror (shared/data/{rel}).")
        raise DataChecksumError(
            f"{path} is damaged or was changed: its sha256 is {actual} ({st.st_size} bytes) but the data registry "
            f"has {entry['sha256']} ({entry['size']} bytes) for {rel}. {fix}",
            rel, path, entry["sha256"], actual,
        )
    with _VERIFIED_LOCK:
        _VERIFIED[stamp] = actual
    return path


def data_home(data_home: str | os.PathLike | None = None) -> Path:
    """The data home: ``data_home``, else ``$PLURAL_KIT_DATA_HOME``, else ``~/.cache/plural_kit/data``.

    The path is returned expanded (``~``) and absolute; it need not exist.
    """
    if data_home is None:
        data_home = os.environ.get(DATA_HOME_ENV) or DEFAULT_DATA_HOME
    return Path(data_home).expanduser().resolve()


_resolve_home = data_home


@lru_cache(maxsize=1)
def _load_registry() -> dict:
    with open(_REGISTRY_FILE, encoding="utf-8") as f:
        return json.load(f)


def registry() -> dict[str, dict]:
    """Registered files: relative path -> ``{"url", "sha256", "size", "source"}`` (a copy)."""
    reg = _load_registry()
    return {rel: {**entry, "url": registry_url(rel)} for rel, entry in reg["files"].items()}


def _normalise(relative_path: str | os.PathLike) -> str:
    rel = PurePosixPath(str(relative_path).replace(os.sep, "/"))
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise ValueError(
            f"relative_path must be a relative path inside the data home, got {str(relative_path)!r}"
        )
    return rel.as_posix()


def registry_url(relative_path: str | os.PathLike) -> str | None:
    """The download URL of a registered file (None when it has no public URL).

    ``$PLURAL_KIT_DATA_URL`` (a base URL laid out like the mirror) overrides the canonical URL.
    """
    rel = _normalise(relative_path)
    reg = _load_registry()
    entry = reg["files"].get(rel)
    if entry is None:
        raise KeyError(f"{rel!r} is not in the data registry ({_REGISTRY_FILE})")
    override = os.environ.get(DATA_URL_ENV)
    if override:
        return override.rstrip("/") + "/" + rel
    base = reg["sources"][entry["source"]]["base_url"]
    if base is None or entry["path"] is None:
        return None
    return base + entry["path"]


def _help(rel: str, home: Path) -> str:
    return (
        f"Place the file at {home / rel} (a mirror laid out like the project's shared/data), "
        f"or point the loaders at such a mirror with data_home=... or the environment variable "
        f"{DATA_HOME_ENV}, or run online so that it is downloaded from its public source."
    )


def packaged_path(relative_path: str | os.PathLike) -> Path | None:
    """The copy of a registered file shipped inside the package, or None when it has none."""
    rel = _normalise(relative_path)
    entry = _load_registry()["files"].get(rel)
    if entry is None or not _load_registry()["sources"][entry["source"]].get("packaged"):
        return None
    return _PACKAGED / rel


def _remove_empty(dirs: list[Path]) -> None:
    """Remove the folders a failed download created (deepest first), if they are still empty."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return


def fetch(relative_path: str | os.PathLike, data_home: str | os.PathLike | None = None) -> Path:
    """Local path of a data file, downloading it (with a sha256 check) if the data home lacks it.

    Parameters
    ----------
    relative_path : path inside the data home, as in the mirror (e.g.
        ``"anthropic_evals/persona/agreeableness.jsonl"``).
    data_home : the data home (see :func:`data_home`).

    A file in the data home wins; else a packaged file (see :func:`packaged_path`) is returned
    from the package (no network); else the file is downloaded into the data home.

    Raises
    ------
    DataNotFoundError
        the file is missing and has no known public URL, or the download failed (no network,
        HTTP error); the message names the file, the URL and how to supply a mirror.
    DataChecksumError
        the file's sha256 differs from the registry's: a download (the file is not kept), or a
        copy in the data home or the package that was damaged or edited (see :func:`verify`).
    """
    rel = _normalise(relative_path)
    home = _resolve_home(data_home)
    local = home / rel
    if local.is_file():
        return verify(local, rel)
    entry = _load_registry()["files"].get(rel)
    if entry is None:
        raise DataNotFoundError(
            f"{rel} is not in {home} and not in the data registry. " + _help(rel, home), rel, home
        )
    packaged = packaged_path(rel)
    if packaged is not None and packaged.is_file():
        return verify(packaged, rel)
    url = registry_url(rel)
    if url is None:
        note = _load_registry()["sources"][entry["source"]].get("note", "")
        raise DataNotFoundError(
            f"{rel} is not in {home} and has no known public URL to download it from ({note}). "
            + _help(rel, home),
            rel,
            home,
        )
    import pooch
    import requests

    log.info("downloading %s from %s into %s", rel, url, local.parent)
    pooch_log = pooch.get_logger()  # pooch prints "Downloading data from ..." itself: keep it quiet
    level = pooch_log.level
    pooch_log.setLevel(logging.WARNING)
    new_dirs = [d for d in (local.parent, *local.parent.parents) if not d.exists()]  # deepest first
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{entry['sha256']}",
            fname=local.name,
            path=local.parent,
            progressbar=False,
            downloader=pooch.HTTPDownloader(progressbar=False, timeout=DOWNLOAD_TIMEOUT)
            if url.startswith(("http://", "https://"))
            else None,
        )
    except ValueError as err:
        _remove_empty(new_dirs)
        if "hash" not in str(err).lower():
            raise
        raise DataChecksumError(
            f"the file downloaded from {url} for {rel} does not have the expected sha256 "
            f"{entry['sha256']} ({err}); it was not kept. The source may have changed or the "
            f"download was corrupted. " + _help(rel, home),
            rel, None, entry["sha256"], None,
        ) from err
    except (requests.RequestException, OSError) as err:
        _remove_empty(new_dirs)
        raise DataNotFoundError(
            f"{rel} is not in {home} and could not be downloaded from {url} "
            f"({type(err).__name__}: {err}). " + _help(rel, home),
            rel,
            home,
        ) from err
    finally:
        pooch_log.setLevel(level)
    return verify(Path(path), rel)  # pooch checked the sha256; this remembers it (and checks the size)
