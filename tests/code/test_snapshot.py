"""Snapshots: definitions, run requests and tick outcomes as wire messages, built purely."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import dagloom as dg
from dagloom.code import load_definitions
from dagloom.code.snapshot import (
    code_digest,
    job_snapshot,
    load_error_info,
    location_snapshot,
    run_request_message,
    schedule_tick_result,
    sensor_tick_result,
    tick_error,
)
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.schedule import ScheduleExecutionData
from dagloom.definitions.sensor import SensorExecutionData
from dagloom.errors import CodeLocationLoadError, DefinitionError, UserCodeError
from dagloom.messages.rpc import LocationSnapshot
from dagloom.transport import cross_wire

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


pytestmark = pytest.mark.usefixtures("restore_import_state")


@pytest.fixture
def numbers() -> LocationSnapshot:
    defs = load_definitions(python_file=EXAMPLES / "numbers.py")
    return location_snapshot(defs, location_name="numbers", loaded_at=123.0)


def test_the_numbers_snapshot_lists_its_jobs_with_the_implicit_asset_job_last(
    numbers: LocationSnapshot,
) -> None:
    assert numbers.location_name == "numbers"
    assert numbers.loaded_at == 123.0
    assert numbers.load_error is None
    assert [j.name for j in numbers.jobs] == [
        "process_numbers",
        "process_numbers_asset",
        "__ASSET_JOB",
    ]
    assert numbers.resource_keys == []


def test_a_job_snapshot_has_the_op_graph_with_each_input_source(
    numbers: LocationSnapshot,
) -> None:
    job = numbers.jobs[0]
    assert job.description == "Process numbers"
    assert job.tags == {"domain": "numbers"}
    assert job.executor == "in_process"
    assert job.asset_keys == []
    nodes = {n.name: n for n in job.nodes}
    assert list(nodes) == [
        "generate_numbers",
        "filter_even_numbers",
        "filter_odd_numbers",
        "sum_even_numbers",
        "sum_odd_numbers",
        "sum_two_sums",
    ]
    assert nodes["generate_numbers"].inputs == []
    assert nodes["generate_numbers"].outputs == ["result"]
    assert nodes["generate_numbers"].description == "Generate a list of numbers from 1 to 10"
    last = nodes["sum_two_sums"]
    assert last.op_name == "sum_two_sums"
    assert [(i.name, i.upstream_nodes, i.upstream_output) for i in last.inputs] == [
        ("first_number", ["sum_even_numbers"], "result"),
        ("second_number", ["sum_odd_numbers"], "result"),
    ]
    assert not last.is_async


def test_assets_carry_their_group_kinds_deps_op_and_jobs(numbers: LocationSnapshot) -> None:
    assets = {"/".join(a.key.path): a for a in numbers.assets}
    assert len(assets) == 6
    top = assets["summed_two_sums"]
    assert top.group_name == "numbers"
    assert top.kinds == ["python"]
    assert top.description == "Summed the two sums"
    assert [d.path for d in top.deps] == [["summed_even_numbers"], ["summed_odd_numbers"]]
    assert top.op_name == "summed_two_sums"
    assert top.job_names == ["process_numbers_asset", "__ASSET_JOB"]
    asset_job = numbers.jobs[1]
    assert sorted(tuple(k.path) for k in asset_job.asset_keys) == sorted((name,) for name in assets)


def test_schedules_and_sensors_are_listed(numbers: LocationSnapshot) -> None:
    assert [(s.name, s.cron_schedules, s.job_name) for s in numbers.schedules] == [
        ("process_numbers_schedule", ["* * * * *"], "process_numbers"),
        ("process_numbers_asset_schedule", ["* * * * *"], "process_numbers_asset"),
    ]
    assert not numbers.schedules[0].default_running
    (sensor,) = numbers.sensors
    assert (sensor.name, sensor.job_names, sensor.minimum_interval_seconds) == (
        "check_file_sensor",
        ["process_numbers"],
        5,
    )


def test_the_snapshot_is_wire_safe(numbers: LocationSnapshot) -> None:
    copy = cross_wire(numbers, LocationSnapshot)
    assert bytes(copy) == bytes(numbers)


def test_snapshot_ids_are_stable_across_loads_and_differ_between_jobs(
    numbers: LocationSnapshot,
) -> None:
    again = location_snapshot(
        load_definitions(python_file=EXAMPLES / "numbers.py"), location_name="x", loaded_at=0.0
    )
    assert [j.snapshot_id for j in again.jobs] == [j.snapshot_id for j in numbers.jobs]
    assert len({j.snapshot_id for j in numbers.jobs}) == 3
    assert all(len(j.snapshot_id) == 64 for j in numbers.jobs)


@dg.op
def one() -> int:
    return 1


@dg.op
def two() -> int:
    return 2


@dg.op
def total(values: list[int]) -> int:
    return sum(values)


def test_a_change_to_the_graph_or_tags_changes_the_snapshot_id() -> None:
    @dg.job(name="j")
    def first() -> None:
        total([one(), two()])

    @dg.job(name="j")
    def second() -> None:
        total([two(), one()])

    @dg.job(name="j", tags={"b": "2", "a": "1"})
    def tagged() -> None:
        total([one(), two()])

    @dg.job(name="j", tags={"a": "1", "b": "2"})
    def same_tags_other_order() -> None:
        total([one(), two()])

    ids = [job_snapshot(j).snapshot_id for j in (first, second, tagged)]
    assert len(set(ids)) == 3
    assert job_snapshot(same_tags_other_order).snapshot_id == ids[2]


def test_a_fan_in_input_lists_every_source_node() -> None:
    @dg.job
    def fan_in() -> None:
        total([one(), two()])

    nodes = {n.name: n for n in job_snapshot(fan_in).nodes}
    (values,) = nodes["total"].inputs
    assert values.upstream_nodes == ["one", "two"]
    assert values.upstream_output == "result"


def test_an_ordering_only_asset_dep_shows_as_an_after_node() -> None:
    @dg.asset
    def raw() -> None:
        return None

    @dg.asset(deps=[raw])
    def cleaned() -> int:
        return 1

    snapshot = location_snapshot(
        dg.Definitions(assets=[raw, cleaned]), location_name="x", loaded_at=0.0
    )
    (job,) = snapshot.jobs
    nodes = {n.name: n for n in job.nodes}
    assert nodes["cleaned"].after_nodes == ["raw"]
    assert nodes["cleaned"].inputs == []
    assets = {a.key.path[0]: a for a in snapshot.assets}
    assert [d.path for d in assets["cleaned"].deps] == [["raw"]]


def test_an_external_asset_spec_is_listed_without_an_op() -> None:
    spec = dg.AssetSpec(key=AssetKey("upstream"), group_name="ext", kinds=frozenset({"s3"}))
    snapshot = location_snapshot(dg.Definitions(assets=[spec]), location_name="x", loaded_at=0.0)
    (asset,) = snapshot.assets
    assert (asset.key.path, asset.group_name, asset.kinds, asset.op_name) == (
        ["upstream"],
        "ext",
        ["s3"],
        "",
    )


def test_resource_keys_are_sorted() -> None:
    defs = dg.Definitions(resources={"warehouse": object(), "api": object()})
    assert location_snapshot(defs, location_name="x", loaded_at=0.0).resource_keys == [
        "api",
        "warehouse",
    ]


# -- run requests and ticks -----------------------------------------------------------------


def test_a_run_request_travels_with_json_config_tags_and_assets() -> None:
    request = dg.RunRequest(
        run_key="k1",
        run_config={"ops": {"b": {"config": {"x": 1}}, "a": {}}},
        tags={"team": "data"},
        job_name="j",
        asset_selection=[AssetKey(["warehouse", "orders"]), "events"],
    )
    message = run_request_message(request)
    assert message.run_key == "k1"
    assert message.job_name == "j"
    assert message.run_config_json == '{"ops": {"a": {}, "b": {"config": {"x": 1}}}}'
    assert message.tags == {"team": "data"}
    assert [k.path for k in message.asset_selection] == [["warehouse", "orders"], ["events"]]


def test_a_request_without_assets_gets_the_sensor_selection_sorted() -> None:
    message = run_request_message(
        dg.RunRequest(), default_asset_selection={AssetKey("b"), AssetKey("a")}
    )
    assert (message.run_key, message.job_name, message.run_config_json) == ("", "", "{}")
    assert [k.path for k in message.asset_selection] == [["a"], ["b"]]


def test_a_request_of_checks_alone_carries_them_and_no_assets() -> None:
    from dagloom.daemon._submit import submission

    check = dg.AssetCheckKey(AssetKey("orders"), "not_empty")
    message = run_request_message(
        dg.RunRequest(asset_selection=[], asset_check_keys=[check]),
        default_asset_selection={AssetKey("orders")},
    )
    assert list(message.asset_selection) == []
    [selected] = message.asset_check_selection
    assert (selected.asset_key.path, selected.name) == (["orders"], "not_empty")
    submitted = submission("loc", message, default_job="__ASSET_JOB", run_id="r", tags={})
    assert list(submitted.asset_check_selection) == [selected]
    with pytest.raises(DefinitionError, match="must be AssetCheckKeys"):
        dg.RunRequest(asset_check_keys=["orders:not_empty"])


def test_run_config_that_is_not_json_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="not JSON-serializable"):
        run_request_message(dg.RunRequest(run_key="k", run_config={"ops": {1, 2}}))


def test_a_schedule_tick_carries_its_requests_or_skip_message() -> None:
    skipped = schedule_tick_result(ScheduleExecutionData(run_requests=[], skip_message="no"))
    assert (skipped.run_requests, skipped.skip_message, skipped.cursor_updated) == ([], "no", False)
    ran = schedule_tick_result(ScheduleExecutionData(run_requests=[dg.RunRequest(run_key="a")]))
    assert [r.run_key for r in ran.run_requests] == ["a"]
    assert ran.skip_message == ""


@pytest.mark.parametrize(
    ("before", "after", "cursor", "updated"),
    [
        (None, None, "", False),
        ("3", "3", "", False),
        ("3", "4", "4", True),
        (None, "1", "1", True),
        ("3", None, "", True),
    ],
)
def test_a_sensor_tick_reports_the_cursor_only_when_it_changed(
    before: str | None, after: str | None, cursor: str, updated: bool
) -> None:
    data = SensorExecutionData(run_requests=[], skip_message="nothing", cursor=after)
    result = sensor_tick_result(data, previous_cursor=before)
    assert (result.cursor, result.cursor_updated, result.skip_message) == (
        cursor,
        updated,
        "nothing",
    )


def test_a_failed_tick_carries_the_error_and_its_cause() -> None:
    try:
        try:
            raise KeyError("db")
        except KeyError as exc:
            raise UserCodeError("error in sensor 's'") from exc
    except UserCodeError as exc:
        result = tick_error(exc)
    assert result.error is not None
    assert result.error.cls_name == "UserCodeError"
    assert result.error.cause is not None and result.error.cause.cls_name == "KeyError"
    assert "raise KeyError" in result.error.cause.stack


def test_a_load_error_keeps_the_users_traceback() -> None:
    error = CodeLocationLoadError("could not load x", location="x", traceback_text="TB here")
    info = load_error_info(error)
    assert (info.cls_name, info.message, info.stack) == (
        "CodeLocationLoadError",
        "could not load x",
        "TB here",
    )


def test_an_ops_body_is_part_of_its_jobs_snapshot_id() -> None:
    @dg.op(name="answer")
    def one() -> int:
        return 1

    @dg.op(name="answer")
    def two() -> int:
        return 2

    @dg.job(name="versioned")
    def first() -> None:
        one()

    @dg.job(name="versioned")
    def second() -> None:
        two()

    assert job_snapshot(first).snapshot_id == job_snapshot(first).snapshot_id
    assert job_snapshot(first).snapshot_id != job_snapshot(second).snapshot_id
    assert code_digest(one.compute_fn) != code_digest(two.compute_fn)
    assert code_digest(len) == ""


def test_a_code_digest_is_the_same_in_every_process() -> None:
    """Set constants are ordered by string hashing, which each process seeds differently."""
    program = (
        "from dagloom.code.snapshot import code_digest\n"
        "def member(x):\n"
        "    return x in {'alpha', 'beta', 'gamma', 'delta', 'epsilon'}\n"
        "print(code_digest(member))\n"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", program],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(digests) == 1
