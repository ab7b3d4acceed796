"""The code location actor over the strict memory transport: snapshots, ticks, validation,
import errors and reloads. (Over gRPC with a child-process server: tests/cli/test_code_server.)"""

from __future__ import annotations

import json
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
import structlog

import dagloom as dg
from dagloom.actors import Supervisor
from dagloom.actors.code_location import (
    CodeLocationReply,
    CodeLocationRequest,
    CodeLocationServer,
    evaluate_schedule,
    resolve_job,
    validate_run,
)
from dagloom.code import load_definitions
from dagloom.definitions.asset_checks import AssetCheckKey
from dagloom.definitions.asset_key import AssetKey
from dagloom.errors import CodeLocationLoadError, DagloomInvalidSelectionError, DefinitionError
from dagloom.execution.origin import CodeOrigin
from dagloom.messages import AssetKeyMessage
from dagloom.messages.rpc import (
    EvaluateScheduleRequest,
    EvaluateSensorRequest,
    GetSnapshotRequest,
    LocationSnapshot,
    ReloadRequest,
    TickResult,
    ValidateRunReply,
    ValidateRunRequest,
)
from dagloom.transport import ActorRef, MemoryTransport

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NUMBERS = str(EXAMPLES / "numbers.py")

Ref = ActorRef[CodeLocationRequest, CodeLocationReply]


pytestmark = pytest.mark.usefixtures("restore_import_state")


@pytest.fixture(autouse=True)
def _default_logging() -> None:
    """Log through structlog's defaults, whatever an earlier test configured (an in-process
    CLI run may have pointed it at a stream that is closed now)."""
    structlog.reset_defaults()


@asynccontextmanager
async def serving(*actors: CodeLocationServer) -> AsyncIterator[list[Ref]]:
    """Run `actors` under one supervisor; yield a strict memory ref to each."""
    supervisor = Supervisor()
    for actor in actors:
        supervisor.add(actor)
    transport = MemoryTransport(strict=True)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        yield [transport.ref(actor) for actor in actors]
        tg.cancel_scope.cancel()


async def snapshot_of(ref: Ref) -> LocationSnapshot:
    reply = await ref.ask(GetSnapshotRequest())
    assert isinstance(reply, LocationSnapshot)
    return reply


async def tick(ref: Ref, request: EvaluateScheduleRequest | EvaluateSensorRequest) -> TickResult:
    reply = await ref.ask(request)
    assert isinstance(reply, TickResult)
    return reply


async def reload(ref: Ref) -> LocationSnapshot:
    reply = await ref.ask(ReloadRequest())
    assert isinstance(reply, LocationSnapshot)
    return reply


async def validate(ref: Ref, request: ValidateRunRequest) -> ValidateRunReply:
    reply = await ref.ask(request)
    assert isinstance(reply, ValidateRunReply)
    return reply


def write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


TICKS = """
    import dagloom as dg

    class LimitConfig(dg.Config):
        limit: int

    @dg.op
    def limited(config: LimitConfig) -> int:
        return config.limit

    @dg.job
    def configured():
        limited()

    @dg.asset
    def raw():
        return 1

    @dg.asset
    def cooked(raw):
        return raw + 1

    @dg.schedule(cron_schedule="0 * * * *", job=configured)
    def hourly(context):
        hour = context.scheduled_execution_time.hour
        config = {"ops": {"limited": {"config": {"limit": hour}}}}
        return dg.RunRequest(run_key=f"h{hour}", run_config=config)

    @dg.sensor(job=configured)
    def counting(context):
        n = int(context.cursor or "0") + 1
        context.update_cursor(str(n))
        if n % 2:
            return dg.SkipReason(f"odd {n}")
        return dg.RunRequest(run_key=f"r{n}")

    @dg.sensor(job=configured)
    def broken(context):
        raise KeyError("the database is down")

    @dg.sensor(asset_selection=[cooked])
    def on_assets(context):
        yield dg.RunRequest(run_key="assets")

    defs = dg.Definitions(
        assets=[raw, cooked],
        jobs=[configured],
        schedules=[hourly],
        sensors=[counting, broken, on_assets],
        resources={"warehouse": "duckdb"},
    )
"""


