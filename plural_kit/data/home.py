"""Where real data comes from: a local mirror, else a checksummed download into a cache.

Resolution of the data home (first that is set wins):

1. the ``data_home=`` argument of any loader,
2. the environment variable ``PLURAL_KIT_DATA_HOME``,
3. ``~/.cache/plural_kit/data``.

The data home is laid out like the project's mirror (``shared/data``): ``<home>/<folder>/<file>``.
:func:`fetch` returns a file that exists there as is; otherwise it downloads the file from its
public repository at a pinned commit (``registry.json``), checks its sha256 and stores it in the
data home (pooch writes through a temporary file, so an interrupted download leaves nothing).
Set ``PLURAL_KIT_DATA_URL`` to a base URL laid out like the mirror (e.g. an institution's copy)
to download from there instead of the canonical URLs. Nothing touches the network at import.
"""
from __future__ import annotations

import json
import logging
import os
from functools import lru_cache
from pathlib import Path, PurePosixPath

__all__ = [
    "DATA_HOME_ENV",
    "DATA_URL_ENV",
    "DataChecksumError",
    "DataNotFoundError",
    "data_home",
    "fetch",
    "registry",
    "registry_url",
]

DATA_HOME_ENV = "PLURAL_KIT_DATA_HOME"
DATA_URL_ENV = "PLURAL_KIT_DATA_URL"
DEFAULT_DATA_HOME = Path("~/.cache/plural_kit/data")
_REGISTRY_FILE = Path(__file__).with_name("registry.json")

log = logging.getLogger(__name__)


class DataNotFoundError(FileNotFoundError):
    """A data file is neither in the data home nor downloadable (no URL, or no network)."""


class DataChecksumError(ValueError):
    """A downloaded file's sha256 differs from the registry's; nothing was kept."""


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
        f"{DATA_HOME_ENV}."
    )


def fetch(relative_path: str | os.PathLike, data_home: str | os.PathLike | None = None) -> Path:
    """Local path of a data file, downloading it (with a sha256 check) if the data home lacks it.

    Parameters
    ----------
    relative_path : path inside the data home, as in the mirror (e.g.
        ``"anthropic_evals/persona/agreeableness.jsonl"``).
    data_home : the data home (see :func:`data_home`).

    Raises
    ------
    DataNotFoundError
        the file is missing and has no known public URL, or the download failed (no network,
        HTTP error); the message names the file, the URL and how to supply a mirror.
    DataChecksumError
        the downloaded file's sha256 differs from the registry's (the file is not kept).
    """
    rel = _normalise(relative_path)
    home = _resolve_home(data_home)
    local = home / rel
    if local.is_file():
        return local
    entry = _load_registry()["files"].get(rel)
    if entry is None:
        raise DataNotFoundError(f"{rel} is not in {home} and not in the data registry. " + _help(rel, home))
    url = registry_url(rel)
    if url is None:
        note = _load_registry()["sources"][entry["source"]].get("note", "")
        raise DataNotFoundError(
            f"{rel} is not in {home} and has no known public URL to download it from ({note}). "
            + _help(rel, home)
        )
    import pooch
    import requests

    log.info("downloading %s from %s into %s", rel, url, local.parent)
    try:
        path = pooch.retrieve(
            url,
            known_hash=f"sha256:{entry['sha256']}",
            fname=local.name,
            path=local.parent,
            progressbar=False,
        )
    except ValueError as err:
        if "hash" not in str(err).lower():
            raise
        raise DataChecksumError(
            f"the file downloaded from {url} for {rel} does not have the expected sha256 "
            f"{entry['sha256']} ({err}); it was not kept. The source may have changed or the "
            f"download was corrupted. " + _help(rel, home)
        ) from err
    except (requests.RequestException, OSError) as err:
        raise DataNotFoundError(
            f"{rel} is not in {home} and could not be downloaded from {url} "
            f"({type(err).__name__}: {err}). " + _help(rel, home)
        ) from err
    return Path(path)
