"""The sensor loop with an injected clock: a run_key launches one run over the sensor's
whole history, the cursor is stored with the tick, a sensor that raises or times out
records a failed tick and the loop goes on, and only running sensors tick."""

from __future__ import annotations

from typing import Any, cast

import anyio

import dagloom as dg
from dagloom.daemon._instigators import origin_id, toggled
from dagloom.daemon.sensors import SensorLoop
from dagloom.definitions import Definitions
from dagloom.definitions.sensor import SENSOR_NAME_TAG
from dagloom.instance import DagloomInstance
from dagloom.messages import InstigatorType, TickStatus
from dagloom.messages.rpc import EvaluateSensorRequest

from ._fakes import InProcessLocation, storing_coordinator

T0 = 1_800_000_000.0
RUNNING = dg.DefaultSensorStatus.RUNNING
FLAG: dict[str, bool] = {"present": False}


@dg.op
def noop() -> None:
    pass


@dg.job
def nothing() -> None:
    noop()


@dg.sensor(job=nothing, minimum_interval_seconds=30, default_status=RUNNING)
def keyed(context: Any) -> Any:
    if FLAG["present"]:
        yield dg.RunRequest(run_key="the_file")
    else:
        yield dg.SkipReason("no file")


@dg.sensor(job=nothing, minimum_interval_seconds=30, default_status=RUNNING)
def counting(context: Any) -> dg.SensorResult:
    seen = int(context.cursor or 0)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"n{seen}")], cursor=str(seen + 1))


@dg.sensor(job=nothing, minimum_interval_seconds=30, default_status=RUNNING)
def raising(context: Any) -> Any:
    raise RuntimeError("the sensor broke")


@dg.sensor(job=nothing, minimum_interval_seconds=30)
def stopped(context: Any) -> dg.RunRequest:
    return dg.RunRequest(run_key="never")


def origin(name: str) -> str:
    return origin_id(InstigatorType.SENSOR, "here", name)


def loop(instance: DagloomInstance, coordinator: Any, defs: Definitions, **kw: Any) -> SensorLoop:
    location = InProcessLocation("here", defs)
    return SensorLoop(instance, {"here": cast(Any, location)}, coordinator, owner="d", **kw)


async def test_a_run_key_launches_exactly_one_run_over_the_sensors_history() -> None:
    FLAG["present"] = False
    defs = Definitions(jobs=[nothing], sensors=[keyed])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        sensors = loop(instance, coord, defs)
        await sensors.tick(T0)
        await sensors.tick(T0 + 10)  # inside the interval: no tick
        [skipped] = await instance.schedule_storage.get_ticks(origin("keyed"))
        assert (skipped.status, skipped.skip_reason) == (TickStatus.SKIPPED, "no file")
        FLAG["present"] = True
        for step in range(30, 600, 30):
            await sensors.tick(T0 + step)
        # A second loop (a restarted daemon) sees the same history.
        await loop(instance, coord, defs).tick(T0 + 700)
        [run] = await instance.get_runs()
        assert run.tags[SENSOR_NAME_TAG] == "keyed" and run.job_name == "nothing"
        ticks = await instance.schedule_storage.get_ticks(origin("keyed"))
        assert [t.run_ids for t in ticks if t.status == TickStatus.SUCCESS] == [[run.run_id]]
        assert all(t.run_keys == ["the_file"] for t in ticks[:-1])


async def test_the_cursor_is_stored_with_the_tick_and_fed_back() -> None:
    defs = Definitions(jobs=[nothing], sensors=[counting])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        sensors = loop(instance, coord, defs)
        for step in range(0, 90, 30):
            await sensors.tick(T0 + step)
        state = await instance.schedule_storage.get_instigator_state(origin("counting"))
        assert state is not None and state.cursor == "3"
        ticks = await instance.schedule_storage.get_ticks(origin("counting"))
        assert [t.cursor for t in ticks] == ["3", "2", "1"]
        runs = await instance.get_runs()
        assert sorted(r.tags["dagloom/run_key"] for r in runs) == ["n0", "n1", "n2"]


