"""Run config from YAML files and strings, as Dagster's `config_from_files` and
`config_from_yaml_strings` build it: each document a mapping, later ones laid over earlier
ones key by key."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagloom.errors import ConfigError
from dagloom.execution.run_config import deep_merge
from dagloom.instance.yaml_bounds import load_yaml, read_yaml_path


def _merged(documents: Sequence[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for source, data in documents:
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(
                f"run config must be a mapping, got {type(data).__name__}", source=source
            )
        out = deep_merge(out, data)
    return out


def config_from_files(config_files: Sequence[str | Path]) -> dict[str, Any]:
    """The run config of YAML files (paths or glob patterns), merged in order. A pattern
    that matches no file, a file that cannot be read and a document that is not a mapping
    raise ConfigError naming it."""
    if isinstance(config_files, str | Path):
        raise ConfigError("config_from_files takes a list of paths, not one path")
    documents: list[tuple[str, Any]] = []
    for pattern in config_files:
        matches = sorted(glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else []
        paths = [Path(m) for m in matches] if matches else [Path(pattern)]
        if glob.has_magic(str(pattern)) and not matches:
            raise ConfigError("no file matches this pattern", source=str(pattern))
        for path in paths:
            documents.append((str(path), read_yaml_path(path)))
    return _merged(documents)


def config_from_yaml_strings(yaml_strings: Sequence[str]) -> dict[str, Any]:
    """The run config of YAML documents, merged in order; ConfigError names the document
    (by its index) that is not valid YAML or not a mapping."""
    if isinstance(yaml_strings, str):
        raise ConfigError("config_from_yaml_strings takes a list of YAML strings, not one")
    documents = []
    for index, text in enumerate(yaml_strings):
        source = f"yaml_strings[{index}]"
        documents.append((source, load_yaml(text, source=source)))
    return _merged(documents)


__all__ = ["config_from_files", "config_from_yaml_strings"]
