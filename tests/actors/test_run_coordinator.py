"""Run coordinators: validate before storing, launch at once or admit queued runs in order."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest

from dagloom.actors.job_source import DefinitionsJobSource
from dagloom.actors.run_coordinator import (
    REQUEST_ID_TAG,
    DefaultRunCoordinator,
    QueuedRunCoordinator,
    build_run_coordinator,
    submission_run_id,
    submit_run,
)
from dagloom.actors.run_launcher import InProcessRunLauncher
from dagloom.code.loader import load_definitions
from dagloom.code.snapshot import job_snapshot
from dagloom.daemon import QueuedRun, TagConcurrencyLimit, runs_to_admit
from dagloom.definitions import Definitions
from dagloom.errors import ConfigError, DefinitionError, StorageError
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, RunStatus
from dagloom.messages.rpc import (
    AdmitRunsRequest,
    CancelRunReply,
    CancelRunRequest,
    SubmitRunRequest,
    ValidateRunReply,
)
from dagloom.transport import MemoryTransport

from ._flaky import Slow
from ._runs import (
    EXAMPLE,
    GATES,
    ORDER,
    STARTED,
    fresh_gates,
    running_stack,
    seed_definitions,
    stored_output,
    wait_for_end,
)

JOBS = DefinitionsJobSource({"empty": Definitions()})

# -- admission, without an event loop -------------------------------------------------------


def queued(*ids: str, **tags: str) -> list[QueuedRun]:
    return [QueuedRun(i, dict(tags)) for i in ids]


def test_admission_fills_free_slots_in_submission_order() -> None:
    assert runs_to_admit(queued("a", "b", "c"), [{}], max_concurrent_runs=3) == ["a", "b"]


def test_admission_without_a_limit_admits_everything() -> None:
    assert runs_to_admit(queued("a", "b"), [{}] * 50, max_concurrent_runs=None) == ["a", "b"]
    assert runs_to_admit(queued("a"), [{}] * 50, max_concurrent_runs=-1) == ["a"]


def test_a_full_queue_admits_nothing() -> None:
    assert runs_to_admit(queued("a"), [{}, {}], max_concurrent_runs=1) == []


def test_a_tag_limit_holds_its_runs_and_lets_others_pass() -> None:
    limit = TagConcurrencyLimit("db", 1)
    runs = [QueuedRun("a", {"db": "x"}), QueuedRun("b", {"db": "y"}), QueuedRun("c", {})]
    assert runs_to_admit(runs, [{"db": "z"}], max_concurrent_runs=10, tag_limits=[limit]) == ["c"]


def test_a_per_value_tag_limit_counts_each_value_apart() -> None:
    limit = TagConcurrencyLimit("db", 1, per_value=True)
    runs = [QueuedRun("a", {"db": "x"}), QueuedRun("b", {"db": "x"}), QueuedRun("c", {"db": "y"})]
    assert runs_to_admit(runs, [], max_concurrent_runs=None, tag_limits=[limit]) == ["a", "c"]


def test_a_tag_value_limit_only_counts_that_value() -> None:
    limit = TagConcurrencyLimit("db", 1, value="x")
    runs = [QueuedRun("a", {"db": "x"}), QueuedRun("b", {"db": "y"})]
    assert runs_to_admit(runs, [{"db": "x"}], max_concurrent_runs=None, tag_limits=[limit]) == ["b"]


# -- the actors -------------------------------------------------------------------------------


async def test_the_seed_job_submitted_to_the_default_coordinator_succeeds_with_55(
    tmp_path: Path,
) -> None:
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance:
            async with running_stack(instance, tmp_path) as (coordinator, _):
                run = await submit_run(
                    coordinator,
                    SubmitRunRequest(location_name="numbers", job_name="process_numbers"),
                )
                assert run.code_location == "numbers"
                ended = await wait_for_end(instance, run.run_id)
            assert ended.status == RunStatus.SUCCESS
            # The run keeps the snapshot id of the job it was validated against.
            seed = load_definitions(python_file=EXAMPLE).get_job_def("process_numbers")
            assert ended.job_snapshot_id == job_snapshot(seed).snapshot_id
            types = [r.event.event_type for r in await instance.get_events(run.run_id)]
            assert types[0] == EventType.RUN_STARTING
            assert EventType.RUN_START in types and types[-1] == EventType.RUN_SUCCESS
    assert stored_output(tmp_path, run.run_id, "sum_two_sums") == 55


async def test_a_failing_step_ends_the_run_as_failure(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance:
            async with running_stack(instance, tmp_path) as (coordinator, _):
                run = await submit_run(coordinator, SubmitRunRequest(job_name="failing"))
                ended = await wait_for_end(instance, run.run_id)
            assert ended.status == RunStatus.FAILURE
            events = [r.event for r in await instance.get_events(run.run_id)]
            failure = next(e for e in events if e.event_type == EventType.STEP_FAILURE)
            assert "the op broke" in failure.message


async def test_a_run_config_error_is_refused_naming_its_key_path_and_stores_nothing(
    tmp_path: Path,
) -> None:
    bad = {"ops": {"generate_numbers": {"config": {"x": 1}}, "nope": {}}}
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance:
            async with running_stack(instance, tmp_path) as (coordinator, _):
                with pytest.raises(ConfigError) as info:
                    await submit_run(
                        coordinator,
                        SubmitRunRequest(
                            job_name="process_numbers",
                            run_config_json=orjson.dumps(bad).decode(),
                        ),
                    )
                assert "ops.nope" in info.value.key_paths
                assert "ops.nope" in str(info.value)
                with pytest.raises(DefinitionError, match="no job named 'missing'"):
                    await submit_run(coordinator, SubmitRunRequest(job_name="missing"))
            assert await instance.get_runs() == []


async def test_the_queued_coordinator_admits_one_run_at_a_time_in_submission_order(
    tmp_path: Path,
) -> None:
    fresh_gates()
    with anyio.fail_after(30):
        async with (
            DagloomInstance.ephemeral() as instance,
            running_stack(instance, tmp_path, queued=1) as (coordinator, _),
        ):
            runs = [
                await submit_run(
                    coordinator, SubmitRunRequest(job_name="gated", tags={"gate": gate})
                )
                for gate in ("first", "second", "third")
            ]
            assert all(r.status == RunStatus.QUEUED for r in runs)
            await STARTED["first"].wait()
            statuses = [(await instance.get_run(r.run_id)).status for r in runs]  # type: ignore[union-attr]
            assert statuses[1:] == [RunStatus.QUEUED, RunStatus.QUEUED]
            # Nothing else may start while the first holds the only slot.
            assert (await coordinator.ask(AdmitRunsRequest())).launched_run_ids == []
            for gate, run in zip(("first", "second", "third"), runs, strict=True):
                await STARTED[gate].wait()
                GATES[gate].set()
                assert (await wait_for_end(instance, run.run_id)).status == RunStatus.SUCCESS
    assert ORDER == ["first", "second", "third"]


async def test_cancelling_a_running_run_records_it_canceled(tmp_path: Path) -> None:
    fresh_gates()
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance:
            async with running_stack(instance, tmp_path) as (coordinator, _launcher):
                run = await submit_run(
                    coordinator, SubmitRunRequest(job_name="gated", tags={"gate": "forever"})
                )
                await STARTED["forever"].wait()
                reply = await coordinator.ask(CancelRunRequest(run_id=run.run_id))
                assert isinstance(reply, CancelRunReply) and reply.accepted
                ended = await wait_for_end(instance, run.run_id)
                assert ended.status == RunStatus.CANCELED
                again = await coordinator.ask(CancelRunRequest(run_id=run.run_id))
                assert not again.accepted and "already finished" in again.message
            tags = (await instance.get_run(run.run_id)).tags  # type: ignore[union-attr]
            # Canceled well within the worker's first heartbeat interval: none was written.
            assert "dagloom/heartbeat" not in tags


async def test_cancelling_a_queued_run_cancels_it_without_launching(tmp_path: Path) -> None:
    fresh_gates()
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance:
            async with running_stack(instance, tmp_path, queued=1) as (coordinator, _):
                first = await submit_run(
                    coordinator, SubmitRunRequest(job_name="gated", tags={"gate": "a"})
                )
                second = await submit_run(
                    coordinator, SubmitRunRequest(job_name="gated", tags={"gate": "b"})
                )
                assert (await coordinator.ask(CancelRunRequest(run_id=second.run_id))).accepted
                await STARTED["a"].wait()
                GATES["a"].set()
                assert (await wait_for_end(instance, first.run_id)).status == RunStatus.SUCCESS
            stored = await instance.get_run(second.run_id)
            assert stored is not None and stored.status == RunStatus.CANCELED
    assert ORDER == ["a"]


def test_the_instance_config_picks_the_queued_coordinator_and_names_bad_keys(
    tmp_path: Path,
) -> None:
    launcher = MemoryTransport().ref(InProcessRunLauncher(DagloomInstance.ephemeral(), JOBS))
    section = {"class": "QueuedRunCoordinator", "config": {"max_concurrent_runs": 2}}
    instance = DagloomInstance.from_config({"run_coordinator": section}, home=tmp_path)
    coordinator = build_run_coordinator(instance, launcher)
    assert isinstance(coordinator, QueuedRunCoordinator)
    assert coordinator.max_concurrent_runs == 2
    default = build_run_coordinator(DagloomInstance.from_config({}, home=tmp_path), launcher)
    assert isinstance(default, DefaultRunCoordinator)
    section = {"class": "QueuedRunCoordinator", "config": {"max_concurent_runs": 2}}
    bad = DagloomInstance.from_config({"run_coordinator": section}, home=tmp_path)
    with pytest.raises(ConfigError) as info:
        build_run_coordinator(bad, launcher)
    assert info.value.key_paths == ["run_coordinator.config.max_concurent_runs"]


# -- at most once: request ids, abandoned and failed submissions -----------------------------


def test_a_submission_run_id_comes_from_the_caller_its_request_id_or_nowhere() -> None:
    retried = SubmitRunRequest(job_name="j", request_id="r1")
    assert submission_run_id(retried) == submission_run_id(SubmitRunRequest(request_id="r1"))
    assert submission_run_id(retried) != submission_run_id(SubmitRunRequest(request_id="r2"))
    assert submission_run_id(SubmitRunRequest(run_id="mine", request_id="r1")) == "mine"
    assert submission_run_id(SubmitRunRequest()) != submission_run_id(SubmitRunRequest())


async def test_a_submission_retried_with_its_request_id_returns_the_first_run(
    tmp_path: Path,
) -> None:
    request = SubmitRunRequest(job_name="process_numbers", request_id="launch-1")
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance:
            async with running_stack(instance, tmp_path) as (coordinator, _):
                runs = []

                async def submit() -> None:
                    runs.append(await submit_run(coordinator, request))

                async with anyio.create_task_group() as tg:
                    tg.start_soon(submit)
                    tg.start_soon(submit)
                await wait_for_end(instance, runs[0].run_id)
                runs.append(await submit_run(coordinator, request))  # after it ended
            assert len({r.run_id for r in runs}) == 1
            assert runs[0].tags[REQUEST_ID_TAG] == "launch-1"
            assert [r.run_id for r in await instance.get_runs()] == [runs[0].run_id]
            types = [r.event.event_type for r in await instance.get_events(runs[0].run_id)]
            assert types.count(EventType.RUN_STARTING) == 1
            assert types.count(EventType.RUN_START) == 1


class GatedValidator:
    """Accepts every submission, holding the first until `gate` opens."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.gate = anyio.Event()

    async def validate(self, request: SubmitRunRequest) -> ValidateRunReply:
        self.entered.set()
        await self.gate.wait()
        return ValidateRunReply(valid=True)


