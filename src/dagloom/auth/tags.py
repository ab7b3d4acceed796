"""Run tags under `dagloom/`: the ones dagloom alone writes, and the ones users may set."""

from __future__ import annotations

from collections.abc import Iterable

USER_TAG = "dagloom/user"
"""The name of the token that launched a run."""

RESERVED_PREFIX = "dagloom/"

CLIENT_SETTABLE_TAGS = frozenset(
    {
        "dagloom/priority",
        "dagloom/max_runtime",
        "dagloom/max_retries",
        "dagloom/retry_strategy",
        "dagloom/retry_on_asset_or_op_failure",
    }
)
"""`dagloom/` tags that are run settings a client chooses (as Dagster's `dagster/priority`
and friends); every other `dagloom/` tag records what dagloom itself did or who asked."""


def reserved_tags(keys: Iterable[str]) -> list[str]:
    """The keys among `keys` that a client may not set, sorted."""
    return sorted(
        k for k in keys if k.startswith(RESERVED_PREFIX) and k not in CLIENT_SETTABLE_TAGS
    )
