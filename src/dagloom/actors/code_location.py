"""The code location: an actor that imports user code once and answers questions about it.

`CodeLocationServer` serves the `CodeLocation` protocol: the snapshot of what the code
defines, schedule and sensor ticks, run config validation, and reloads. Beside it are the
pure functions it calls (`load_location`, `evaluate_schedule`, `evaluate_sensor`,
`validate_run`, `check_run_config`, `resolve_job`), which run without an event loop.

User code runs only in those functions, each a user-code boundary: whatever user code
raises while importing or ticking becomes an error field in a reply, never a crash.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import threading
import time
import types
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, assert_never
from zoneinfo import ZoneInfo

import anyio
import orjson
from anyio.abc import TaskStatus

from dagloom._logging import get_logger
from dagloom.actors._instigator_pool import EvaluationSettings, InstigatorKind, InstigatorPool
from dagloom.actors._runtime import Actor, Clock, ReplySlot
from dagloom.actors._tick_instance import TickInstance
from dagloom.code.loader import load_definitions
from dagloom.code.snapshot import (
    check_key_of,
    failed_snapshot,
    job_snapshot,
    load_error_info,
    location_snapshot,
    schedule_tick_result,
    sensor_tick_result,
    tick_error,
)
from dagloom.definitions.asset_key import AssetKey
from dagloom.definitions.asset_selection import coerce_selection
from dagloom.definitions.definitions import Definitions
from dagloom.definitions.event_sensors import AssetSensorDefinition, RunStatusSensorDefinition
from dagloom.definitions.job import JobDefinition
from dagloom.definitions.schedule import build_schedule_context
from dagloom.definitions.sensor import build_sensor_context
from dagloom.errors import (
    ActorUnavailableError,
    CodeLocationLoadError,
    ConfigError,
    DagloomError,
    format_key_path,
)
from dagloom.execution.origin import CodeOrigin, resolve_job
from dagloom.execution.run import default_resource_defs
from dagloom.execution.run_config import resolve_run_config
from dagloom.messages import AssetKeyMessage, ErrorInfo
from dagloom.messages.rpc import (
    CodeLocationBase,
    ConfigProblem,
    EvaluateScheduleRequest,
    EvaluateSensorRequest,
    GetSnapshotRequest,
    LocationSnapshot,
    ReloadRequest,
    TickResult,
    ValidateRunReply,
    ValidateRunRequest,
)

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance

__all__ = [
    "CodeLocationReply",
    "CodeLocationRequest",
    "CodeLocationServer",
    "EvaluationSettings",
    "LoadedLocation",
    "TickInstance",
    "check_run_config",
    "checked_run",
    "evaluate_schedule",
    "evaluate_sensor",
    "load_location",
    "partition_run_config",
    "refusal",
    "resolve_job",
    "run_snapshot_id",
    "validate_run",
]

CodeLocationRequest = (
    GetSnapshotRequest
    | EvaluateScheduleRequest
    | EvaluateSensorRequest
    | ReloadRequest
    | ValidateRunRequest
)
CodeLocationReply = LocationSnapshot | TickResult | ValidateRunReply

# The loader changes sys.path and sys.modules, which every location in the process shares;
# loads run in worker threads, so two locations loading at once take turns here.
_IMPORT_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class LoadedLocation:
    """One successful import: the definitions, their snapshot, and each job's snapshot id."""

    definitions: Definitions
    snapshot: LocationSnapshot
    job_snapshot_ids: dict[str, str]


# -- the pure part: loading, ticks, validation ---------------------------------------------


