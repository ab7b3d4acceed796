"""Two partitioned assets, the second reading the first partition by partition: what the
per-partition staleness GraphQL test serves."""

import dagloom as dg

letters = dg.StaticPartitionsDefinition(["a", "b", "c"])


@dg.asset(partitions_def=letters)
def letters_up(context: dg.AssetExecutionContext) -> None:
    """Made anew by each run (no code version: each run gives a new data version)."""


@dg.asset(partitions_def=letters, deps=[letters_up], code_version="1")
def letters_down() -> None:
    """Reads the same partition of letters_up."""


defs = dg.Definitions(assets=[letters_up, letters_down])
