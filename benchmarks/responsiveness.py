"""Responsiveness: the public API's GetRun latency in `dagloom dev` while a run's ops hold
their thread, against the same call on the idle server, in one run.

The benchmark starts `dagloom dev -f benchmarks/_responsiveness_defs.py` (every actor in one
process, on its event loop; runs launched in-process; SQLite in a fresh `$DAGLOOM_HOME`)
and is a client of its public gRPC API from this process, as a user's script or UI would be.

    idle   GetRun of a finished run, back to back, on the idle server (half the calls
           before the run, half after it)
    sleep  the same calls while a run's sync op sleeps (`time.sleep`)
    busy   the same calls while the run's other sync op spins on the CPU
    loaded sleep and busy together: the row the target applies to

The calls go on, back to back, from just before the run is launched until a follower of
its events (`wait_for_run`, as `dagloom job launch` does) has seen it end.
A call counts for the window of each op that executed while it was under way (from the
run's STEP_START / STEP_SUCCESS timestamps, read afterwards): a call blocked behind an op
is answered only once the op has ended. The target: loaded p99 <= 20 ms.
The ratio column is each row's p99 over idle's.

    python -m benchmarks responsiveness [--seconds S] [--idle-calls N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFS = Path(__file__).with_name("_responsiveness_defs.py")
LOCATION = DEFS.stem
SECONDS = 5.0
IDLE_CALLS = 1000
TARGET_P99 = 0.020
START_TIMEOUT = 120.0


@dataclass(frozen=True, slots=True)
class Row:
    """GetRun latencies of one window, in seconds."""

    window: str
    calls: int
    p50_s: float
    p99_s: float
    max_s: float

    @classmethod
    def of(cls, window: str, latencies: Sequence[float]) -> Row:
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] if ordered else 0.0
        return cls(
            window,
            len(ordered),
            statistics.median(ordered) if ordered else 0.0,
            p99,
            ordered[-1] if ordered else 0.0,
        )


def start_dev(home: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `dagloom dev` on `home` with its API on a free port; return it and the API's
    address once it says it is ready."""
    command = [
        sys.executable,
        "-m",
        "dagloom.cli",
        "dev",
        "-f",
        str(DEFS),
        "--host",
        "127.0.0.1",
        "--api-port",
        "0",
        "--grpc-port",
        "0",
        "--port",
        "0",
    ]
    env = {**os.environ, "DAGLOOM_HOME": str(home)}
    log = (home / "dev.log").open("w")
    dev = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    assert dev.stdout is not None
    address = ""
    deadline = time.monotonic() + START_TIMEOUT
    # Reading its stdout blocks this thread, which has nothing else to do until dev serves.
    for line in dev.stdout:
        if "public gRPC API listening on" in line:
            address = line.rsplit(" ", 1)[-1].strip()
        if line.strip().endswith("ready") or time.monotonic() > deadline:
            break
    if not address:
        dev.kill()
        raise RuntimeError(f"dagloom dev did not start:\n{(home / 'dev.log').read_text()}")
    return dev, address


def stop_dev(dev: subprocess.Popen[str]) -> None:
    dev.send_signal(signal.SIGTERM)
    try:
        dev.wait(timeout=60)
    except subprocess.TimeoutExpired:
        dev.kill()
        dev.wait()