def load_location(
    source: CodeOrigin, *, location_name: str, loaded_at: float, fresh: bool = False
) -> LoadedLocation:
    """Import `source` and snapshot its definitions. Blocks while user code imports.

    `fresh` re-imports code already imported in this process: a file is executed again (as
    it always is) after its cached bytecode is dropped; a module's whole top-level package is
    dropped from `sys.modules` first, and put back if the import fails, so a failed reload
    leaves the process as it was. Raises `CodeLocationLoadError` with the user's traceback
    for anything importing or snapshotting raises.
    """
    with _IMPORT_LOCK:
        forgotten: dict[str, types.ModuleType] = {}
        if fresh:
            importlib.invalidate_caches()
            if source.python_file is not None:
                _drop_bytecode(Path(source.python_file).resolve())
            elif source.module_name is not None:
                forgotten = _forget_package(source.module_name)
        try:
            definitions = load_definitions(
                python_file=source.python_file,
                module_name=source.module_name,
                attribute=source.attribute,
                working_directory=source.working_directory,
            )
            snapshot = location_snapshot(
                definitions, location_name=location_name, loaded_at=loaded_at
            )
        except CodeLocationLoadError:
            _restore(forgotten)
            raise
        except Exception as exc:  # the user-code boundary: whatever loading raises is reported
            _restore(forgotten)
            raise CodeLocationLoadError(
                f"could not load {source.describe()}: {type(exc).__name__}: {exc}",
                location=source.describe(),
            ) from exc
    return LoadedLocation(
        definitions=definitions,
        snapshot=snapshot,
        job_snapshot_ids={job.name: job.snapshot_id for job in snapshot.jobs},
    )


def _drop_bytecode(path: Path) -> None:
    # Bytecode is checked against the source's mtime in whole seconds and its size, so a file
    # rewritten within a second at the same size would otherwise load its old code.
    with contextlib.suppress(OSError, ValueError, NotImplementedError):
        Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)


def _forget_package(module_name: str) -> dict[str, types.ModuleType]:
    top = module_name.partition(".")[0]
    if top == "dagloom":
        # Never re-import dagloom itself: user code's definitions must stay its classes.
        return {}
    forgotten = {
        name: module
        for name, module in list(sys.modules.items())
        if name == top or name.startswith(f"{top}.")
    }
    for name, module in forgotten.items():
        del sys.modules[name]
        cached = getattr(module, "__cached__", None)
        if isinstance(cached, str):
            with contextlib.suppress(OSError):
                Path(cached).unlink(missing_ok=True)
    return forgotten


def _restore(forgotten: dict[str, types.ModuleType]) -> None:
    for name in [n for n in sys.modules if n in forgotten or n.partition(".")[0] in forgotten]:
        del sys.modules[name]
    sys.modules.update(forgotten)


def _resources_for(
    definitions: Definitions, keys_for_tick: Callable[[Mapping[str, Any]], set[str]]
) -> dict[str, Any]:
    """The location's resources a tick uses, and only those: as in Dagster, a tick builds
    the resources its schedule or sensor requires (declared, or taken as parameters), so a
    resource configured only for runs does not fail every tick. The context builds them on
    first use and tears them down when the tick ends."""
    wanted = keys_for_tick(definitions.resources)
    return {key: value for key, value in definitions.resources.items() if key in wanted}


def evaluate_schedule(
    definitions: Definitions, request: EvaluateScheduleRequest, *, now: float, instance: Any = None
) -> TickResult:
    """Run one tick of the schedule `request` names; blocks while user code runs.

    The tick's time is `request.scheduled_execution_time`, or `now` when it is 0; the
    schedule sees it in its `execution_timezone` (UTC by default), as Dagster's scheduler
    passes it, so the date of a tick is the date where the schedule runs. The schedule sees
    the location's resources, and `instance` as `context.instance`. Anything raised (an
    unknown schedule, user code, a result of the wrong shape) comes back as
    `TickResult.error`.
    """
    seconds = request.scheduled_execution_time or now
    try:
        schedule = definitions.get_schedule_def(request.schedule_name)
        # the timezone was checked when the schedule was defined
        zone = ZoneInfo(schedule.execution_timezone) if schedule.execution_timezone else UTC
        context = build_schedule_context(
            scheduled_execution_time=datetime.fromtimestamp(seconds, zone),
            resources=_resources_for(definitions, schedule.resource_keys_for_tick),
            repository_def=definitions,
            instance=instance,
        )
        with context:
            return schedule_tick_result(schedule.evaluate_tick(context))
    except Exception as exc:  # the user-code boundary: a tick's failure is its result
        return tick_error(exc)


