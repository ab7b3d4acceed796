"""`dagloom._logging.get_logger` logs through structlog, importing it on first use."""

from __future__ import annotations

import subprocess
import sys

import structlog.testing

from dagloom._logging import get_logger


def test_a_lazy_logger_logs_as_structlog_does_with_its_bound_context() -> None:
    log = get_logger("dagloom.test").bind(actor="a1").bind(location="loc")
    with structlog.testing.capture_logs() as captured:
        log.warning("something_happened", n=3)
        log.bind(extra=True).info("again")
    assert captured == [
        {
            "actor": "a1",
            "location": "loc",
            "n": 3,
            "event": "something_happened",
            "log_level": "warning",
        },
        {"actor": "a1", "location": "loc", "extra": True, "event": "again", "log_level": "info"},
    ]


def test_a_logger_that_never_logs_never_imports_structlog() -> None:
    script = (
        "import sys\n"
        "from dagloom._logging import get_logger\n"
        "log = get_logger('x').bind(a=1)\n"
        "print('structlog' in sys.modules)\n"
        "log.debug('now')\n"
        "print('structlog' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    lines = done.stdout.splitlines()  # structlog's default logger prints the event between
    assert (lines[0], lines[-1]) == ("False", "True")
