"""The compute-log package's names load on first use; an in-memory run of a job without
config imports neither storage nor the config type system."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagloom.compute_logs as compute_logs

SRC = Path(__file__).resolve().parents[2] / "src"


def test_every_public_name_resolves_to_its_module_attribute() -> None:
    for name in compute_logs.__all__:
        value = getattr(compute_logs, name)
        assert value is not None, name
    assert compute_logs.read_compute_log.__module__ == "dagloom.compute_logs.read"


def test_an_unknown_name_is_an_attribute_error_naming_it() -> None:
    try:
        compute_logs.NoSuchManager  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchManager" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_a_run_without_an_instance_imports_no_storage_managers_or_config_types() -> None:
    script = (
        "import sys\n"
        "from dagloom import job, op\n"
        "@op\n"
        "def hello() -> int:\n"
        "    return 1\n"
        "@job\n"
        "def one():\n"
        "    hello()\n"
        "assert one.execute_in_process().success\n"
        "print(sorted(m for m in ('dagloom.storage', 'dagloom.compute_logs.read',\n"
        "    'dagloom.compute_logs.local', 'dagloom.definitions.config_types')\n"
        "    if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