@pytest.fixture
def ticks_file(tmp_path: Path) -> Path:
    return write(tmp_path / f"ticks_{uuid.uuid4().hex[:8]}.py", TICKS)


# -- snapshots -------------------------------------------------------------------------------


async def test_serves_the_snapshot_of_the_numbers_example() -> None:
    actor = CodeLocationServer("numbers", CodeOrigin(python_file=NUMBERS))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            snapshot = await snapshot_of(ref)
    assert snapshot.location_name == "numbers"
    assert snapshot.load_error is None
    assert snapshot.loaded_at > 0
    assert [j.name for j in snapshot.jobs] == [
        "process_numbers",
        "process_numbers_asset",
        "__ASSET_JOB",
    ]
    assert len(snapshot.assets) == 6
    assert [s.name for s in snapshot.sensors] == ["check_file_sensor"]


async def test_local_access_gives_the_loaded_definitions_and_jobs() -> None:
    actor = CodeLocationServer("numbers", CodeOrigin(python_file=NUMBERS))
    with anyio.fail_after(10):
        async with serving(actor):
            assert sorted(actor.definitions.job_names) == [
                "process_numbers",
                "process_numbers_asset",
            ]
            assert actor.get_job("process_numbers").name == "process_numbers"
            subset = actor.get_job("__ASSET_JOB", [AssetKey("generated_numbers")])
            assert list(subset.nodes) == ["generated_numbers"]
            with pytest.raises(DefinitionError, match="no job named 'nope'"):
                actor.get_job("nope")


# -- ticks -----------------------------------------------------------------------------------


async def test_a_schedule_tick_requests_runs_for_its_job(ticks_file: Path) -> None:
    actor = CodeLocationServer("ticks", CodeOrigin(python_file=str(ticks_file)))
    when = datetime(2024, 5, 1, 7, 0, tzinfo=UTC).timestamp()
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            result = await tick(
                ref,
                EvaluateScheduleRequest(schedule_name="hourly", scheduled_execution_time=when),
            )
    assert result.error is None
    (request,) = result.run_requests
    assert (request.run_key, request.job_name) == ("h7", "configured")
    assert request.run_config_json == '{"ops": {"limited": {"config": {"limit": 7}}}}'
    assert request.tags["dagloom/schedule_name"] == "hourly"


