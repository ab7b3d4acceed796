"""`python -m benchmarks._profiled OUT ARGS...`: `dagloom ARGS...` under cProfile, writing the
profile to OUT when the command ends (a node ends on SIGTERM, so the profile is written).

The profile times each function by the CPU time of the thread it ran on (`time.thread_time`),
not by the wall clock: on a machine shared with other work, or with run threads holding the
GIL meanwhile, the wall clock would charge their time to whatever the loop's thread was in.
cProfile sees the thread that enabled it only: a node's event loop, not its run threads.
Read it with `python -m pstats OUT`.
"""

from __future__ import annotations

import cProfile
import runpy
import sys
import time


def main() -> None:
    out, *args = sys.argv[1:]
    sys.argv = ["dagloom", *args]
    profile = cProfile.Profile(time.thread_time)
    profile.enable()
    try:
        runpy.run_module("dagloom.cli", run_name="__main__")
    except SystemExit:
        pass
    finally:
        profile.disable()
        profile.dump_stats(out)


if __name__ == "__main__":
    main()