async def test_a_submission_given_up_before_the_coordinator_took_it_stores_nothing(
    tmp_path: Path,
) -> None:
    """The asker of `late` stops waiting while the coordinator is busy: `late` is dropped
    unhandled, and submitting it again with its request id stores and runs it once."""
    transport = MemoryTransport()
    validator = GatedValidator()
    with anyio.fail_after(30):
        async with DagloomInstance.ephemeral() as instance:
            jobs = DefinitionsJobSource({"numbers": seed_definitions(tmp_path)})
            launcher = InProcessRunLauncher(instance, jobs)
            coordinator = DefaultRunCoordinator(
                instance, transport.ref(launcher), validator=validator
            )
            ref = transport.ref(coordinator)

            def request(request_id: str) -> SubmitRunRequest:
                return SubmitRunRequest(job_name="process_numbers", request_id=request_id)

            async with anyio.create_task_group() as tg:
                await tg.start(launcher.run)
                await tg.start(coordinator.run)
                tg.start_soon(submit_run, ref, request("first"))
                await validator.entered.wait()
                with pytest.raises(TimeoutError):
                    await ref.ask(request("late"), timeout=0.05)
                validator.gate.set()
                await submit_run(ref, request("next"))  # queued behind `late`
                stored = {r.tags[REQUEST_ID_TAG] for r in await instance.get_runs()}
                assert stored == {"first", "next"}
                late = await submit_run(ref, request("late"))
                await wait_for_end(instance, late.run_id)
                tg.cancel_scope.cancel()
            assert len(await instance.get_runs()) == 3


async def test_a_submission_that_fails_after_storing_its_run_is_rolled_back() -> None:
    async with DagloomInstance.ephemeral() as instance:
        transition_run = instance.transition_run

        async def failing(run_id: str, event: Any) -> Any:
            if event.event_type == EventType.RUN_STARTING:
                raise StorageError("the disk is full")
            return await transition_run(run_id, event)

        instance.transition_run = failing  # type: ignore[method-assign]
        coordinator = DefaultRunCoordinator(instance, MemoryTransport().ref(Slow()))
        with pytest.raises(StorageError, match="disk is full"):
            await coordinator.handle(SubmitRunRequest(job_name="any", request_id="r"))
        assert await instance.get_runs() == []
