"""Starting a node: the actors its config places on it, its addresses, and the launcher
dagloom.yaml picks when the topology names none."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import anyio
from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict, Field

from dagloom.actors.job_source import JobSource
from dagloom.actors.run_coordinator import (
    CoordinatorContext,
    DefaultRunCoordinator,
    RunCoordinatorReply,
    RunCoordinatorRequest,
)
from dagloom.actors.run_launcher import InProcessRunLauncher, LauncherContext, RunLauncher
from dagloom.actors.run_worker import RunWorker
from dagloom.api import AsyncClient
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.messages.rpc import (
    ExecuteRunReply,
    ExecuteRunRequest,
    LaunchRunReply,
    StopRunReply,
    StopRunRequest,
    SubmitRunRequest,
    TerminateRunReply,
)
from dagloom.topology import parse_topology
from dagloom.topology.dispatch import WorkerPoolRunLauncher
from dagloom.topology.wiring import RunningNode, run_node
from dagloom.transport import MemoryTransport

DEFS = Path(__file__).resolve().parents[1] / "integration" / "defs.py"


def _one_node(launcher: dict[str, str], **extra: object) -> dict[str, object]:
    node = {"coordinator": {}, "launcher": launcher, "code_locations": ["suite"], **extra}
    return {"locations": {"suite": {"python_file": str(DEFS)}}, "nodes": {"one": node}}


async def _start(data: dict[str, object]) -> tuple[RunningNode, list[str]]:
    topology = parse_topology(data)
    async with DagloomInstance.ephemeral() as instance, anyio.create_task_group() as tg:
        node: RunningNode = await tg.start(
            functools.partial(run_node, topology, "one", instance=instance)
        )
        jobs = []
        if node.api is not None:
            jobs = [j.job_name for j in await AsyncClient.in_process(node.api).list_jobs()]
        tg.cancel_scope.cancel()
    return node, jobs


async def test_without_a_kind_the_instance_picks_the_launcher() -> None:
    node, _ = await _start(_one_node({}, api={"port": None}))
    # An ephemeral instance's storage is out of other processes' reach: in-process.
    assert isinstance(node.actors["run_launcher"], InProcessRunLauncher)


async def test_a_node_hosts_what_its_config_places_on_it() -> None:
    node, jobs = await _start(
        _one_node({"kind": "worker_pool"}, api={"port": 0}, grpc_port=0, worker_pool={"workers": 2})
    )
    assert set(node.actors) == {
        "suite",
        "one.worker-0",
        "one.worker-1",
        "run_launcher",
        "run_coordinator",
        "health",
    }
    assert isinstance(node.actors["run_launcher"], WorkerPoolRunLauncher)
    assert [what for what, _ in node.addresses()] == ["public gRPC API", "actors and Health (gRPC)"]
    assert "failing_job" in jobs


# -- a user's own coordinator and launcher, named in dagloom.yaml ----------------------------

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"


class LabelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1)


class LabellingRunCoordinator(DefaultRunCoordinator):
    """A user's coordinator: tags every submitted run with its configured label."""

    config_model = LabelConfig

    def __init__(self, label: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.label = label

    @classmethod
    def from_config(  # type: ignore[override]  # a user's own config model
        cls, config: LabelConfig, context: CoordinatorContext
    ) -> LabellingRunCoordinator:
        return cls(
            config.label,
            context.instance,
            context.launcher,
            validator=context.validator,
            name=context.name,
        )

    async def handle(self, message: RunCoordinatorRequest) -> RunCoordinatorReply:
        if isinstance(message, SubmitRunRequest):
            message.tags = {**message.tags, "coordinated_by": self.label}
        return await super().handle(message)


class OwnWorkerRunLauncher(RunLauncher):
    """A user's launcher: executes each run on a run worker of its own, named by its label,
    and remembers what it launched."""

    config_model = LabelConfig
    launched: ClassVar[list[str]] = []

    def __init__(self, instance: DagloomInstance, jobs: JobSource, *, label: str, name: str):
        super().__init__(name, instance)
        self.worker = RunWorker(instance, jobs, name=f"{label}-worker", heartbeat_interval=3600)
        self._worker_ref = MemoryTransport().ref(self.worker)

    @classmethod
    def from_config(cls, config: LabelConfig, context: LauncherContext) -> OwnWorkerRunLauncher:
        return cls(context.instance, context.job_source(), label=config.label, name=context.name)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(self.worker.run)
            await self.serve(task_status=task_status)
            tg.cancel_scope.cancel()

    async def _launch(self, run_id: str) -> LaunchRunReply:
        self.launched.append(run_id)
        reply = await self._worker_ref.ask(ExecuteRunRequest(run_id=run_id))
        assert isinstance(reply, ExecuteRunReply)
        if not reply.accepted:
            return LaunchRunReply(error=reply.message)
        return LaunchRunReply(worker=self.worker.name)

    async def _terminate(self, run_id: str) -> TerminateRunReply:
        reply = await self._worker_ref.ask(StopRunRequest(run_id=run_id))
        assert isinstance(reply, StopRunReply)
        return TerminateRunReply(terminated=reply.stopped)


async def test_a_users_coordinator_and_launcher_named_in_dagloom_yaml_run_a_job(
    tmp_path: Path,
) -> None:
    (tmp_path / "dagloom.yaml").write_text(
        f"run_coordinator:\n  module: {__name__}\n  class: LabellingRunCoordinator\n"
        "  config: {label: mine}\n"
        f"run_launcher:\n  module: {__name__}\n  class: OwnWorkerRunLauncher\n"
        "  config: {label: own}\n"
    )
    topology = parse_topology(
        {
            "locations": {"numbers": {"python_file": str(EXAMPLE)}},
            "nodes": {
                "one": {
                    "api": {"port": None},
                    "coordinator": {},
                    "launcher": {},
                    "code_locations": ["numbers"],
                }
            },
        }
    )
    with anyio.fail_after(60):
        async with DagloomInstance.open(tmp_path) as instance, anyio.create_task_group() as tg:
            node: RunningNode = await tg.start(
                functools.partial(run_node, topology, "one", instance=instance)
            )
            assert isinstance(node.actors["run_coordinator"], LabellingRunCoordinator)
            assert isinstance(node.actors["run_launcher"], OwnWorkerRunLauncher)
            assert node.api is not None
            client = AsyncClient.in_process(node.api)
            run = await client.launch_run("process_numbers", location_name="numbers")
            done = await client.wait_for_run(run.run_id)
            tg.cancel_scope.cancel()
    assert done.status == RunStatus.SUCCESS
    assert done.tags["coordinated_by"] == "mine"
    assert run.run_id in OwnWorkerRunLauncher.launched


async def test_a_topologys_launcher_kind_is_a_short_name_of_the_family() -> None:
    node, _ = await _start(_one_node({"kind": "in_process"}, api={"port": None}))
    assert isinstance(node.actors["run_launcher"], InProcessRunLauncher)
