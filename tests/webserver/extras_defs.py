"""Definitions for the compute log, backfill and asset check GraphQL tests: a job whose op
writes to stdout and stderr, and a partitioned asset with a check."""

import sys

import dagloom as dg

letters = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.op
def talk() -> None:
    print("first line")
    print("second line")
    print("oops", file=sys.stderr)


@dg.job
def talking() -> None:
    talk()


@dg.asset(partitions_def=letters)
def lettered(context: dg.AssetExecutionContext) -> str:
    return context.partition_key


@dg.asset_check(asset=lettered)
def is_a_letter(lettered: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=lettered.isalpha(), metadata={"letter": lettered})


defs = dg.Definitions(assets=[lettered], asset_checks=[is_a_letter], jobs=[talking])
