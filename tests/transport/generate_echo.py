"""Rebuild echo_pb/ (the test-only Echo service) from proto/ with betterproto2.

Same compiler and options as proto/generate.py. Each generated module gets a `# ruff: noqa`
line, since generated code is fenced off from lint. `test_echo_pb_is_current` fails when the
committed output differs from what this produces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO_DIR = HERE / "proto"
OUT_DIR = HERE / "echo_pb"
OPTIONS = "client_generation=async,server_generation=async"
HEADER = "# ruff: noqa\n"


def generate(out_dir: Path = OUT_DIR) -> None:
    """Write the generated package to `out_dir`, replacing what is there."""
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_betterproto2_out={out_dir}",
        f"--python_betterproto2_opt={OPTIONS}",
        *protos,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    for module in out_dir.rglob("*.py"):
        module.write_text(HEADER + module.read_text())


if __name__ == "__main__":
    generate()
