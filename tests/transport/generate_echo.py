"""Rebuild echo_pb/ (the test-only Echo service) from proto/ with betterproto2.

Uses `generate` from proto/generate.py, so the compiler and options are those of the real
messages. Each generated module gets a `# ruff: noqa` line, since generated code is fenced
off from lint. `test_echo_pb_is_current` fails when the committed output differs from what
this produces.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_DIR = HERE / "proto"
OUT_DIR = HERE / "echo_pb"
HEADER = "# ruff: noqa\n"
_GENERATOR = HERE.parents[1] / "proto" / "generate.py"


def generate(out_dir: Path = OUT_DIR) -> None:
    """Write the generated package to `out_dir`, replacing what is there."""
    # proto/ is a folder of scripts, not a package: load the generator from its file.
    spec = importlib.util.spec_from_file_location("dagloom_proto_generate", _GENERATOR)
    assert spec is not None and spec.loader is not None
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.generate(PROTO_DIR, out_dir, header=HEADER)


if __name__ == "__main__":
    generate()
