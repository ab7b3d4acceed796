"""Shared test configuration."""

from __future__ import annotations

import os

import pytest

from dagloom.transport import STRICT_ENV


@pytest.fixture(autouse=True)
def _strict_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Round-trip every memory-transport message through bytes, so nothing that could not
    cross a process boundary passes a test; a run may opt out with DAGLOOM_STRICT_MESSAGES=0."""
    monkeypatch.setenv(STRICT_ENV, os.environ.get(STRICT_ENV) or "1")
