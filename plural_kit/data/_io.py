"""Cached readers shared by the loaders: parse a data file once per process, hand out copies.

A file that cannot be parsed raises :class:`DataFormatError`, one line naming the file (and, for
JSON lines, the line and column) and how to get a good copy, never a bare ``JSONDecodeError``.
"""
from __future__ import annotations

import gzip
import json
import os
import zlib
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from plural_kit.data.home import DataFormatError, fetch

_FIX = "the file is damaged or not in the expected format: replace it with a good copy (delete a downloaded " \
       "file to download it again)"


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


def _json_problem(err: json.JSONDecodeError) -> str:
    return err.msg.removesuffix(" at")  # "Invalid control character at" (the position follows in our message)


def _read_jsonl(path: str) -> list:
    opener = gzip.open if path.endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise DataFormatError(
                    f"{path}, line {number}, column {err.colno}: not valid JSON ({_json_problem(err)}); {_FIX}", path, number
                ) from None
    return rows


def _read(path: str, kind: str) -> Any:
    if kind == "csv":
        return pd.read_csv(path)
    if kind == "jsonl":
        return _read_jsonl(path)
    if kind == "json":
        with open(path, encoding="utf-8") as f:
            try:
                return json.load(f)
            except json.JSONDecodeError as err:
                raise DataFormatError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON ({_json_problem(err)}); "
                                      f"{_FIX}", path, err.lineno) from None
    if kind == "yaml":
        with open(path, encoding="utf-8") as f:
            try:
                return yaml.safe_load(f)
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
                problem = getattr(err, "problem", None) or str(err).splitlines()[0]
                raise DataFormatError(f"{path}{where}: not valid YAML ({problem}); {_FIX}", path,
                                      mark.line + 1 if mark is not None else None) from None
    raise ValueError(f"unknown file kind {kind!r}")


@lru_cache(maxsize=256)
def _parsed(stamp: tuple[str, int, int], kind: str) -> Any:
    path = stamp[0]
    try:
        return _read(path, kind)
    except DataFormatError:
        raise
    except UnicodeDecodeError as err:
        raise DataFormatError(f"{path}: not UTF-8 text (byte {err.start}: {err.reason}); {_FIX}", path) from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataFormatError(f"{path}: not a readable gzip file ({type(err).__name__}: {err}); {_FIX}", path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataFormatError(f"{path}: not a readable CSV file ({first}); {_FIX}", path) from None


def stamp(relative_path: str, data_home: str | os.PathLike | None = None) -> tuple[str, int, int]:
    """(path, mtime_ns, size) of a data file, fetched (and checked against the registry) if needed:
    the key of the parse caches."""
    return _stamp(fetch(relative_path, data_home))


def parse(file_stamp: tuple[str, int, int], kind: str) -> Any:
    """Parsed content of a stamped file, cached per process: treat it as read-only (copy first).

    ``kind``: ``"csv"`` (a DataFrame), ``"jsonl"`` (list of dicts, ``.gz`` allowed), ``"json"``,
    ``"yaml"``. The key includes the file's mtime and size, so an edited file is re-read.

    Raises :class:`~plural_kit.data.home.DataFormatError` (a ``ValueError``) naming the file (and
    line) when it cannot be parsed.
    """
    return _parsed(file_stamp, kind)
