"""Fixtures for the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagloom.cli._app import import_all_commands

# Commands load on first use; loaded here, before any test records `sys.modules`, so that
# `restore_import_state` never unloads a command module a later test runs again.
import_all_commands()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_import_state: None) -> Path:
    """A fresh $DAGLOOM_HOME per test, run from `tmp_path` with CI unset; the import state
    that loading code changes is undone."""
    path = tmp_path / "home"
    monkeypatch.setenv("DAGLOOM_HOME", str(path))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    return path
