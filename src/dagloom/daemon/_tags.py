"""The run tags the daemon reads and writes, and the ids it derives from them.

Tags dagloom writes carry the `dagloom/` prefix; tags users set may use Dagster's `dagster/`
name instead (a Dagster definitions file keeps working), and where both are given the
`dagloom/` one wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

RUN_KEY_TAG = "dagloom/run_key"
"""The `run_key` of the RunRequest a run was created for (schedules and sensors)."""

PRIORITY_TAGS = ("dagloom/priority", "dagster/priority")
"""An integer: queued runs with a higher priority are admitted first (default 0)."""

MAX_RUNTIME_TAGS = ("dagloom/max_runtime", "dagster/max_runtime", "dagster/max_runtime_seconds")
"""Seconds a run may spend STARTED before run monitoring ends it."""

MAX_RETRIES_TAGS = ("dagloom/max_retries", "dagster/max_retries")
"""An integer overriding `run_retries.max_retries` for one run."""

RETRY_STRATEGY_TAGS = ("dagloom/retry_strategy", "dagster/retry_strategy")
"""`FROM_FAILURE` (re-execute the steps that did not succeed) or `ALL_STEPS`."""

RETRY_ON_ASSET_OR_OP_FAILURE_TAGS = (
    "dagloom/retry_on_asset_or_op_failure",
    "dagster/retry_on_asset_or_op_failure",
)
"""`true` / `false`, overriding `run_retries.retry_on_asset_or_op_failure` for one run."""

RETRY_NUMBER_TAG = "dagloom/retry_number"
"""On an automatic retry: how many runs its group held before it (1 for the first retry)."""

WILL_RETRY_TAG = "dagloom/will_retry"
"""On a failed run: the retry decision, `true` or `false`, once it is taken."""

AUTO_RETRY_RUN_ID_TAG = "dagloom/auto_retry_run_id"
"""On a failed run: the id of the run that retries it."""

# A fixed namespace, so every daemon derives the same id for the same work.
_RUN_ID_NAMESPACE = uuid.UUID("5d0f3c86-6a55-4c43-9a49-2b8e1f0f8a61")


def tag_value(tags: Mapping[str, str], names: Sequence[str]) -> tuple[str, str] | None:
    """The first of `names` present in `tags`, with its value; None when none is."""
    for name in names:
        value = tags.get(name)
        if value is not None:
            return name, value
    return None


def derived_run_id(*parts: str) -> str:
    """A run id that is a pure function of `parts` (a UUID, version 5).

    Two daemons, or one daemon before and after a crash, deciding on the same piece of work
    derive the same id, so storage refuses the second run with that id and the work runs
    once. Parts are joined unambiguously (each is length-prefixed).
    """
    name = "".join(f"{len(part)}:{part}" for part in parts)
    return str(uuid.uuid5(_RUN_ID_NAMESPACE, name))
