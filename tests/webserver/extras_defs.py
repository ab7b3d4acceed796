"""Definitions for the compute log, backfill and asset check GraphQL tests: a job whose op
writes to stdout and stderr, one whose op is retried once, a partitioned asset with a
check, one backfilled in a single run, and a job with a partitioned config."""

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


@dg.asset(partitions_def=letters, backfill_policy=dg.BackfillPolicy.single_run())
def lettered_batch(context: dg.AssetExecutionContext) -> dict[str, str]:
    return {key: key.upper() for key in context.partition_keys}


@dg.op(config_schema={"letter": str})
def say_letter(context: dg.OpExecutionContext) -> str:
    return str(context.op_config["letter"])


@dg.static_partitioned_config(partition_keys=["a", "b", "c"])
def letter_config(key: str) -> dict[str, object]:
    return {"ops": {"say_letter": {"config": {"letter": key}}}}


@dg.job(config=letter_config)
def per_letter() -> None:
    say_letter()


defs = dg.Definitions(
    assets=[lettered, lettered_batch],
    asset_checks=[is_a_letter],
    jobs=[talking, retrying, per_letter],
)
