"""The pure translations between dagloom's records and Dagster's GraphQL shapes."""

from __future__ import annotations

import pytest

from dagloom.messages import Event, EventRecord, EventType, LogLevel, Run, RunStatus
from dagloom.messages.rpc import ConfigProblem
from dagloom.webserver.schema.errors import (
    EvaluationErrorReason,
    EvaluationStackListItemEntry,
    EvaluationStackPathEntry,
    FieldNotDefinedConfigError,
    MissingFieldConfigError,
    RuntimeMismatchConfigError,
    config_error,
)
from dagloom.webserver.schema.inputs import run_config_json
from dagloom.webserver.schema.runs import RunStatus as GraphQLRunStatus
from dagloom.webserver.schema.runs import event_json, parse_event_cursor
from dagloom.webserver.schema.subscriptions import _changes
from dagloom.webserver.schema.workspace import is_repository_name


def test_config_problems_become_the_dagster_error_their_text_describes() -> None:
    missing = config_error(ConfigProblem(key_path="ops.a.config.limit", message="Field required"))
    assert isinstance(missing, MissingFieldConfigError)
    assert missing.reason == EvaluationErrorReason.MISSING_REQUIRED_FIELD
    assert missing.path == ["ops", "a", "config", "limit"]

    extra = config_error(ConfigProblem(key_path="ops.nope", message="unknown op"))
    assert isinstance(extra, FieldNotDefinedConfigError) and extra.fieldName == "nope"

    wrong = config_error(
        ConfigProblem(key_path="ops.a.config.values[2]", message="Input should be an integer")
    )
    assert isinstance(wrong, RuntimeMismatchConfigError)
    assert wrong.path == ["ops", "a", "config", "values", "2"]
    assert wrong.stack.entries[-1] == EvaluationStackListItemEntry(listIndex=2)
    assert wrong.stack.entries[0] == EvaluationStackPathEntry(fieldName="ops")
    assert wrong.message.startswith("ops.a.config.values[2]: ")


@pytest.mark.parametrize(("cursor", "after"), [(None, 0), ("", 0), ("17", 17)])
def test_event_cursors_are_storage_ids(cursor: str | None, after: int) -> None:
    assert parse_event_cursor(cursor) == after


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5"])
def test_other_event_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid event cursor"):
        parse_event_cursor(cursor)


def test_event_json_names_the_dagster_event_type() -> None:
    event = Event(
        run_id="r",
        event_type=EventType.STEP_SUCCESS,
        timestamp=1.5,
        step_key="a",
        message="done",
        level=LogLevel.UNSPECIFIED,
    )
    assert event_json(EventRecord(storage_id=3, event=event)) == {
        "__typename": "ExecutionStepSuccessEvent",
        "storageId": 3,
        "runId": "r",
        "timestamp": 1.5,
        "eventType": "STEP_SUCCESS",
        "level": "INFO",
        "stepKey": "a",
        "message": "done",
    }


def test_every_run_status_has_dagsters_string() -> None:
    for status in RunStatus:
        assert GraphQLRunStatus.of(status).value in {s.value for s in GraphQLRunStatus}
    assert GraphQLRunStatus.of(RunStatus.STARTED).value == "STARTED"


def test_run_config_accepts_a_mapping_or_yaml_text() -> None:
    assert (
        run_config_json({"ops": {"a": {"config": {"x": 1}}}}) == '{"ops":{"a":{"config":{"x":1}}}}'
    )
    assert run_config_json("ops:\n  a: {}\n") == '{"ops":{"a":{}}}'
    assert run_config_json(None) == ""
    with pytest.raises(ValueError, match="mapping"):
        run_config_json("- 1\n")


def test_repository_names_mean_the_location_repository() -> None:
    assert is_repository_name("__repository__", "numbers")
    assert is_repository_name("numbers", "numbers")
    assert not is_repository_name("other", "numbers")


def test_status_changes_report_each_change_once() -> None:
    seen: dict[str, GraphQLRunStatus] = {}
    run = Run(run_id="a", job_name="j", status=RunStatus.STARTED, create_time=1.0)
    assert [c.status for c in _changes(seen, [run])] == [GraphQLRunStatus.STARTED]
    assert _changes(seen, [run]) == []
    run.status = RunStatus.SUCCESS
    assert [c.status for c in _changes(seen, [run])] == [GraphQLRunStatus.SUCCESS]
