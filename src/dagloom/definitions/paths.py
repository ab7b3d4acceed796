"""Paths relative to a definitions file, as Dagster's `file_relative_path` gives them."""

from __future__ import annotations

import os

__all__ = ["file_relative_path"]


def file_relative_path(dunderfile: str, relative_path: str) -> str:
    """`relative_path` joined to the directory of `dunderfile` (pass `__file__`), so a
    definitions file finds its SQL, YAML or data files wherever it is run from."""
    return os.path.join(os.path.dirname(dunderfile), relative_path)
