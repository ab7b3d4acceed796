"""Definitions for the compute log, backfill and asset check GraphQL tests: a job whose op
writes to stdout and stderr, one whose op is retried once, and a partitioned asset with a
check."""

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


@dg.op(retry_policy=dg.RetryPolicy(max_retries=1))
def flaky(context: dg.OpExecutionContext) -> None:
    print(f"attempt {context.retry_number}")
    if context.retry_number == 0:
        raise RuntimeError("first attempt fails")


@dg.job
def retrying() -> None:
    flaky()


@dg.asset(partitions_def=letters)
def lettered(context: dg.AssetExecutionContext) -> str:
    return context.partition_key


@dg.asset_check(asset=lettered)
def is_a_letter(lettered: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=lettered.isalpha(), metadata={"letter": lettered})


defs = dg.Definitions(assets=[lettered], asset_checks=[is_a_letter], jobs=[talking, retrying])
