"""Schedules and sensors as GraphQL types with Dagster's names: `Schedule`, `Sensor`,
`InstigationState` (stored state, or the definition's default before a daemon records it)
and `InstigationTick`."""

from __future__ import annotations

import enum
import itertools
import time
from datetime import UTC, datetime

import strawberry

from dagloom.daemon._instigators import is_running, origin_id, schedule_state, sensor_state
from dagloom.definitions._cron import iter_cron_ticks, load_timezone
from dagloom.messages import InstigatorState, InstigatorType, Tick
from dagloom.messages.rpc import ScheduleSnapshot, SensorSnapshot
from dagloom.webserver.schema.errors import PythonError


@strawberry.enum
class InstigationType(enum.Enum):
    SCHEDULE = "SCHEDULE"
    SENSOR = "SENSOR"


@strawberry.enum
class InstigationStatus(enum.Enum):
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    DECLARED_IN_CODE = "DECLARED_IN_CODE"


def running_or_stopped(running: bool) -> InstigationStatus:
    return InstigationStatus.RUNNING if running else InstigationStatus.STOPPED


@strawberry.enum
class InstigationTickStatus(enum.Enum):
    STARTED = "STARTED"
    SKIPPED = "SKIPPED"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"


@strawberry.type
class InstigationTick:
    tick: strawberry.Private[Tick]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(str(self.tick.tick_id))

    @strawberry.field
    def tickId(self) -> str:
        return str(self.tick.tick_id)

    @strawberry.field
    def status(self) -> InstigationTickStatus | None:
        name = self.tick.status.name
        return InstigationTickStatus[name] if name in InstigationTickStatus.__members__ else None

    @strawberry.field
    def timestamp(self) -> float:
        return self.tick.timestamp

    @strawberry.field
    def endTimestamp(self) -> float | None:
        return self.tick.end_time or None

    @strawberry.field
    def runIds(self) -> list[str]:
        return list(self.tick.run_ids)

    @strawberry.field
    def runKeys(self) -> list[str]:
        return list(self.tick.run_keys)

    @strawberry.field
    def skipReason(self) -> str | None:
        return self.tick.skip_reason or None

    @strawberry.field
    def cursor(self) -> str | None:
        return self.tick.cursor or None

    @strawberry.field
    def error(self) -> PythonError | None:
        return PythonError.from_info(self.tick.error) if self.tick.error is not None else None


MAX_TICKS = 1000


@strawberry.type
class InstigationState:
    state: strawberry.Private[InstigatorState]

    @strawberry.field(description="The origin id it is stored under (used to stop it).")
    def id(self) -> strawberry.ID:
        return strawberry.ID(self.state.origin_id)

    @strawberry.field
    def selectorId(self) -> str:
        return self.state.origin_id

    @strawberry.field
    def name(self) -> str:
        return self.state.name

    @strawberry.field
    def repositoryLocationName(self) -> str:
        return self.state.code_location

    @strawberry.field
    def instigationType(self) -> InstigationType:
        return InstigationType[self.state.instigator_type.name]

    @strawberry.field(description="RUNNING or STOPPED, the default applied when declared in code.")
    def status(self) -> InstigationStatus:
        return running_or_stopped(is_running(self.state))

    @strawberry.field
    def isDeclaredInCode(self) -> bool:
        return self.state.status.name in ("DECLARED_IN_CODE", "UNSPECIFIED")

    @strawberry.field
    def cursor(self) -> str | None:
        return self.state.cursor or None

    @strawberry.field
    async def ticks(self, info: strawberry.Info, limit: int | None = 20) -> list[InstigationTick]:
        size = min(max(limit or 20, 1), MAX_TICKS)
        ticks = await info.context.instance.schedule_storage.get_ticks(
            self.state.origin_id, limit=size
        )
        return [InstigationTick(tick=t) for t in ticks]


async def stored_state(info: strawberry.Info, fallback: InstigatorState) -> InstigatorState:
    """The stored state of a schedule or sensor, or `fallback` (its definition's default)
    when no daemon has recorded it yet."""
    state = await info.context.instance.schedule_storage.get_instigator_state(fallback.origin_id)
    return state if state is not None else fallback


