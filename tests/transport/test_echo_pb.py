"""The committed test-only Echo service matches its proto."""

from __future__ import annotations

from pathlib import Path

from . import generate_echo


def test_echo_pb_is_current(tmp_path: Path) -> None:
    fresh = tmp_path / "echo_pb"
    generate_echo.generate(fresh)
    committed = generate_echo.OUT_DIR
    names = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert names == sorted(
        p.relative_to(committed)
        for p in committed.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    for name in names:
        assert (fresh / name).read_bytes() == (committed / name).read_bytes(), name
