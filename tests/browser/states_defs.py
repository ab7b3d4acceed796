"""A code location whose assets reach every status mark: `source` and `derived` below it
(materialized, then stale), `broken` (its op raises: failed) and `endless` (runs until
canceled: in progress)."""

import anyio

from dagloom import Definitions, asset


@asset(group_name="states")
def source() -> int:
    return 1


@asset(group_name="states")
def derived(source: int) -> int:
    return source + 1


@asset(group_name="states")
def broken(source: int) -> int:
    raise ValueError(f"cannot use {source}")


@asset(group_name="states")
async def endless() -> None:
    # Waits until the run is canceled; the test cancels it once it is marked in progress.
    await anyio.sleep_forever()


defs = Definitions(assets=[source, derived, broken, endless])