async def measure(address: str, seconds: float, idle_calls: int) -> dict[str, list[float]]:
    """The GetRun latencies of each window, measured against the dev server at `address`."""
    from dagloom.api import AsyncClient
    from dagloom.messages import EventType, RunStatus

    clock = time.perf_counter
    async with AsyncClient.connect(address) as client:
        warm = await client.launch_run("one_op", location_name=LOCATION)
        if (await client.wait_for_run(warm.run_id)).status != RunStatus.SUCCESS:
            raise RuntimeError("the warm-up run did not succeed")
        idle: list[float] = []

        async def idle_calls_now(calls: int) -> None:
            for _ in range(calls):
                start = clock()
                await client.get_run(warm.run_id)
                idle.append(clock() - start)

        # Half the idle calls before the run and half after, so load that comes and goes on
        # a shared machine falls on both sides alike.
        await idle_calls_now(idle_calls // 2)

        # The same call, back to back, from before the launch until the run has ended:
        # whatever the ops hold up, launching included, is in some call's latency.
        samples: list[tuple[float, float]] = []  # (wall time sent, latency)
        ended = anyio.Event()

        async def probe() -> None:
            while not ended.is_set():
                sent = time.time()
                start = clock()
                await client.get_run(warm.run_id)
                samples.append((sent, clock() - start))

        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            run = await client.launch_run(
                "hold_the_thread",
                location_name=LOCATION,
                run_config={
                    "ops": {
                        "sleep_op": {"config": {"seconds": seconds}},
                        "busy_op": {"config": {"seconds": seconds}},
                    }
                },
            )
            done = await client.wait_for_run(run.run_id)
            ended.set()
        if done.status != RunStatus.SUCCESS:
            raise RuntimeError(f"run {run.run_id} ended {done.status.name}")
        await idle_calls_now(idle_calls - idle_calls // 2)
        windows: dict[str, list[float]] = {}
        started: dict[str, float] = {}
        async for record in client.stream_events(run.run_id):
            event = record.event
            if event is None:
                continue
            if event.event_type == EventType.STEP_START:
                started[event.step_key] = event.timestamp
            elif event.event_type == EventType.STEP_SUCCESS:
                windows[event.step_key] = [started[event.step_key], event.timestamp]
    out: dict[str, list[float]] = {"idle": idle, "sleep": [], "busy": [], "loaded": []}
    for sent, latency in samples:
        # A call counts for each op it overlapped: one blocked behind an op is answered
        # only once the op has ended, however early it was sent.
        hit = [
            name
            for name, step in (("sleep", "sleep_op"), ("busy", "busy_op"))
            if sent <= windows[step][1] and sent + latency >= windows[step][0]
        ]
        for name in hit:
            out[name].append(latency)
        if hit:
            out["loaded"].append(latency)
    return out


def print_table(rows: Sequence[Row]) -> None:
    idle = next(r for r in rows if r.window == "idle")
    header = ("window", "calls", "p50_ms", "p99_ms", "max_ms", "p99 ratio", "target")
    lines = [header]
    for r in rows:
        target = ""
        if r.window == "loaded":
            met = "PASS" if r.calls and r.p99_s <= TARGET_P99 else "FAIL"
            target = f"p99 <= {TARGET_P99 * 1e3:g} ms: {met}"
        ratio = f"{r.p99_s / idle.p99_s:.1f}x" if idle.p99_s and r is not idle else ""
        lines.append(
            (
                r.window,
                str(r.calls),
                f"{r.p50_s * 1e3:.3f}",
                f"{r.p99_s * 1e3:.3f}",
                f"{r.max_s * 1e3:.3f}",
                ratio,
                target,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks responsiveness",
        description="GetRun latency in `dagloom dev` while a run's ops hold their thread",
    )
    parser.add_argument(
        "--seconds", type=float, default=SECONDS, help=f"each op's hold (default {SECONDS:g})"
    )
    parser.add_argument(
        "--idle-calls", type=int, default=IDLE_CALLS, help="GetRun calls on the idle server"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows here")
    ns = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="dagloom-responsiveness-") as tmp:
        dev, address = start_dev(Path(tmp))
        try:
            latencies = anyio.run(measure, address, ns.seconds, ns.idle_calls, backend="asyncio")
        finally:
            stop_dev(dev)
    rows = [Row.of(w, latencies[w]) for w in ("idle", "sleep", "busy", "loaded")]
    print(
        f"GetRun through the public API of `dagloom dev` while a run's sync ops hold their "
        f"thread {ns.seconds:g} s each; load average {_load()}"
    )
    print_table(rows)
    if ns.json:
        records: list[dict[str, Any]] = [asdict(r) for r in rows]
        ns.json.write_text(json.dumps(records, indent=2) + "\n")
    loaded = next(r for r in rows if r.window == "loaded")
    return 0 if loaded.calls and loaded.p99_s <= TARGET_P99 else 1


def _load() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
