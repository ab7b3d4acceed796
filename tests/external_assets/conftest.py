"""Fixtures for the external asset tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagloom.cli._app import import_all_commands
from tests.webserver.test_auth import secured  # noqa: F401 - a node with auth, shared

# Commands load on first use; loaded here, before any test records `sys.modules`.
import_all_commands()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_import_state: None) -> Path:
    """A fresh $DAGLOOM_HOME per test, run from `tmp_path`, with the example's data there."""
    path = tmp_path / "home"
    monkeypatch.setenv("DAGLOOM_HOME", str(path))
    monkeypatch.setenv("EXTERNAL_ASSETS_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.chdir(tmp_path)
    return path
