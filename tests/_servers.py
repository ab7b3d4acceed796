"""Test servers that may be missing on a developer's machine but never in CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def server_missing(what: str, install: str) -> NoReturn:
    """Skip the tests that need `what`, or fail them in CI (`CI=true`), where `install`
    must have put it in place."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing in CI: {install}")
    pytest.skip(f"{what} is not installed ({install})", allow_module_level=True)
