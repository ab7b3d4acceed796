"""Daemon throughput: queued runs admitted and launched per second by `RunQueueLoop`, and
sensor ticks evaluated per second by `SensorLoop`, each against a baseline of the same
storage writes measured in the same run.

Workloads:

    queue       N runs of a one-op job submitted to a `QueuedRunCoordinator` that admits
                nothing itself (`max_concurrent_runs: 0`), so they are stored QUEUED; then a
                `RunQueueLoop` (its own `max_concurrent_runs`) ticks until every run has
                ended. Timed from the first tick to the last run's end. One process: the
                coordinator, launcher and code location of a node on the memory transport,
                SQLite under a temp dir. The launcher is `warm_pool` (worker processes
                started once) unless `--launcher` says otherwise.
    queue_floor the same number of runs through the bare storage writes of the run
                lifecycle, no actors: create the run QUEUED, then RUN_STARTING, RUN_START and
                RUN_SUCCESS transitions.
    sensors     100 sensors (RUNNING by default, each returning a skip reason and a new
                cursor) ticked by a `SensorLoop` for R rounds, each round at a `now` one
                minimum interval later so every sensor is due; evaluations run in the code
                location. Rate = ticks / second.
    sensors_floor the same number of ticks as bare storage writes: create the tick STARTED,
                finish it SKIPPED with its cursor, store the sensor's cursor.
    backfill    a backfill of 1,000 daily partitions of one asset, submitted by a
                `BackfillLoop` to a `QueuedRunCoordinator` that admits nothing (each run is
                validated against the code location and stored QUEUED). Timed from the first
                round to the backfill being COMPLETED. Rate = runs submitted / second.
    backfill_floor the same number of runs as bare storage writes: create each run QUEUED.
    automation  5,000 assets (50 chains of 100, each asset eager on the one before), every
                one materialized in SQLite; after 3 warm-up rounds an `AutomationLoop` ticks R
                rounds, each evaluating every asset's condition (snapshot read, records
                read, evaluation, state write). Rate = assets evaluated / second. Also
                reported: the pure evaluation's share of a round, and one full evaluation of
                every condition with no previous result reused (what a round costs when
                every asset's inputs changed).
    automation_floor the same rounds as bare reads of what a round reads: the latest
                materialization of every asset partition, the unfinished and recent runs,
                and the stored automation state.

    python -m benchmarks daemon [--only W] [--runs N] [--rounds R] [--launcher L] [--json PATH]
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import structlog
import yaml

DEFS = Path(__file__).with_name("_launch_defs.py")
BACKFILL_DEFS = Path(__file__).with_name("_backfill_defs.py")
BACKFILL_PARTITIONS = 1000
BACKFILL_TARGET = 1.0
"""Backfill runs submitted per second: Dagster users report about one run per second."""
RUNS = 500
ROUNDS = 5
SENSORS = 100
SENSOR_INTERVAL = 30
MAX_CONCURRENT = 50
QUEUE_TARGET = 200.0
"""Queued runs admitted, launched and ended per second (Dagster's reported backfill
throughput is about 1 run/s)."""

SENSOR_DEFS = """
import dagloom as dg

def _make(index):
    @dg.sensor(
        name=f"sensor_{index}",
        job=one_op,
        minimum_interval_seconds=INTERVAL,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context):
        cursor = int(context.cursor or 0) + 1
        return dg.SensorResult(skip_reason="nothing new", cursor=str(cursor))

    return _sensor

@dg.op
def one() -> int:
    return 1

@dg.job
def one_op():
    one()