async def test_a_raising_sensor_records_a_failed_tick_and_the_loop_goes_on() -> None:
    FLAG["present"] = True
    defs = Definitions(jobs=[nothing], sensors=[raising, keyed])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        sensors = loop(instance, coord, defs)
        await sensors.tick(T0)
        await sensors.tick(T0 + 30)
        ticks = await instance.schedule_storage.get_ticks(origin("raising"))
        assert [t.status for t in ticks] == [TickStatus.FAILURE, TickStatus.FAILURE]
        assert ticks[0].error is not None
        assert "sensor 'raising' failed" in ticks[0].error.message
        assert "the sensor broke" in ticks[0].error.message
        # The other sensor ticked in the same rounds.
        assert len(await instance.get_runs()) == 1


class SlowLocation(InProcessLocation):
    """Never answers a sensor evaluation."""

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if isinstance(message, EvaluateSensorRequest):
            with anyio.fail_after(timeout):
                await anyio.sleep_forever()
        return await super().ask(message, timeout=timeout)


async def test_a_sensor_that_times_out_records_a_failed_tick() -> None:
    defs = Definitions(jobs=[nothing], sensors=[keyed])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        location = SlowLocation("here", defs)
        sensors = SensorLoop(
            instance, {"here": cast(Any, location)}, coord, owner="d", ask_timeout=0.05
        )
        with anyio.fail_after(10):
            await sensors.tick(T0)
        [tick] = await instance.schedule_storage.get_ticks(origin("keyed"))
        assert tick.status == TickStatus.FAILURE
        assert tick.error is not None and "no answer" in tick.error.message


async def test_only_running_sensors_tick() -> None:
    defs = Definitions(jobs=[nothing], sensors=[stopped])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        sensors = loop(instance, coord, defs)
        await sensors.tick(T0)
        storage = instance.schedule_storage
        assert await storage.get_ticks(origin("stopped")) == []
        state = await storage.get_instigator_state(origin("stopped"))
        assert state is not None
        await storage.set_instigator_state(toggled(state, running=True, now=T0 + 1))
        await sensors.tick(T0 + 2)
        assert len(await instance.get_runs()) == 1


class PausingLocation(InProcessLocation):
    """A location whose first sensor evaluation waits for `resume`: a daemon paused in the
    middle of a tick."""

    def __init__(self, name: str, definitions: Definitions) -> None:
        super().__init__(name, definitions)
        self.paused = anyio.Event()
        self.resume = anyio.Event()

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        if isinstance(message, EvaluateSensorRequest) and not self.paused.is_set():
            self.paused.set()
            await self.resume.wait()
        return await super().ask(message, timeout=timeout)


EVALUATIONS = [0]


@dg.sensor(job=nothing, minimum_interval_seconds=30, default_status=RUNNING)
def each_evaluation_differs(context: Any) -> dg.SensorResult:
    EVALUATIONS[0] += 1
    n = EVALUATIONS[0]
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"e{n}")], cursor=str(n))


async def test_a_daemon_paused_past_its_lease_writes_no_tick_or_cursor_after_a_takeover() -> None:
    EVALUATIONS[0] = 0
    defs = Definitions(jobs=[nothing], sensors=[each_evaluation_differs])
    async with DagloomInstance.ephemeral() as instance, storing_coordinator(instance) as coord:
        slow_location = PausingLocation("here", defs)
        slow = SensorLoop(
            instance, {"here": cast(Any, slow_location)}, coord, owner="a", lease_seconds=20
        )
        other = SensorLoop(
            instance,
            {"here": cast(Any, InProcessLocation("here", defs))},
            coord,
            owner="b",
            lease_seconds=20,
        )
        async with anyio.create_task_group() as tg:
            tg.start_soon(slow.tick, T0)  # "a" records a tick with cursor "", then pauses
            with anyio.fail_after(10):
                await slow_location.paused.wait()
            await other.tick(T0 + 25)  # "b" takes the lease over and redoes that tick
            slow_location.resume.set()  # "a" wakes and would submit, end the tick, move on
        # "b" evaluated first (e1); "a"'s later evaluation (e2) submitted and stored nothing.
        assert EVALUATIONS[0] == 2
        ticks = await instance.schedule_storage.get_ticks(origin("each_evaluation_differs"))
        assert [(t.status, t.run_keys, t.cursor) for t in ticks] == [
            (TickStatus.SUCCESS, ["e1"], "1")
        ]
        state = await instance.schedule_storage.get_instigator_state(
            origin("each_evaluation_differs")
        )
        assert state is not None and state.cursor == "1"
        assert len(await instance.get_runs()) == 1
