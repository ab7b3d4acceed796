"""The one-op job the launch benchmark submits."""

from dagloom import Definitions, job, op


@op
def one() -> int:
    return 1


@job
def one_op():
    one()


defs = Definitions(jobs=[one_op])
