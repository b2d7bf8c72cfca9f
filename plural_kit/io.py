"""Files written safely and values made JSON-able: the one home for both (caches, reports, registries)."""
from __future__ import annotations

import hashlib
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np


def jsonable(value):
    """``value`` with numpy scalars/arrays, pandas objects and results (anything with ``to_dict``)
    turned into JSON types; non-finite floats become ``None``."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "to_dict"):  # pandas objects
        return jsonable(value.to_dict())
    return value


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Write a file through ``write(binary file handle)`` into a temporary file, then rename it
    into place atomically (a reader never sees half a file; an interrupted write leaves none).

    An ``OSError`` (folder not creatable, not writable, disk full, a folder in the way) is raised
    as the same ``OSError`` subclass whose message (``strerror``) names ``path``, not the
    temporary file: ``"cannot write <path>: <problem>"``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as err:
        raise _naming(err, path) from None
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes the file private; give it ordinary permissions
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _naming(err, path) from None
        raise
    return path


def _naming(err: OSError, path: Path) -> OSError:
    """``err`` as an error of the same class whose message names ``path``."""
    problem = err.strerror or str(err)
    if path.is_dir():
        problem = "it is a folder"
    elif any(d.exists() and not d.is_dir() for d in path.parents):
        blocking = next(d for d in path.parents if d.exists() and not d.is_dir())
        problem = f"{blocking} is a file, not a folder"
    if err.errno is not None:
        return OSError(err.errno, f"cannot write {path}: {problem}")  # OSError picks the subclass from errno
    return type(err)(f"cannot write {path}: {problem}")


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` with :func:`atomic_write`."""
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
