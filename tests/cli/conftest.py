"""Fixtures for the command-line tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_import_state: None) -> Path:
    """A fresh $DAGLOOM_HOME per test, run from `tmp_path` with CI unset; the import state
    that loading code changes is undone."""
    path = tmp_path / "home"
    monkeypatch.setenv("DAGLOOM_HOME", str(path))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    return path
