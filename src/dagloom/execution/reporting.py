"""Asset events reported from outside any run: what the CLI, the REST endpoints and the
GraphQL mutation accept, checked, and turned into the events storage records.

A reported event belongs to no run: it is stored under the empty run id (Dagster's
RUNLESS_RUN_ID), and indexed by its asset key as a run's events are.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from time import time
from typing import Any

import orjson

from dagloom.definitions.asset_checks import AssetCheckEvaluation, AssetCheckSeverity
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.data_version import observation_tags
from dagloom.definitions.outputs import AssetMaterialization, AssetObservation
from dagloom.errors import AssetReportError, DagloomError
from dagloom.execution.events import check_evaluation_row, reported_asset_row
from dagloom.messages import Event
from dagloom.messages.rows import event_of

RUNLESS_RUN_ID = ""
"""The run id of events reported outside any run."""
RUNLESS_JOB_NAME = "__RUNLESS__"
"""The job name those events carry."""


class ReportKind(enum.StrEnum):
    """What a report records."""

    MATERIALIZATION = "materialization"
    OBSERVATION = "observation"
    CHECK = "check"


class _CheckSpecLike:
    """What `check_evaluation_row` reads of a check spec, for a reported check."""

    __slots__ = ("asset_key", "blocking", "key", "name")

    def __init__(self, asset_key: AssetKey, name: str) -> None:
        self.asset_key = asset_key
        self.name = name
        self.blocking = False
        self.key = AssetKey([*asset_key.path, name])


def runless_event(event: Any) -> Event:
    """The stored form of an AssetMaterialization, AssetObservation or AssetCheckEvaluation
    reported outside any run. Raises AssetReportError for anything else."""
    if isinstance(event, AssetMaterialization | AssetObservation):
        row = reported_asset_row("", RUNLESS_JOB_NAME, event)
    elif isinstance(event, AssetCheckEvaluation):
        row = check_evaluation_row(
            "",
            RUNLESS_JOB_NAME,
            _CheckSpecLike(event.asset_key, event.check_name),
            event,
            event.partition,
        )
    else:
        raise AssetReportError(
            "a reported asset event is an AssetMaterialization, an AssetObservation or an "
            f"AssetCheckEvaluation, got {type(event).__name__}"
        )
    stamped = (*row[:2], time(), *row[3:])
    return event_of(RUNLESS_RUN_ID, stamped)


def parse_asset_key(text: str) -> AssetKey:
    """An asset key as a user writes it in a path or on the command line: `a/b` (or
    `a.b`, or a JSON list `["a", "b"]`). Raises AssetReportError for an empty key."""
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            parts = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise AssetReportError(f"asset key {text!r} is not a JSON list of strings") from exc
        if not isinstance(parts, list) or not all(isinstance(p, str) and p for p in parts):
            raise AssetReportError(f"asset key {text!r} is not a JSON list of strings")
    else:
        parts = [p for p in stripped.split("/") if p]
    if not parts:
        raise AssetReportError("the asset key is empty")
    try:
        return AssetKey(parts)
    except DagloomError as exc:
        raise AssetReportError(f"asset key {text!r}: {exc}") from exc


def _bad(key: AssetKey, message: str) -> AssetReportError:
    """The error of a report about `key` at fault for `message` (naming the field)."""
    return AssetReportError(
        f"report for asset {key.to_user_string()!r}: {message}", asset_key=key.to_user_string()
    )


def parse_metadata(key: AssetKey, raw: Any) -> dict[str, Any]:
    """Report metadata given as a JSON object (text) or a mapping. Raises AssetReportError naming
    the asset otherwise."""
    if raw is None or raw == "":
        return {}
    value = raw
    if isinstance(raw, str | bytes):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _bad(key, f"metadata is not valid JSON ({exc})") from exc
    if not isinstance(value, Mapping):
        raise _bad(key, f"metadata must be a JSON object, got {type(value).__name__}")
    return {str(k): v for k, v in value.items()}


def _text(key: AssetKey, fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str | int | float):
        raise _bad(key, f"{name} must be a string, got {type(value).__name__}")
    return str(value)


def _flag(key: AssetKey, fields: Mapping[str, Any], name: str) -> bool:
    value = fields.get(name)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise _bad(key, f"{name} must be true or false, got {value!r}")


def build_report(kind: ReportKind, key: AssetKey, fields: Mapping[str, Any]) -> Any:
    """The event a report of `kind` about `key` stands for. `fields` are the report's
    parameters as Dagster's REST endpoints take them: `metadata` (a JSON object),
    `description`, `partition`, `data_version`, `tags` (an object); for a check also
    `check_name`, `passed` and `severity` (ERROR or WARN). Raises AssetReportError naming the
    asset and the field at fault."""
    known = {"metadata", "description", "partition", "data_version", "tags"}
    if kind is ReportKind.CHECK:
        known |= {"check_name", "passed", "severity"}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise _bad(key, f"unknown field(s) {unknown}; accepted: {sorted(known)}")
    metadata = parse_metadata(key, fields.get("metadata"))
    description = _text(key, fields, "description")
    partition = _text(key, fields, "partition")
    raw_tags = fields.get("tags")
    if raw_tags is not None and not isinstance(raw_tags, Mapping):
        raise _bad(key, "tags must be an object")
    tags = observation_tags(_text(key, fields, "data_version"), raw_tags)
    if kind is ReportKind.MATERIALIZATION:
        return AssetMaterialization(key, description, metadata, partition, tags or None)
    if kind is ReportKind.OBSERVATION:
        return AssetObservation(key, description, metadata, partition, tags or None)
    check_name = _text(key, fields, "check_name")
    if check_name is None:
        raise _bad(key, "check_name is missing")
    severity_text = (_text(key, fields, "severity") or "ERROR").upper()
    try:
        severity = AssetCheckSeverity(severity_text)
    except ValueError:
        raise _bad(key, f"severity must be ERROR or WARN, got {severity_text!r}") from None
    return AssetCheckEvaluation(
        asset_key=key,
        check_name=check_name,
        passed=_flag(key, fields, "passed"),
        severity=severity,
        metadata=metadata,
        description=description,
        partition=partition,
    )


__all__ = [
    "RUNLESS_JOB_NAME",
    "RUNLESS_RUN_ID",
    "ReportKind",
    "build_report",
    "parse_asset_key",
    "parse_metadata",
    "runless_event",
]
