"""A node that hosts `daemon: {}`: its sensor loop evaluates in the real code location (warm
evaluation processes), submits to the node's coordinator, and the run succeeds, once."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import anyio
import pytest

from dagloom.daemon.daemon import Daemon
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus, TickStatus
from dagloom.topology import dev_topology
from dagloom.topology.wiring import DAEMON, RunningNode, run_node, wire_daemon
from tests.actors._runs import wait_for_end

pytestmark = pytest.mark.usefixtures("restore_import_state")

ORIGIN = "sensor:defs:once"

DEFS = """
    import dagloom as dg

    @dg.op
    def noop():
        return 1

    @dg.job
    def nothing():
        noop()

    RUNNING = dg.DefaultSensorStatus.RUNNING

    @dg.sensor(job=nothing, minimum_interval_seconds=1, default_status=RUNNING)
    def once(context):
        yield dg.RunRequest(run_key="only")
"""


async def test_a_daemon_node_launches_a_sensors_keyed_run_once(tmp_path: Path) -> None:
    source = tmp_path / "defs.py"
    source.write_text(textwrap.dedent(DEFS))
    topology = dev_topology(
        {"defs": CodeOrigin(python_file=str(source))},
        api_port=None,
        grpc_port=None,
        reload_on_change=False,
    )
    with anyio.fail_after(120):
        async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "dev", instance=instance)
            )
            daemon = node.actors[DAEMON]
            assert isinstance(daemon, Daemon)
            assert [loop.name for loop in daemon.loops] == [
                "scheduler",
                "sensors",
                "backfills",
                "lease_purge",
                "automation",
            ]
            ticks = instance.schedule_storage.get_ticks
            # The next due round finds the key's run and skips: wait for that tick.
            # Ticks have no watch in storage, so this polls (under the fail_after above).
            while TickStatus.SKIPPED not in [t.status for t in await ticks(ORIGIN)]:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            runs = await instance.get_runs()
            assert len(runs) == 1
            run = await wait_for_end(instance, runs[0].run_id)
            tg.cancel_scope.cancel()
    assert (run.job_name, run.status) == ("nothing", RunStatus.SUCCESS)


def test_dev_topology_places_a_daemon_unless_told_not_to(tmp_path: Path) -> None:
    origin = {"defs": CodeOrigin(python_file=str(tmp_path / "defs.py"))}
    assert dev_topology(origin).nodes["dev"].daemon is not None
    assert dev_topology(origin, daemon=False).nodes["dev"].daemon is None


class _NoPeers:
    """Stands in for the node's refs: the loops are only constructed, never ticked."""

    def to(self, kind: type, name: str, node: str) -> object:
        return f"{node}/{name}"


ALL_LOOPS = """
run_coordinator:
  class: QueuedRunCoordinator
  config: {max_concurrent_runs: 2}
run_monitoring: {enabled: true}
run_retries: {enabled: true}
"""


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (None, ["scheduler", "sensors", "backfills", "lease_purge", "automation"]),
        (
            "run_monitoring: {enabled: false}\nrun_retries: {enabled: false}\n"
            "auto_materialize: {enabled: false}\n",
            ["scheduler", "sensors", "backfills", "lease_purge"],
        ),
        (
            ALL_LOOPS,
            [
                "scheduler",
                "sensors",
                "backfills",
                "lease_purge",
                "run_queue",
                "run_monitoring",
                "run_retries",
                "automation",
            ],
        ),
    ],
)
async def test_the_daemon_hosts_the_loops_its_instance_config_enables(
    tmp_path: Path, config: str | None, expected: list[str]
) -> None:
    if config is not None:
        (tmp_path / "dagloom.yaml").write_text(config)
    topology = dev_topology(
        {"defs": CodeOrigin(python_file=str(tmp_path / "defs.py"))},
        api_port=None,
        grpc_port=None,
        reload_on_change=False,
    )
    async with DagloomInstance.open(tmp_path) as instance:
        daemon = wire_daemon(topology, topology.nodes["dev"], instance, _NoPeers())  # type: ignore[arg-type]
    assert daemon is not None
    assert [loop.name for loop in daemon.loops] == expected
    no_daemon = dev_topology({}, daemon=False, api_port=None, grpc_port=None)
    async with DagloomInstance.ephemeral() as instance:
        assert wire_daemon(no_daemon, no_daemon.nodes["dev"], instance, _NoPeers()) is None  # type: ignore[arg-type]
