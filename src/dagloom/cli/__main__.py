"""`python -m dagloom.cli`: the `dagloom` command, for when its script is not on PATH."""

from __future__ import annotations

from dagloom.cli import main

main()
