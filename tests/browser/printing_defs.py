"""A code location whose job's op writes a line to stdout and one to stderr."""

import sys

from dagloom import Definitions, job, op


@op
def say_hello() -> None:
    print("hello from say_hello", flush=True)
    print("a warning from say_hello", file=sys.stderr, flush=True)


@job(description="Prints a line to each stream.")
def printing_job():
    say_hello()


defs = Definitions(jobs=[printing_job])
