"""Cached readers shared by the loaders: parse a data file once per process, hand out copies."""
from __future__ import annotations

import gzip
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from plural_kit.data.home import fetch


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path), st.st_mtime_ns, st.st_size


@lru_cache(maxsize=256)
def _parsed(stamp: tuple[str, int, int], kind: str) -> Any:
    path = stamp[0]
    if kind == "csv":
        return pd.read_csv(path)
    if kind == "jsonl":
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]
    if kind == "json":
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    if kind == "yaml":
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    raise ValueError(f"unknown file kind {kind!r}")


def stamp(relative_path: str, data_home: str | os.PathLike | None = None) -> tuple[str, int, int]:
    """(path, mtime_ns, size) of a data file, fetched if needed: the key of the parse caches."""
    return _stamp(fetch(relative_path, data_home))


def parse(file_stamp: tuple[str, int, int], kind: str) -> Any:
    """Parsed content of a stamped file, cached per process: treat it as read-only (copy first).

    ``kind``: ``"csv"`` (a DataFrame), ``"jsonl"`` (list of dicts, ``.gz`` allowed), ``"json"``,
    ``"yaml"``. The key includes the file's mtime and size, so an edited file is re-read.
    """
    return _parsed(file_stamp, kind)