def evaluate_sensor(
    definitions: Definitions, request: EvaluateSensorRequest, *, instance: Any = None
) -> TickResult:
    """Run one tick of the sensor `request` names, with `instance` as `context.instance`;
    blocks while user code runs.

    An empty cursor or run key and a zero completion time mean "none". A run status or
    asset sensor is called once per run or event the request carries. A sensor that targets
    assets gets its resolved selection on requests that name no assets. Anything raised
    comes back as `TickResult.error`.
    """
    cursor = request.cursor or None
    try:
        sensor = definitions.get_sensor_def(request.sensor_name)
        context = build_sensor_context(
            cursor=cursor,
            sensor_name=sensor.name,
            resources=_resources_for(definitions, sensor.resource_keys_for_tick),
            definitions=definitions,
            last_tick_completion_time=request.last_tick_completion_time or None,
            last_run_key=request.last_run_key or None,
            instance=instance,
        )
        with context:
            if isinstance(sensor, RunStatusSensorDefinition | AssetSensorDefinition):
                data = sensor.evaluate_events(
                    context, request.runs, request.events, request.step_failure_events
                )
            else:
                data = sensor.evaluate_tick(context)
        selection: set[AssetKey] | None = None
        if sensor.asset_selection is not None:
            selection = coerce_selection(sensor.asset_selection).resolve(definitions.asset_graph)
        return sensor_tick_result(data, previous_cursor=cursor, default_asset_selection=selection)
    except Exception as exc:  # the user-code boundary: a tick's failure is its result
        return tick_error(exc)


def validate_run(
    definitions: Definitions,
    request: ValidateRunRequest,
    job_snapshot_ids: dict[str, str] | None = None,
) -> ValidateRunReply:
    """Check that `request` names a job here and that its run config fits the job.

    Never raises for bad input: an unknown job or asset, or run config that
    `check_run_config` refuses, comes back with `valid=False`. The reply's
    `job_snapshot_id` is that of the job the run would execute, taken from
    `job_snapshot_ids` when it is a whole job already snapshotted.
    """
    try:
        keys = _asset_keys(request.asset_selection)
        checks = [check_key_of(c) for c in request.asset_check_selection]
        job = resolve_job(definitions, request.job_name, keys, checks)
        snapshot_id = run_snapshot_id(job, [*keys, *checks], job_snapshot_ids or {})
    except Exception as exc:  # the user-code boundary: building a job may run user code
        return refusal(exc)
    return checked_run(job, request.run_config_json, request.tags, snapshot_id)


def checked_run(
    job: JobDefinition, run_config_json: str, tags: Mapping[str, str], snapshot_id: str
) -> ValidateRunReply:
    """Check a run of `job`: the config it runs with (its partition's, when the job has a
    partitioned config, `tags` name a partition and `run_config_json` gives none) must fit.
    A valid reply carries `snapshot_id`, and the partition's config and tags if it took
    them. Never raises for bad input (an unknown partition is a refusal)."""
    try:
        derived = partition_run_config(job, run_config_json, tags)
    except Exception as exc:  # the user-code boundary: a partitioned config is user code
        return refusal(exc)
    reply = check_run_config(job, derived[0] if derived is not None else run_config_json)
    if reply.valid:
        reply.job_snapshot_id = snapshot_id
        if derived is not None:
            reply.partition_run_config_json, reply.partition_tags = derived
    return reply


