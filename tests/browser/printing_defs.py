"""A code location with a job whose op writes a line to stdout and one to stderr, and one
whose op prints a line and then waits until the run is canceled."""

import sys

import anyio

from dagloom import Definitions, job, op


@op
def say_hello() -> None:
    print("hello from say_hello", flush=True)
    print("a warning from say_hello", file=sys.stderr, flush=True)


@job(description="Prints a line to each stream.")
def printing_job():
    say_hello()


@op
async def print_then_wait() -> None:
    print("working on it", flush=True)
    await anyio.sleep_forever()


@job(description="Prints a line, then runs until canceled.")
def chatty_job():
    print_then_wait()


defs = Definitions(jobs=[printing_job, chatty_job])