defs = dg.Definitions(jobs=[one_op], sensors=[_make(i) for i in range(COUNT)])
"""


def _write_home(root: Path, config: dict[str, Any]) -> Path:
    home = root / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(yaml.safe_dump(config))
    return home


def _topology(home: Path, location: Path, launcher: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "coordinator": {},
        "launcher": {"kind": launcher, "size": 2},
        "api": {"port": None},
        "code_locations": ["one"],
    }
    return {
        "instance": {"home": str(home)},
        "locations": {"one": {"python_file": str(location)}},
        "nodes": {"all": node},
    }


async def measure_queue(runs: int, launcher: str, max_concurrent: int) -> float:
    """Seconds for a `RunQueueLoop` to admit `runs` queued runs and see them all end."""
    from dagloom.api import AsyncClient
    from dagloom.daemon.queue_loop import RunQueueLoop
    from dagloom.messages import RunStatus
    from dagloom.storage import RunsFilter
    from dagloom.topology import parse_topology
    from dagloom.topology.wiring import LAUNCHER, run_node
    from dagloom.transport import MemoryTransport

    ended = [RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED]
    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        coordinator = {
            "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": 0, "dequeue_interval_seconds": 3600},
        }
        home = _write_home(Path(tmp), {"run_coordinator": coordinator})
        topology = parse_topology(_topology(home, DEFS, launcher))
        memory = MemoryTransport()
        async with anyio.create_task_group() as tg:
            node = await tg.start(functools.partial(run_node, topology, "all", memory=memory))
            client = AsyncClient.in_process(node.api)
            for _ in range(runs):
                await client.launch_run("one_op", location_name="one")
            instance = node.instance
            queued = await instance.get_runs_count(RunsFilter(statuses=[RunStatus.QUEUED]))
            if queued != runs:
                raise RuntimeError(f"expected {runs} queued runs, found {queued}")
            loop = RunQueueLoop(
                instance, memory.ref(node.actors[LAUNCHER]), max_concurrent_runs=max_concurrent
            )
            start = time.perf_counter()
            done = 0
            while done < runs:
                await loop.tick(time.time())
                done = await instance.get_runs_count(RunsFilter(statuses=ended))
                if not loop.launched and done < runs:
                    await anyio.sleep(0.002)  # nothing admitted: runs are still executing
            elapsed = time.perf_counter() - start
            succeeded = await instance.get_runs_count(RunsFilter(statuses=[RunStatus.SUCCESS]))
            tg.cancel_scope.cancel()
    if succeeded != runs:
        raise RuntimeError(f"only {succeeded} of {runs} runs succeeded")
    return elapsed


async def measure_queue_floor(runs: int) -> float:
    """Seconds for the bare lifecycle writes of `runs` runs on SQLite."""
    from dagloom.instance import DagloomInstance
    from dagloom.messages import Event, EventType, Run, RunStatus

    lifecycle = (EventType.RUN_STARTING, EventType.RUN_START, EventType.RUN_SUCCESS)
    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            start = time.perf_counter()
            for _ in range(runs):
                run = await instance.create_run(Run(job_name="one_op", status=RunStatus.QUEUED))
                for kind in lifecycle:
                    moved = await instance.transition_run(run.run_id, Event(event_type=kind))
                    if not moved.applied:
                        raise RuntimeError(f"{kind.name} refused for {run.run_id}")
            return time.perf_counter() - start


async def measure_backfill(partitions: int) -> float:
    """Seconds for a `BackfillLoop` to submit a backfill of `partitions` daily partitions;
    checks every partition got exactly one run."""
    from dagloom.daemon.backfill_loop import BackfillLoop
    from dagloom.messages import AssetKeyMessage, Backfill, BackfillStatus, RunStatus
    from dagloom.storage import RunsFilter
    from dagloom.topology import parse_topology
    from dagloom.topology.wiring import COORDINATOR, run_node
    from dagloom.transport import MemoryTransport

    days = [
        (datetime(2020, 1, 1) + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(partitions)
    ]
    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        coordinator = {
            "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": 0, "dequeue_interval_seconds": 3600},
        }
        home = _write_home(Path(tmp), {"run_coordinator": coordinator})
        topology = parse_topology(_topology(home, BACKFILL_DEFS, "in_process"))
        memory = MemoryTransport()
        async with anyio.create_task_group() as tg:
            node = await tg.start(functools.partial(run_node, topology, "all", memory=memory))
            instance = node.instance
            await instance.run_storage.add_backfill(
                Backfill(
                    backfill_id="bench",
                    status=BackfillStatus.REQUESTED,
                    location_name="one",
                    job_name="__ASSET_JOB",
                    asset_selection=[AssetKeyMessage(path=["daily_value"])],
                    partition_keys=days,
                    partitions_per_run=1,
                    run_config_json="{}",
                    create_time=time.time(),
                )
            )
            loop = BackfillLoop(instance, memory.ref(node.actors[COORDINATOR]), owner="bench")
            start = time.perf_counter()
            while True:
                await loop.tick(time.time())
                stored = await instance.run_storage.get_backfill("bench")
                if stored is not None and stored.status != BackfillStatus.REQUESTED:
                    break
            elapsed = time.perf_counter() - start
            queued = await instance.get_runs(RunsFilter(statuses=[RunStatus.QUEUED]))
            tg.cancel_scope.cancel()
    if stored.status != BackfillStatus.COMPLETED:
        raise RuntimeError(f"the backfill ended {stored.status.name}: {stored.error}")
    found = sorted(r.tags.get("dagster/partition", "") for r in queued)
    if found != days:
        raise RuntimeError(f"expected one run per partition, found {len(found)} runs")
    return elapsed


async def measure_backfill_floor(partitions: int) -> float:
    """Seconds to store `partitions` QUEUED runs on SQLite, nothing else."""
    from dagloom.instance import DagloomInstance
    from dagloom.messages import Run, RunStatus

    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            start = time.perf_counter()
            for i in range(partitions):
                await instance.create_run(
                    Run(job_name="__ASSET_JOB", status=RunStatus.QUEUED, tags={"i": str(i)})
                )
            return time.perf_counter() - start


async def measure_sensors(rounds: int) -> float:
    """Seconds for `rounds` sensor-loop rounds over `SENSORS` due sensors; checks every
    tick was recorded and every cursor advanced."""
    from dagloom.daemon.sensors import SensorLoop
    from dagloom.messages import TickStatus
    from dagloom.topology import parse_topology
    from dagloom.topology.wiring import COORDINATOR, run_node
    from dagloom.transport import MemoryTransport

    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        source = Path(tmp) / "sensor_defs.py"
        defs = textwrap.dedent(SENSOR_DEFS)
        defs = defs.replace("INTERVAL", str(SENSOR_INTERVAL)).replace("COUNT", str(SENSORS))
        source.write_text(defs)
        home = _write_home(Path(tmp), {})
        topology = parse_topology(_topology(home, source, "in_process"))
        memory = MemoryTransport()
        async with anyio.create_task_group() as tg:
            node = await tg.start(functools.partial(run_node, topology, "all", memory=memory))
            loop = SensorLoop(
                node.instance,
                {"one": memory.ref(node.actors["one"])},
                memory.ref(node.actors[COORDINATOR]),
                owner="benchmark",
            )
            now = time.time()
            await loop.tick(now)  # warm-up: loads the snapshot, stores the states
            start = time.perf_counter()
            for _ in range(rounds):
                now += SENSOR_INTERVAL
                await loop.tick(now)
            elapsed = time.perf_counter() - start
            storage = node.instance.schedule_storage
            states = await storage.get_instigator_states()
            skipped = 0
            for state in states:
                ticks = await storage.get_ticks(state.origin_id, limit=rounds + 1)
                skipped += sum(t.status == TickStatus.SKIPPED for t in ticks)
            tg.cancel_scope.cancel()
    if skipped != SENSORS * (rounds + 1):
        raise RuntimeError(f"expected {SENSORS * (rounds + 1)} skipped ticks, found {skipped}")
    return elapsed


async def measure_sensors_floor(rounds: int) -> float:
    """Seconds for the bare tick and cursor writes of `rounds` rounds of `SENSORS` ticks."""
    from dagloom.daemon._submit import finished
    from dagloom.instance import DagloomInstance
    from dagloom.messages import (
        InstigatorState,
        InstigatorStatus,
        InstigatorType,
        Tick,
        TickStatus,
    )

    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            storage = instance.schedule_storage
            origins = [f"sensor:one:sensor_{i}" for i in range(SENSORS)]
            for index, origin in enumerate(origins):
                await storage.set_instigator_state(
                    InstigatorState(
                        origin_id=origin,
                        name=f"sensor_{index}",
                        instigator_type=InstigatorType.SENSOR,
                        status=InstigatorStatus.RUNNING,
                    )
                )
            now = time.time()
            start = time.perf_counter()
            for round_ in range(rounds):
                now += SENSOR_INTERVAL
                for index, origin in enumerate(origins):
                    tick = await storage.create_tick(
                        Tick(
                            origin_id=origin,
                            instigator_name=f"sensor_{index}",
                            instigator_type=InstigatorType.SENSOR,
                            status=TickStatus.STARTED,
                            timestamp=now,
                            cursor=str(round_),
                        )
                    )
                    ended = finished(
                        tick, now=now, run_ids=[], run_keys=[], skip_reason="nothing new"
                    )
                    ended.cursor = str(round_ + 1)
                    await storage.update_tick(ended)
                    await storage.set_sensor_cursor(origin, str(round_ + 1))
            return time.perf_counter() - start


AUTOMATION_CHAINS = 50
AUTOMATION_DEPTH = 100


def _automation_defs() -> Any:
    """`AUTOMATION_CHAINS` chains of `AUTOMATION_DEPTH` eager assets."""
    import dagloom as dg

    assets = []
    for chain in range(AUTOMATION_CHAINS):
        for depth in range(AUTOMATION_DEPTH):
            deps = [f"a_{chain}_{depth - 1}"] if depth else []
            spec = dg.AssetSpec(
                f"a_{chain}_{depth}",
                deps=deps,
                automation_condition=dg.AutomationCondition.eager(),
            )
            assets.append(spec)

    @dg.multi_asset(specs=assets, can_subset=True)
    def everything() -> None:
        return None

    return dg.Definitions(assets=[everything])


class _SnapshotRef:
    """A code location ref that answers snapshot requests from a prepared snapshot."""

    def __init__(self, snapshot: Any) -> None:
        self.snapshot = snapshot

    async def ask(self, message: Any, *, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        await anyio.lowlevel.checkpoint()
        return self.snapshot


async def _materialize_all(instance: Any, keys: Sequence[str]) -> None:
    from dagloom.messages import AssetKeyMessage, AssetMaterializationData, Event, EventType

    events = [
        Event(
            run_id="seed",
            event_type=EventType.ASSET_MATERIALIZATION,
            step_key="everything",
            timestamp=1.0,
            asset_materialization=AssetMaterializationData(asset_key=AssetKeyMessage(path=[k])),
        )
        for k in keys
    ]
    for start in range(0, len(events), 500):
        await instance.event_log_storage.store_events(events[start : start + 500])


async def measure_automation(rounds: int) -> tuple[float, float, float]:
    """Seconds for `rounds` automation-loop rounds over every asset, and the seconds of
    those spent in the pure evaluation; checks every asset was evaluated each round."""
    from dagloom.code.snapshot import location_snapshot
    from dagloom.daemon import _automation
    from dagloom.daemon.automation_loop import AutomationLoop
    from dagloom.instance import DagloomInstance

    snapshot = location_snapshot(_automation_defs(), location_name="one", loaded_at=0.0)
    keys = [a.key.path[0] for a in snapshot.assets if a.key is not None]
    evaluated = 0
    spent = 0.0
    original = _automation.evaluate_automation

    def timed(*args: Any, **kwargs: Any) -> Any:
        nonlocal evaluated, spent
        began = time.perf_counter()
        result = original(*args, **kwargs)
        spent += time.perf_counter() - began
        evaluated += len(result.evaluations)
        return result

    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            await _materialize_all(instance, keys)
            loop = AutomationLoop(
                instance, {"one": _SnapshotRef(snapshot)}, _SnapshotRef(None), owner="benchmark"
            )
            now = time.time()
            for _ in range(3):  # warm-up: the initial evaluation, then the states settle
                now += 30
                await loop.tick(now)
            from dagloom.daemon import automation_loop

            automation_loop.evaluate_automation = timed  # type: ignore[attr-defined]
            try:
                start = time.perf_counter()
                for _ in range(rounds):
                    now += 30
                    await loop.tick(now)
                elapsed = time.perf_counter() - start
            finally:
                automation_loop.evaluate_automation = original  # type: ignore[attr-defined]
            full = _full_evaluation(snapshot, loop, now + 30)
    if evaluated != len(keys) * rounds:
        raise RuntimeError(f"expected {len(keys) * rounds} evaluations, found {evaluated}")
    return elapsed, spent, full


def _full_evaluation(snapshot: Any, loop: Any, now: float) -> float:
    """Seconds for one evaluation of every asset with no previous result reused."""
    import dataclasses

    from dagloom.daemon._automation import AssetRecords, evaluate_automation
    from dagloom.daemon.automation_loop import automation_graph

    graph = automation_graph([snapshot])
    cursors = {k: dataclasses.replace(c, stable=False) for k, c in loop._cursors.items()}
    records = {
        a.key: AssetRecords(materialized=loop._materialized.get(a.key, {})) for a in graph.assets
    }
    start = time.perf_counter()
    result = evaluate_automation(graph.assets, records, cursors, now)
    elapsed = time.perf_counter() - start
    if any(e.reused for e in result.evaluations.values()):
        raise RuntimeError("a full evaluation reused a result")
    return elapsed


async def measure_automation_floor(rounds: int) -> float:
    """Seconds for the bare reads of `rounds` automation rounds."""
    from dagloom.daemon.automation_loop import _UNFINISHED
    from dagloom.instance import DagloomInstance
    from dagloom.storage.automation import AutomationStorage
    from dagloom.storage.base import RunsFilter

    keys = [f"a_{c}_{d}" for c in range(AUTOMATION_CHAINS) for d in range(AUTOMATION_DEPTH)]
    with tempfile.TemporaryDirectory(prefix="dagloom-daemon-") as tmp:
        async with DagloomInstance.open(Path(tmp)) as instance:
            await _materialize_all(instance, keys)
            storage = instance.schedule_storage
            assert isinstance(storage, AutomationStorage)
            await storage.store_automation_tick({k: "{}" for k in keys}, [])
            start = time.perf_counter()
            for _ in range(rounds):
                found = await instance.event_log_storage.get_latest_materialization_ids()
                await instance.run_storage.get_runs(RunsFilter(statuses=list(_UNFINISHED)))
                await instance.run_storage.get_runs(limit=500)
                await storage.get_automation_state()
            elapsed = time.perf_counter() - start
    if len(found) != len(keys):
        raise RuntimeError(f"expected {len(keys)} assets read, found {len(found)}")
    return elapsed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks daemon", description=__doc__)
    parser.add_argument("--runs", type=int, default=RUNS, help="queued runs to admit")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="sensor-loop rounds")
    parser.add_argument(
        "--launcher",
        default="warm_pool",
        choices=("warm_pool", "in_process"),
        help="the run launcher the queued runs go to",
    )
    parser.add_argument(
        "--max-concurrent", type=int, default=MAX_CONCURRENT, help="the queue loop's limit"
    )
    parser.add_argument("--json", type=Path, help="also write the records here")
    parser.add_argument(
        "--only",
        action="append",
        choices=("queue", "sensors", "backfill", "automation"),
        help="run only these workloads (repeatable; default: all)",
    )
    ns = parser.parse_args(argv)
    only = set(ns.only or ("queue", "sensors", "backfill"))
    # Per-tick debug lines would be part of what is timed: keep warnings and errors only.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    records: list[dict[str, Any]] = []
    if "queue" in only:
        queue = anyio.run(measure_queue, ns.runs, ns.launcher, ns.max_concurrent)
        queue_floor = anyio.run(measure_queue_floor, ns.runs)
        records.append(
            {
                "workload": f"queue/{ns.launcher}",
                "items": ns.runs,
                "seconds": queue,
                "per_second": ns.runs / queue,
                "floor_per_second": ns.runs / queue_floor,
                "target_per_second": QUEUE_TARGET,
            }
        )
    if "sensors" in only:
        sensors = anyio.run(measure_sensors, ns.rounds)
        sensors_floor = anyio.run(measure_sensors_floor, ns.rounds)
        ticks = SENSORS * ns.rounds
        records.append(
            {
                "workload": "sensors",
                "items": ticks,
                "seconds": sensors,
                "per_second": ticks / sensors,
                "floor_per_second": ticks / sensors_floor,
                "target_per_second": None,
            }
        )
    if "automation" in only:
        automation, evaluating, full = anyio.run(measure_automation, ns.rounds)
        automation_floor = anyio.run(measure_automation_floor, ns.rounds)
        evaluated = AUTOMATION_CHAINS * AUTOMATION_DEPTH * ns.rounds
        records.append(
            {
                "workload": "automation",
                "items": evaluated,
                "seconds": automation,
                "per_second": evaluated / automation,
                "floor_per_second": evaluated / automation_floor,
                "target_per_second": None,
                "seconds_per_tick": automation / ns.rounds,
                "evaluation_seconds_per_tick": evaluating / ns.rounds,
                "floor_seconds_per_tick": automation_floor / ns.rounds,
                "full_evaluation_seconds": full,
            }
        )
    if "backfill" in only:
        backfill = anyio.run(measure_backfill, BACKFILL_PARTITIONS)
        backfill_floor = anyio.run(measure_backfill_floor, BACKFILL_PARTITIONS)
        records.append(
            {
                "workload": "backfill",
                "items": BACKFILL_PARTITIONS,
                "seconds": backfill,
                "per_second": BACKFILL_PARTITIONS / backfill,
                "floor_per_second": BACKFILL_PARTITIONS / backfill_floor,
                "target_per_second": BACKFILL_TARGET,
            }
        )
    print(f"{'workload':<20} {'items':>6} {'per s':>10} {'floor per s':>12} {'ratio':>7}  target")
    for r in records:
        ratio = r["floor_per_second"] / r["per_second"]
        target = r["target_per_second"]
        verdict = (
            "-"
            if target is None
            else f">= {target:.0f}/s {'PASS' if r['per_second'] >= target else 'FAIL'}"
        )
        print(
            f"{r['workload']:<20} {r['items']:>6} {r['per_second']:>10.1f} "
            f"{r['floor_per_second']:>12.1f} {ratio:>6.1f}x  {verdict}"
        )
    print("ratio = floor rate / dagloom rate (how many times slower than the bare writes)")
    for r in records:
        if "seconds_per_tick" in r:
            print(
                f"{r['workload']}: {r['seconds_per_tick'] * 1000:.0f} ms per tick "
                f"({r['evaluation_seconds_per_tick'] * 1000:.0f} ms evaluating), "
                f"reads alone {r['floor_seconds_per_tick'] * 1000:.0f} ms; one full "
                f"evaluation (nothing reused) {r['full_evaluation_seconds'] * 1000:.0f} ms"
            )
    if ns.json is not None:
        ns.json.write_text(json.dumps(records, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
