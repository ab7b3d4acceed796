"""Shared test configuration."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator

import pytest
from hypothesis import settings

# `import dagloom` loads its names on first use; the API modules load here, before any test
# records `sys.modules` (`restore_import_state`), so no test unloads modules others share.
import dagloom.definitions
import dagloom.execution.context
import dagloom.execution.result
import dagloom.messages  # noqa: F401
from dagloom.transport import STRICT_ENV

# Property tests assert behaviour, not speed: no per-example deadline, which a loaded machine
# would trip on a garbage collection or a slow first import.
settings.register_profile("dagloom", deadline=None)
settings.load_profile("dagloom")


@pytest.fixture(autouse=True)
def _strict_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Round-trip every memory-transport message through bytes, so nothing that could not
    cross a process boundary passes a test; a run may opt out with DAGLOOM_STRICT_MESSAGES=0."""
    monkeypatch.setenv(STRICT_ENV, os.environ.get(STRICT_ENV) or "1")


@pytest.fixture
def restore_import_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Undo what loading code does to sys.path and sys.modules, so tests do not leak."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        del sys.modules[name]


@pytest.fixture(scope="module")
def close_warm_pools() -> Iterator[None]:
    """Close the warm step-process pools once the module's tests are done, so the next
    module's runs start processes that import its own definitions."""
    yield None
    from dagloom.execution.multiprocess import close_pools

    close_pools()