def partition_run_config(
    job: JobDefinition, run_config_json: str, tags: Mapping[str, str]
) -> tuple[str, dict[str, str]] | None:
    """The run config (as JSON) and tags a run of `job` for the partition its `tags` name
    takes from the job's partitioned config; None when the job has no partitioned config,
    the tags name no partition, or the run gives its own config. Raises the job's error for
    a key that is not one of its partitions; may run user code."""
    from dagloom.execution.partitions import PARTITION_TAG

    key = tags.get(PARTITION_TAG)
    if job.partitioned_config is None or key is None or _parse_run_config(run_config_json):
        return None
    run_config, run_tags = job.partition_run(key, None, {})
    config_json = orjson.dumps(run_config or {}, default=str).decode()
    return config_json, {k: v for k, v in run_tags.items() if k != PARTITION_TAG}


def run_snapshot_id(
    job: JobDefinition, asset_selection: Collection[object], job_snapshot_ids: Mapping[str, str]
) -> str:
    """The snapshot id of `job`, as `resolve_job` made it for a run over `asset_selection`
    (its asset keys and asset check keys).

    A whole job's id comes from `job_snapshot_ids` (the location snapshot's) when it is
    there; an asset subset's is computed. The code location validates runs and workers check
    them by this one rule, so equal code gives equal ids in any process. Pure; may run user
    code (building a job's snapshot), so callers hold the user-code boundary.
    """
    known = "" if asset_selection else job_snapshot_ids.get(job.name, "")
    return known or job_snapshot(job).snapshot_id


def check_run_config(job: JobDefinition, run_config_json: str) -> ValidateRunReply:
    """Check that `run_config_json` (a JSON object; empty means `{}`) fits `job` as a run
    of it executes: over the job's resources plus the default in-memory `io_manager`.

    Never raises for bad input: config that is not a JSON object, or that the job rejects,
    comes back with `valid=False`, each problem under its key path
    (`ops.my_op.config.limit`) and the whole message in `error`.
    """
    try:
        resolve_run_config(job, _parse_run_config(run_config_json), default_resource_defs(job))
    except Exception as exc:  # the user-code boundary: config models may run user validators
        return refusal(exc)
    return ValidateRunReply(valid=True)


def refusal(exc: Exception) -> ValidateRunReply:
    """`exc` as a refused validation: a `ConfigError`'s problems under their key paths, and
    the whole message (a `DagloomError`'s text, else the exception's repr) in `error`."""
    problems = []
    if isinstance(exc, ConfigError):
        problems = [
            ConfigProblem(key_path=format_key_path(path), message=text)
            for path, text in exc.problems
        ]
    error = str(exc) if isinstance(exc, DagloomError) else repr(exc)
    return ValidateRunReply(valid=False, problems=problems, error=error)


def _parse_run_config(run_config_json: str) -> dict[str, Any]:
    if not run_config_json:
        return {}
    try:
        value = orjson.loads(run_config_json)
    except orjson.JSONDecodeError as exc:
        raise ConfigError("invalid run config", problems=[((), f"not valid JSON: {exc}")]) from exc
    if not isinstance(value, dict):
        raise ConfigError(
            "invalid run config",
            problems=[((), f"must be a JSON object, not {type(value).__name__}")],
        )
    return value


# -- the actor ------------------------------------------------------------------------------


