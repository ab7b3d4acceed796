"""A node whose definitions file calls `sys.exit()` keeps serving: the exit is that code
location's load error, and every other location and the API go on. A location's
`evaluation` settings reach its actor."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import anyio
import pytest

from dagloom.actors.code_location import CodeLocationServer, EvaluationSettings
from dagloom.api import AsyncClient
from dagloom.errors import ConfigError
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.topology import parse_topology
from dagloom.topology.wiring import RunningNode, run_node, wire_code_locations

DEFS = Path(__file__).resolve().parents[1] / "integration" / "defs.py"

pytestmark = pytest.mark.usefixtures("restore_import_state")


async def test_a_definitions_file_calling_sys_exit_is_its_locations_load_error_only(
    tmp_path: Path,
) -> None:
    exits = tmp_path / "exits_at_import.py"
    exits.write_text(
        textwrap.dedent(
            """
            import sys
            import dagloom as dg

            @dg.op
            def never() -> None:
                pass

            sys.exit(3)
            """
        )
    )
    topology = parse_topology(
        {
            "locations": {
                "suite": {"python_file": str(DEFS)},
                "exits": {"python_file": str(exits)},
            },
            "nodes": {
                "one": {
                    "api": {"port": None},
                    "coordinator": {},
                    "launcher": {},
                    "code_locations": ["exits", "suite"],
                }
            },
        }
    )
    with anyio.fail_after(60):
        async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "one", instance=instance)
            )
            assert node.api is not None
            client = AsyncClient.in_process(node.api)
            jobs = {(j.location_name, j.job_name) for j in await client.list_jobs()}
            run = await client.launch_run(
                "configured_job",
                location_name="suite",
                run_config={"ops": {"count_to": {"config": {"limit": 3}}}},
            )
            ended = await client.wait_for_run(run.run_id)
            location = node.actors["exits"]
            assert isinstance(location, CodeLocationServer)
            load_error = location.snapshot.load_error
            tg.cancel_scope.cancel()
    assert ("suite", "configured_job") in jobs
    assert not any(name == "exits" for name, _ in jobs)
    assert ended.status == RunStatus.SUCCESS
    assert load_error is not None
    expected = f"could not load {exits}: it called sys.exit(3) while being imported"
    assert load_error.message == expected
    assert load_error.cause is not None and load_error.cause.cls_name == "SystemExit"


def test_a_location_sets_how_it_evaluates_schedules_and_sensors() -> None:
    data = {
        "locations": {
            "slow": {"python_file": str(DEFS), "evaluation": {"timeout_seconds": 900}},
            "plain": {"python_file": str(DEFS)},
        },
        "nodes": {
            "one": {
                "api": {"port": None},
                "coordinator": {},
                "launcher": {},
                "code_locations": ["slow", "plain"],
            }
        },
    }
    topology = parse_topology(data)
    slow, plain = wire_code_locations(topology, topology.nodes["one"])
    assert slow.evaluation == EvaluationSettings(timeout_seconds=900.0, processes=2)
    assert plain.evaluation == EvaluationSettings(timeout_seconds=60.0, processes=2)


def test_a_timeout_that_is_not_positive_is_refused_with_its_key_path() -> None:
    data = {
        "locations": {"slow": {"python_file": str(DEFS), "evaluation": {"timeout_seconds": 0}}},
        "nodes": {"one": {"code_locations": ["slow"]}},
    }
    with pytest.raises(ConfigError) as caught:
        parse_topology(data)
    assert "locations.slow.evaluation.timeout_seconds" in caught.value.key_paths
