"""The jobs the responsiveness benchmark launches on `dagloom dev`: one whose ops hold their
thread (one sleeping, one spinning on the CPU), and a one-op job for the idle baseline."""

import time

from dagloom import Config, Definitions, job, op


class Hold(Config):
    seconds: float = 5.0


@op
def sleep_op(config: Hold) -> None:
    time.sleep(config.seconds)  # blocks its thread without using the CPU


@op
def busy_op(config: Hold) -> int:
    # Spins on the CPU, holding the GIL but for the interpreter's forced switches.
    end = time.perf_counter() + config.seconds
    spins = 0
    while time.perf_counter() < end:
        spins += 1
    return spins


@job
def hold_the_thread():
    sleep_op()
    busy_op()


@op
def one() -> int:
    return 1


@job
def one_op():
    one()


defs = Definitions(jobs=[hold_the_thread, one_op])
