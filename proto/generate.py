"""Rebuild src/dagloom/messages/_generated from proto/ with betterproto2 (run from anywhere).

The output is committed; CI runs this and fails if the tree differs afterwards. `generate`
also builds the test-only Echo service (tests/transport/generate_echo.py), with the same
compiler and options.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "src" / "dagloom" / "messages" / "_generated"
OPTIONS = "client_generation=async,server_generation=async"


class ProtocError(RuntimeError):
    """protoc failed; the message is what it printed."""

    def __init__(self, output: str, returncode: int) -> None:
        super().__init__(output)
        self.returncode = returncode


def generate(proto_dir: Path = PROTO_DIR, out_dir: Path = OUT_DIR, *, header: str = "") -> None:
    """Compile every .proto under `proto_dir` into `out_dir`, replacing what is there.

    `header` is put at the top of each generated module. Raises `ProtocError` if protoc fails.
    """
    protos = sorted(str(p.relative_to(proto_dir)) for p in proto_dir.rglob("*.proto"))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    # The plugin is an entry point installed beside this interpreter.
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"--python_betterproto2_out={out_dir}",
        f"--python_betterproto2_opt={OPTIONS}",
        *protos,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ProtocError(done.stdout + done.stderr, done.returncode)
    if header:
        for module in out_dir.rglob("*.py"):
            module.write_text(header + module.read_text())


def main() -> int:
    try:
        generate()
    except ProtocError as exc:
        sys.stderr.write(str(exc))
        return exc.returncode
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