@strawberry.type
class FutureInstigationTick:
    timestamp: float


@strawberry.type
class DryRunInstigationTicks:
    results: list[FutureInstigationTick]
    cursor: float


@strawberry.type
class Schedule:
    snapshot: strawberry.Private[ScheduleSnapshot]
    location_name: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(
            origin_id(InstigatorType.SCHEDULE, self.location_name, self.snapshot.name)
        )

    @strawberry.field
    def name(self) -> str:
        return self.snapshot.name

    @strawberry.field
    def cronSchedule(self) -> str:
        return " | ".join(self.snapshot.cron_schedules)

    @strawberry.field
    def cronSchedules(self) -> list[str]:
        return list(self.snapshot.cron_schedules)

    @strawberry.field
    def executionTimezone(self) -> str | None:
        return self.snapshot.execution_timezone or None

    @strawberry.field
    def pipelineName(self) -> str:
        return self.snapshot.job_name

    @strawberry.field
    def description(self) -> str | None:
        return self.snapshot.description or None

    @strawberry.field
    def defaultStatus(self) -> InstigationStatus:
        return running_or_stopped(self.snapshot.default_running)

    def declared_state(self) -> InstigatorState:
        """The state its definition declares, which holds until a daemon stores one."""
        return schedule_state(self.location_name, self.snapshot, now=time.time())

    @strawberry.field
    async def scheduleState(self, info: strawberry.Info) -> InstigationState:
        return InstigationState(state=await stored_state(info, self.declared_state()))

    @strawberry.field(description="The next tick times after `cursor` (default: now).")
    def futureTicks(
        self, limit: int | None = 5, cursor: float | None = None
    ) -> DryRunInstigationTicks:
        size = min(max(limit or 5, 1), 100)
        tz = load_timezone(self.snapshot.execution_timezone or None)
        start = datetime.fromtimestamp(cursor if cursor is not None else time.time(), UTC)
        ticks = list(
            itertools.islice(iter_cron_ticks(list(self.snapshot.cron_schedules), tz, start), size)
        )
        stamps = [t.timestamp() for t in ticks]
        return DryRunInstigationTicks(
            results=[FutureInstigationTick(timestamp=s) for s in stamps],
            cursor=stamps[-1] if stamps else start.timestamp(),
        )


@strawberry.type
class Target:
    pipelineName: str


@strawberry.type
class Sensor:
    snapshot: strawberry.Private[SensorSnapshot]
    location_name: strawberry.Private[str]

    @strawberry.field
    def id(self) -> strawberry.ID:
        return strawberry.ID(
            origin_id(InstigatorType.SENSOR, self.location_name, self.snapshot.name)
        )

    @strawberry.field
    def name(self) -> str:
        return self.snapshot.name

    @strawberry.field
    def description(self) -> str | None:
        return self.snapshot.description or None

    @strawberry.field
    def minIntervalSeconds(self) -> int:
        return self.snapshot.minimum_interval_seconds

    @strawberry.field
    def targets(self) -> list[Target]:
        return [Target(pipelineName=n) for n in self.snapshot.job_names]

    @strawberry.field
    def defaultStatus(self) -> InstigationStatus:
        return running_or_stopped(self.snapshot.default_running)

    def declared_state(self) -> InstigatorState:
        """The state its definition declares, which holds until a daemon stores one."""
        return sensor_state(self.location_name, self.snapshot, now=time.time())

    @strawberry.field
    async def sensorState(self, info: strawberry.Info) -> InstigationState:
        return InstigationState(state=await stored_state(info, self.declared_state()))

    @strawberry.field(description="When the sensor is next due: its last tick plus its interval.")
    async def nextTick(self, info: strawberry.Info) -> FutureInstigationTick | None:
        state = await stored_state(info, self.declared_state())
        if not is_running(state):
            return None
        last = state.last_tick_time or time.time()
        return FutureInstigationTick(
            timestamp=last + max(self.snapshot.minimum_interval_seconds, 1)
        )