async def test_the_numbers_sensor_skips_then_requests_a_run_when_its_file_appears(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check_file = tmp_path / "check"
    monkeypatch.setenv("DAGLOOM_EXAMPLE_CHECK_FILE", str(check_file))
    actor = CodeLocationServer("numbers", CodeOrigin(python_file=NUMBERS))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            skipped = await tick(ref, EvaluateSensorRequest(sensor_name="check_file_sensor"))
            check_file.touch()
            fired = await tick(ref, EvaluateSensorRequest(sensor_name="check_file_sensor"))
    assert (skipped.skip_message, skipped.run_requests) == ("check file not exists", [])
    (request,) = fired.run_requests
    assert (request.run_key, request.job_name) == ("check_file_exists", "process_numbers")


async def test_a_sensor_cursor_goes_out_and_comes_back(ticks_file: Path) -> None:
    actor = CodeLocationServer("ticks", CodeOrigin(python_file=str(ticks_file)))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            first = await tick(ref, EvaluateSensorRequest(sensor_name="counting"))
            second = await tick(
                ref, EvaluateSensorRequest(sensor_name="counting", cursor=first.cursor)
            )
    assert (first.skip_message, first.cursor, first.cursor_updated) == ("odd 1", "1", True)
    assert [r.run_key for r in second.run_requests] == ["r2"]
    assert (second.cursor, second.cursor_updated) == ("2", True)


async def test_a_sensor_on_assets_requests_its_selection(ticks_file: Path) -> None:
    actor = CodeLocationServer("ticks", CodeOrigin(python_file=str(ticks_file)))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            result = await tick(ref, EvaluateSensorRequest(sensor_name="on_assets"))
    (request,) = result.run_requests
    assert [k.path for k in request.asset_selection] == [["cooked"]]


async def test_a_sensor_that_raises_gives_an_error_and_the_location_keeps_serving(
    ticks_file: Path,
) -> None:
    actor = CodeLocationServer("ticks", CodeOrigin(python_file=str(ticks_file)))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            failed = await tick(ref, EvaluateSensorRequest(sensor_name="broken"))
            unknown = await tick(ref, EvaluateScheduleRequest(schedule_name="nope"))
            after = await tick(ref, EvaluateSensorRequest(sensor_name="counting"))
    assert failed.error is not None
    assert failed.error.cls_name == "UserCodeError"
    assert "sensor 'broken'" in failed.error.message
    assert failed.error.cause is not None
    assert failed.error.cause.cls_name == "KeyError"
    assert 'raise KeyError("the database is down")' in failed.error.cause.stack
    assert unknown.error is not None and "no schedule named 'nope'" in unknown.error.message
    assert after.error is None and after.skip_message == "odd 1"
    assert actor.health().restarts == 0


def test_a_schedule_tick_at_time_zero_uses_now(ticks_file: Path) -> None:
    defs = load_definitions(python_file=ticks_file)
    now = datetime(2024, 1, 2, 13, 0, tzinfo=UTC).timestamp()
    result = evaluate_schedule(defs, EvaluateScheduleRequest(schedule_name="hourly"), now=now)
    assert [r.run_key for r in result.run_requests] == ["h13"]


# -- run validation --------------------------------------------------------------------------


async def test_validate_run_names_the_key_path_of_each_problem(ticks_file: Path) -> None:
    actor = CodeLocationServer("ticks", CodeOrigin(python_file=str(ticks_file)))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            good = await validate(
                ref,
                ValidateRunRequest(
                    job_name="configured",
                    run_config_json='{"ops": {"limited": {"config": {"limit": 3}}}}',
                ),
            )
            bad = await validate(
                ref,
                ValidateRunRequest(
                    job_name="configured",
                    run_config_json='{"ops": {"limited": {"config": {"limit": "x"}}}}',
                ),
            )
            missing = await validate(ref, ValidateRunRequest(job_name="configured"))
            unknown = await validate(ref, ValidateRunRequest(job_name="nope"))
            not_json = await validate(
                ref, ValidateRunRequest(job_name="configured", run_config_json="{")
            )
    snapshot_ids = {j.name: j.snapshot_id for j in actor.snapshot.jobs}
    assert good.valid and good.problems == [] and good.error == ""
    assert good.job_snapshot_id == snapshot_ids["configured"]
    assert not bad.valid
    assert [p.key_path for p in bad.problems] == ["ops.limited.config.limit"]
    assert "valid integer" in bad.problems[0].message
    assert "ops.limited.config.limit" in bad.error
    assert [p.key_path for p in missing.problems] == ["ops.limited.config.limit"]
    assert not unknown.valid and "no job named 'nope'" in unknown.error
    assert not not_json.valid and "not valid JSON" in not_json.error


def test_validate_run_over_an_asset_selection_names_the_subset_job(ticks_file: Path) -> None:
    defs = load_definitions(python_file=ticks_file)
    reply = validate_run(
        defs,
        ValidateRunRequest(
            job_name="__ASSET_JOB", asset_selection=[AssetKeyMessage(path=["cooked"])]
        ),
    )
    assert reply.valid
    assert reply.job_snapshot_id
    unknown = validate_run(
        defs,
        ValidateRunRequest(
            job_name="__ASSET_JOB", asset_selection=[AssetKeyMessage(path=["nope"])]
        ),
    )
    assert not unknown.valid and "nope" in unknown.error


def test_validate_run_accepts_config_for_the_default_io_manager(ticks_file: Path) -> None:
    # Execution gives a job without an io_manager the in-memory one; validation must agree.
    defs = load_definitions(python_file=ticks_file)
    assert "io_manager" not in defs.get_job_def("configured").resource_defs
    ops = {"limited": {"config": {"limit": 1}}}

    def check(resources: dict[str, object]) -> ValidateRunReply:
        run_config = json.dumps({"ops": ops, "resources": resources})
        request = ValidateRunRequest(job_name="configured", run_config_json=run_config)
        return validate_run(defs, request)

    accepted = check({"io_manager": {}})
    assert accepted.valid and accepted.error == "" and accepted.job_snapshot_id
    assert check({"io_manager": {"config": None}}).valid
    bad_entry = check({"io_manager": {"nope": 1}})
    assert not bad_entry.valid
    assert [p.key_path for p in bad_entry.problems] == ["resources.io_manager"]
    unknown = check({"nope": {}})
    assert not unknown.valid and [p.key_path for p in unknown.problems] == ["resources.nope"]


def test_resolve_job_refuses_assets_outside_a_named_asset_job(tmp_path: Path) -> None:
    source = TICKS.replace(
        "jobs=[configured]",
        'jobs=[configured, dg.define_asset_job("raw_only", selection=[raw])]',
    )
    defs = load_definitions(python_file=write(tmp_path / "named.py", source))
    assert list(resolve_job(defs, "raw_only", [AssetKey("raw")]).nodes) == ["raw"]
    with pytest.raises(DagloomInvalidSelectionError, match="not materialized by job"):
        resolve_job(defs, "raw_only", [AssetKey("cooked")])


def test_resolve_job_runs_a_check_selection_alone_or_refuses_it_naming_why() -> None:
    @dg.asset
    def orders() -> list[int]:
        return [1]

    @dg.asset(check_specs=[dg.AssetCheckSpec("fresh", asset="cooked")])
    def cooked(orders: list[int]) -> Any:
        yield dg.Output(orders)
        yield dg.AssetCheckResult(check_name="fresh", passed=True)

    @dg.asset_check(asset=orders)
    def orders_not_empty(orders: list[int]) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(passed=bool(orders))

    defs = dg.Definitions(
        assets=[orders, cooked],
        asset_checks=[orders_not_empty],
        jobs=[dg.define_asset_job("cooked_only", selection=[cooked])],
    )
    not_empty = AssetCheckKey(AssetKey("orders"), "orders_not_empty")
    fresh = AssetCheckKey(AssetKey("cooked"), "fresh")
    alone = resolve_job(defs, "__ASSET_JOB", (), [not_empty])
    assert list(alone.nodes) == ["orders_orders_not_empty"]
    assert alone.asset_layer is not None and alone.asset_layer.asset_keys == []
    # Assets with only some of their checks: the asset and the checks named.
    both = resolve_job(defs, "__ASSET_JOB", [AssetKey("orders")], [not_empty])
    assert sorted(both.nodes) == ["orders", "orders_orders_not_empty"]
    with pytest.raises(DagloomInvalidSelectionError, match="no asset checks"):
        resolve_job(defs, "__ASSET_JOB", (), [AssetCheckKey(AssetKey("orders"), "nope")])
    with pytest.raises(DagloomInvalidSelectionError, match="computed by their asset's op"):
        resolve_job(defs, "__ASSET_JOB", (), [fresh])
    with pytest.raises(DagloomInvalidSelectionError, match="not executed by job 'cooked_only'"):
        resolve_job(defs, "cooked_only", (), [not_empty])


# -- import errors and reloads ---------------------------------------------------------------

BROKEN = """
    import dagloom as dg

    def helper():
        raise RuntimeError("cannot reach the config service")

    helper()
"""


async def test_an_import_error_is_the_locations_error_while_another_keeps_serving(
    tmp_path: Path,
) -> None:
    broken_file = write(tmp_path / "broken_defs.py", BROKEN)
    broken = CodeLocationServer("broken", CodeOrigin(python_file=str(broken_file)))
    numbers = CodeLocationServer("numbers", CodeOrigin(python_file=NUMBERS))
    with anyio.fail_after(10):
        async with serving(broken, numbers) as [broken_ref, numbers_ref]:
            snapshot = await snapshot_of(broken_ref)
            schedule = await tick(broken_ref, EvaluateScheduleRequest(schedule_name="any"))
            validation = await validate(broken_ref, ValidateRunRequest(job_name="any"))
            healthy = await snapshot_of(numbers_ref)
            with pytest.raises(CodeLocationLoadError) as info:
                broken.get_job("any")
    assert snapshot.jobs == []
    error = snapshot.load_error
    assert error is not None
    assert error.cls_name == "CodeLocationLoadError"
    assert "cannot reach the config service" in error.message
    assert "broken_defs.py" in error.stack
    assert "in helper" in error.stack
    assert 'raise RuntimeError("cannot reach the config service")' in error.stack
    assert schedule.error is not None and schedule.error.message == error.message
    assert not validation.valid and "failed to load" in validation.error
    assert healthy.load_error is None and len(healthy.jobs) == 3
    assert "cannot reach the config service" in info.value.traceback_text
    assert broken.health().ready is False  # stopped with the supervisor
    assert broken.health().restarts == 0


JOB_V = """
    import dagloom as dg

    @dg.op
    def step():
        return {version}

    @dg.job
    def job_v{version}():
        step()

    defs = dg.Definitions(jobs=[job_v{version}])
"""


async def test_reload_picks_up_a_changed_file_and_a_failed_reload_keeps_the_old_code(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "versioned.py", JOB_V.format(version=1))
    actor = CodeLocationServer("versioned", CodeOrigin(python_file=str(path)))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            first = await snapshot_of(ref)
            write(path, JOB_V.format(version=2))
            second = await reload(ref)
            v2_definitions = actor.definitions

            write(path, "import dagloom as dg\nraise ValueError('half-written')\n")
            failed = await reload(ref)
            after_failure = await snapshot_of(ref)
            validation = await validate(ref, ValidateRunRequest(job_name="job_v2"))
            kept = actor.definitions

            write(path, JOB_V.format(version=3))
            fixed = await reload(ref)
    assert [j.name for j in first.jobs] == ["job_v1"]
    assert [j.name for j in second.jobs] == ["job_v2"]
    assert second.load_error is None
    assert [j.name for j in failed.jobs] == ["job_v2"]
    assert failed.load_error is not None and "half-written" in failed.load_error.message
    assert "versioned.py" in failed.load_error.stack
    assert after_failure.load_error is not None and [j.name for j in after_failure.jobs] == [
        "job_v2"
    ]
    assert kept is v2_definitions
    assert validation.valid
    assert [j.name for j in fixed.jobs] == ["job_v3"] and fixed.load_error is None


async def test_a_location_that_failed_to_load_serves_once_a_reload_succeeds(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "late.py", BROKEN)
    actor = CodeLocationServer("late", CodeOrigin(python_file=str(path)))
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            assert (await snapshot_of(ref)).load_error is not None
            write(path, JOB_V.format(version=1))
            reloaded = await reload(ref)
            result = await validate(ref, ValidateRunRequest(job_name="job_v1"))
    assert reloaded.load_error is None and [j.name for j in reloaded.jobs] == ["job_v1"]
    assert result.valid


async def test_reload_reimports_a_module_and_its_package(tmp_path: Path) -> None:
    package = f"pkg_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    write(tmp_path / package / "__init__.py", "")
    write(tmp_path / package / "ops.py", "VERSION = 1\n")
    write(
        tmp_path / package / "defs.py",
        """
        import dagloom as dg
        from . import ops

        @dg.op
        def step():
            return ops.VERSION

        defs = dg.Definitions(jobs=[dg.job(name=f"job_v{ops.VERSION}")(lambda: step())])
        """,
    )
    source = CodeOrigin(module_name=f"{package}.defs", working_directory=str(tmp_path))
    actor = CodeLocationServer("module", source)
    with anyio.fail_after(10):
        async with serving(actor) as [ref]:
            first = await snapshot_of(ref)
            write(tmp_path / package / "ops.py", "VERSION = 22\n")
            second = await reload(ref)
            write(tmp_path / package / "ops.py", "VERSION = (\n")
            failed = await reload(ref)
            still = sys.modules[f"{package}.ops"]
    assert [j.name for j in first.jobs] == ["job_v1"]
    assert [j.name for j in second.jobs] == ["job_v22"]
    assert failed.load_error is not None and "syntax error" in failed.load_error.message
    assert [j.name for j in failed.jobs] == ["job_v22"]
    assert still.VERSION == 22  # the failed import put the working package back
