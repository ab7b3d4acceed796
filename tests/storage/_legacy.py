"""Schema-2 event rows (one row per event, before chunks) and the events they hold, for the
migration tests of each SQL backend."""

from __future__ import annotations

from typing import Any

import orjson

from dagloom.messages import (
    AssetKeyMessage,
    AssetMaterializationData,
    ErrorInfo,
    Event,
    EventType,
    LogLevel,
    MetadataValue,
    StepFailureData,
    StepOutputData,
)

LEGACY_INSERT = (
    "INSERT INTO events (id, run_id, event_type, step_key, timestamp, asset_key, partition, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def _body(fields: dict[str, Any] | None) -> bytes | None:
    return None if fields is None else orjson.dumps(fields)


# (id, run_id, event_type, step_key, timestamp, asset_key, partition, body), as schema 2 wrote
# them: r2's event sits between r1's, and id 7 was deleted.
LEGACY_ROWS: list[tuple[Any, ...]] = [
    (1, "r1", 4, "", 1.0, None, None, _body({"j": "job", "m": "started"})),
    (2, "r1", 10, "s", 2.0, None, None, None),
    (3, "r2", 10, "t", 2.5, None, None, _body({"j": "job"})),
    (4, "r1", 11, "s", 3.0, None, None, _body({"l": 20, "step_output": ["result", "k"]})),
    (
        5,
        "r1",
        22,
        "s",
        4.0,
        "a/b",
        "p1",
        _body(
            {
                "asset_materialization": [
                    ["a", "b"],
                    {"rows": ["int", 3], "up": ["asset", ["x"]]},
                    "p1",
                    "d",
                ]
            }
        ),
    ),
    (
        6,
        "r1",
        13,
        "s",
        5.0,
        None,
        None,
        _body({"step_failure": [{"c": "E", "m": "bad", "s": "tb", "x": None}, True, {}]}),
    ),
    (8, "r1", 5, "", 6.0, None, None, None),
]

LEGACY_EVENTS: dict[int, Event] = {
    1: Event(
        run_id="r1",
        event_type=EventType.RUN_START,
        timestamp=1.0,
        job_name="job",
        message="started",
    ),
    2: Event(run_id="r1", event_type=EventType.STEP_START, step_key="s", timestamp=2.0),
    3: Event(
        run_id="r2", event_type=EventType.STEP_START, step_key="t", timestamp=2.5, job_name="job"
    ),
    4: Event(
        run_id="r1",
        event_type=EventType.STEP_OUTPUT,
        step_key="s",
        timestamp=3.0,
        level=LogLevel.INFO,
        step_output=StepOutputData(output_name="result", mapping_key="k"),
    ),
    5: Event(
        run_id="r1",
        event_type=EventType.ASSET_MATERIALIZATION,
        step_key="s",
        timestamp=4.0,
        asset_materialization=AssetMaterializationData(
            asset_key=AssetKeyMessage(path=["a", "b"]),
            metadata={
                "rows": MetadataValue(int=3),
                "up": MetadataValue(asset=AssetKeyMessage(path=["x"])),
            },
            partition="p1",
            description="d",
        ),
    ),
    6: Event(
        run_id="r1",
        event_type=EventType.STEP_FAILURE,
        step_key="s",
        timestamp=5.0,
        step_failure=StepFailureData(
            error=ErrorInfo(cls_name="E", message="bad", stack="tb"), user_failure=True
        ),
    ),
    8: Event(run_id="r1", event_type=EventType.RUN_SUCCESS, timestamp=6.0),
}