class CodeLocationServer(Actor[CodeLocationRequest, CodeLocationReply]):
    """Serves one code location: imports its code at start, then answers from memory.

    The actor is named for its location. A failed import does not stop it: it becomes
    ready anyway, its snapshot carries `load_error` (with the user's traceback), ticks
    answer with that error and `ValidateRun` with `valid=False`, until a `Reload` imports
    the code. `Reload` re-imports fresh and swaps in the new definitions only if the import
    succeeds; otherwise the old ones keep serving and the reply (and later snapshots) carry
    the failure in `load_error` beside the definitions still served. Imports run in a worker
    thread, so the event loop keeps serving other actors while user code imports.

    Schedule and sensor ticks are evaluated outside the inbox, in the location's warm
    evaluation processes (`evaluation`: how many at once, and the timeout after which one is
    killed and its tick answered with `UserCodeTimeoutError`), so a slow sensor never delays
    `ValidateRun` or `GetSnapshot`; stopping the actor kills them.

    A tick's `context.instance` is `instance` (a `DagloomInstance` this node holds open, or
    a `TickInstance` that opens one on first use), seen synchronously, its calls answered
    here; stopping the actor closes an instance the `TickInstance` opened. Without one it is
    None.

    Replies are shared, not copied: callers must not mutate them. Restarting the actor
    keeps what it loaded; it imports again only if it never loaded successfully.
    """

    service = CodeLocationBase

    def __init__(
        self,
        location_name: str,
        source: CodeOrigin,
        *,
        inbox_size: int = 64,
        clock: Clock = time.time,
        evaluation: EvaluationSettings = EvaluationSettings(),  # noqa: B008 - frozen
        instance: DagloomInstance | TickInstance | None = None,
    ) -> None:
        super().__init__(location_name, inbox_size=inbox_size, clock=clock)
        self.location_name = location_name
        self.source = source
        self.evaluation = evaluation
        self.tick_instance = (
            instance
            if instance is None or isinstance(instance, TickInstance)
            else TickInstance(instance)
        )
        self._instigators = InstigatorPool(
            location_name, source, evaluation, instance=self.tick_instance
        )
        self._loaded: LoadedLocation | None = None
        self._load_error: ErrorInfo | None = None
        self._load_exception: CodeLocationLoadError | None = None
        self._load_failures = 0
        self._snapshot = failed_snapshot(
            location_name,
            ErrorInfo(cls_name="CodeLocationLoadError", message="not loaded yet"),
            loaded_at=0.0,
        )
        self._log = get_logger("dagloom.actors").bind(actor=self.name, location=location_name)

    # -- local access, for run workers in this process ----------------------------------

    @property
    def definitions(self) -> Definitions:
        """The definitions being served; never blocks.

        Raises `CodeLocationLoadError` (with the traceback) if the code never loaded.
        """
        return self.loaded.definitions

    @property
    def loaded(self) -> LoadedLocation:
        """The definitions being served with their job snapshot ids; never blocks.

        Raises `CodeLocationLoadError` (with the traceback) if the code never loaded.
        """
        if self._loaded is None:
            failure = self._load_exception
            if failure is None:
                raise CodeLocationLoadError(
                    f"code location {self.location_name!r} has not loaded yet",
                    location=self.source.describe(),
                )
            # A new error each time, so callers do not pile tracebacks onto the stored one.
            raise CodeLocationLoadError(
                str(failure), location=failure.location, traceback_text=failure.traceback_text
            ) from failure
        return self._loaded

    @property
    def snapshot(self) -> LocationSnapshot:
        """What `GetSnapshot` answers now; never blocks."""
        return self._snapshot

    @property
    def load_failures(self) -> int:
        """How many times importing the code failed since this server was made."""
        return self._load_failures

    def get_job(self, name: str, asset_selection: Collection[AssetKey] = ()) -> JobDefinition:
        """The job a run of `name` over `asset_selection` executes (see `resolve_job`).

        Raises `CodeLocationLoadError` if the code never loaded, `DefinitionError` if there
        is no such job or asset.
        """
        return resolve_job(self.definitions, name, asset_selection)

    # -- the actor ---------------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Import the code (unless already loaded), then serve; ready once the import ended,
        whether or not it succeeded. Runs until cancelled."""
        if self._loaded is None:
            await self._load(fresh=self._load_error is not None)
        try:
            async with self._open_children():
                await self.serve(task_status=task_status)
        finally:
            await self._instigators.aclose()
            if self.tick_instance is not None:
                await self.tick_instance.aclose()

    def _evaluate_later(
        self,
        kind: InstigatorKind,
        name: str,
        request: EvaluateScheduleRequest | EvaluateSensorRequest,
    ) -> None:
        """Answer an evaluation from a child task, so the inbox moves on at once."""
        assert self._children is not None, "evaluations are handled only while serving"
        self._children.start_soon(
            self._evaluate, self._detach_reply(), kind, name, request, self._clock()
        )

    async def _evaluate(
        self,
        slot: ReplySlot[CodeLocationReply] | None,
        kind: InstigatorKind,
        name: str,
        request: EvaluateScheduleRequest | EvaluateSensorRequest,
        now: float,
    ) -> None:
        try:
            result = await self._instigators.evaluate(kind, name, request, now)
        except Exception as exc:  # a supervision point: a broken pool fails this tick only
            self._log.exception("instigator_evaluation_failed", kind=kind, name=name)
            result = tick_error(exc)
        except BaseException:
            if slot is not None:
                slot.set_error(
                    ActorUnavailableError(
                        f"code location {self.location_name!r} stopped while evaluating "
                        f"{kind} {name!r}",
                        actor=self.name,
                    )
                )
            raise
        if slot is not None:
            slot.set_reply(result)

    async def handle(self, message: CodeLocationRequest) -> CodeLocationReply | None:
        match message:
            case GetSnapshotRequest():
                return self._snapshot
            case ReloadRequest():
                await self._load(fresh=True)
                return self._snapshot
            case EvaluateScheduleRequest():
                if self._loaded is None:
                    return TickResult(error=self._snapshot.load_error)
                self._evaluate_later("schedule", message.schedule_name, message)
                return None
            case EvaluateSensorRequest():
                if self._loaded is None:
                    return TickResult(error=self._snapshot.load_error)
                self._evaluate_later("sensor", message.sensor_name, message)
                return None
            case ValidateRunRequest():
                if self._loaded is None:
                    return ValidateRunReply(valid=False, error=self._not_loaded_message())
                return validate_run(
                    self._loaded.definitions, message, self._loaded.job_snapshot_ids
                )
            case _:
                assert_never(message)

    async def _load(self, *, fresh: bool) -> None:
        now = self._clock()
        try:
            loaded = await anyio.to_thread.run_sync(
                _load_now, self.source, self.location_name, now, fresh, abandon_on_cancel=True
            )
        except CodeLocationLoadError as exc:
            self._load_failures += 1
            self._load_exception = exc
            self._load_error = load_error_info(exc)
            self._snapshot = self._with_error(self._load_error, now)
            self._log.warning(
                "code_location_load_failed", error=str(exc), serving_old=bool(self._loaded)
            )
            return
        if self._loaded is not None:
            await self._instigators.reset()
        self._loaded = loaded
        self._load_error = None
        self._load_exception = None
        self._snapshot = loaded.snapshot
        self._log.info("code_location_loaded", jobs=len(loaded.snapshot.jobs))

    def _with_error(self, error: ErrorInfo, now: float) -> LocationSnapshot:
        if self._loaded is None:
            return failed_snapshot(self.location_name, error, loaded_at=now)
        old = self._loaded.snapshot
        return LocationSnapshot(
            location_name=old.location_name,
            jobs=old.jobs,
            assets=old.assets,
            schedules=old.schedules,
            sensors=old.sensors,
            resource_keys=old.resource_keys,
            load_error=error,
            loaded_at=old.loaded_at,
        )

    def _not_loaded_message(self) -> str:
        error = self._snapshot.load_error
        detail = f": {error.message}" if error is not None else ""
        return f"code location {self.location_name!r} failed to load{detail}"


def _load_now(source: CodeOrigin, location_name: str, now: float, fresh: bool) -> LoadedLocation:
    return load_location(source, location_name=location_name, loaded_at=now, fresh=fresh)


def _asset_keys(messages: Iterable[AssetKeyMessage]) -> list[AssetKey]:
    return [AssetKey(m.path) for m in messages]
