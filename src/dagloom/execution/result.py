"""ExecuteInProcessResult: what a run in this process produced, its events and outputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Self

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.definitions.io_manager import InputContext, IOManager, OutputContext
from dagloom.definitions.outputs import DEFAULT_OUTPUT, AssetMaterialization, AssetObservation
from dagloom.errors import DagloomError
from dagloom.execution.plan import split_step_key
from dagloom.messages import EventType, Run, RunStatus
from dagloom.messages.rows import EventRow, event_of

if TYPE_CHECKING:
    from dagloom.definitions.asset_checks import AssetCheckEvaluation
    from dagloom.definitions.job import JobDefinition
    from dagloom.execution.event_view import DagsterEvent, DagsterEventType
    from dagloom.execution.step import ExecutionState


class ExecuteInProcessResult:
    """The outcome of `execute_in_process`: success, every event, and output values (loaded
    on demand through the IO manager that stored them).

    The run's events are kept as the rows the executor emitted; `all_events` builds the
    `Event` messages, and the DagsterEvent views over them, the first time it is read.
    Every method returning events returns DagsterEvents, in run order.
    """

    def __init__(
        self,
        *,
        job_def: JobDefinition,
        run_id: str,
        rows: Sequence[EventRow],
        state: ExecutionState | None,
        io_managers: Mapping[str, IOManager],
        success: bool,
        tags: Mapping[str, str] | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.job_def = job_def
        self._tags = dict(tags or {})
        self._run_config = dict(run_config or {})
        self.run_id = run_id
        self._rows = rows
        self._state = state
        self._io_managers = io_managers
        self.success = success

    def __enter__(self) -> Self:
        """The result itself: `with execute_job(...) as result:` reads it as Dagster's
        JobExecutionResult is read (outputs load through IO managers either way)."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    @cached_property
    def all_events(self) -> list[DagsterEvent]:
        """Every event of the run, in order."""
        from dagloom.execution.event_view import DagsterEvent

        run_id = self.run_id
        return [DagsterEvent(event_of(run_id, row)) for row in self._rows]

    @property
    def dagster_run(self) -> RunView:
        """The run's record: id, job name, status, tags (its `dagster/partition` among
        them) and run config."""
        return RunView(
            self.run_id,
            self.job_name,
            RunStatus.SUCCESS if self.success else RunStatus.FAILURE,
            dict(self._tags),
            dict(self._run_config),
        )

    @property
    def job_name(self) -> str:
        return self.job_def.name

    @property
    def all_node_events(self) -> list[DagsterEvent]:
        """Every event of a step, in order."""
        return [e for e in self.all_events if e.event.step_key]

    def events_for_node(self, node_name: str) -> list[DagsterEvent]:
        """The events of every step of `node_name` (all mapped copies of a mapped node)."""
        return [e for e in self.all_events if _node_of(e.event.step_key) == node_name]

    def filter_events(self, event_type: DagsterEventType | EventType | str) -> list[DagsterEvent]:
        """The events of one type; the type as a DagsterEventType, an EventType or a name."""
        from dagloom.execution.event_view import DagsterEventType

        wanted = DagsterEventType.of(event_type)
        return [e for e in self.all_events if e.event_type == wanted]

    def get_step_failure_events(self) -> list[DagsterEvent]:
        return self.filter_events("STEP_FAILURE")

    def get_step_success_events(self) -> list[DagsterEvent]:
        return self.filter_events("STEP_SUCCESS")

    def get_step_skipped_events(self) -> list[DagsterEvent]:
        return self.filter_events("STEP_SKIPPED")

    def get_asset_materialization_events(self) -> list[DagsterEvent]:
        return self.filter_events("ASSET_MATERIALIZATION")

    def get_asset_check_evaluations(self) -> list[AssetCheckEvaluation]:
        """The results of the asset checks the run executed, in order; their metadata as
        MetadataValues, as a materialization's."""
        from dagloom.definitions.asset_checks import AssetCheckEvaluation, AssetCheckSeverity
        from dagloom.definitions.asset_key import AssetKey
        from dagloom.definitions.metadata import metadata_value_of

        out: list[AssetCheckEvaluation] = []
        for e in self.filter_events("ASSET_CHECK_EVALUATION"):
            data = e.event.asset_check_evaluation
            if data is None or data.asset_key is None:
                continue
            out.append(
                AssetCheckEvaluation(
                    asset_key=AssetKey(list(data.asset_key.path)),
                    check_name=data.check_name,
                    passed=data.passed,
                    severity=AssetCheckSeverity(data.severity or "ERROR"),
                    metadata={k: metadata_value_of(v) for k, v in data.metadata.items()},
                    description=data.description or None,
                    blocking=data.blocking,
                    partition=data.partition or None,
                )
            )
        return out

    def get_asset_observation_events(self) -> list[DagsterEvent]:
        return self.filter_events("ASSET_OBSERVATION")

    def asset_materializations_for_node(self, node_name: str) -> list[AssetMaterialization]:
        """The materializations (asset key, metadata, partition) the node's steps reported."""
        return [
            e.materialization
            for e in self.events_for_node(node_name)
            if e.event_type == "ASSET_MATERIALIZATION"
        ]

    def asset_observations_for_node(self, node_name: str) -> list[AssetObservation]:
        """The observations (asset key, metadata, partition) the node's steps reported."""
        return [
            e.asset_observation_data.asset_observation
            for e in self.events_for_node(node_name)
            if e.event_type == "ASSET_OBSERVATION"
        ]

    def get_job_success_event(self) -> DagsterEvent:
        """The run's RUN_SUCCESS event; DagloomError when the run did not succeed."""
        return self._one("RUN_SUCCESS")

    def get_job_failure_event(self) -> DagsterEvent:
        """The run's RUN_FAILURE event; DagloomError when the run did not fail."""
        return self._one("RUN_FAILURE")

    get_run_success_event = get_job_success_event
    get_run_failure_event = get_job_failure_event

    def _one(self, event_type: str) -> DagsterEvent:
        found = self.filter_events(event_type)
        if not found:
            raise DagloomError(f"run {self.run_id} has no {event_type} event")
        return found[0]

    @property
    def failed_steps(self) -> list[str]:
        return [] if self._state is None else self._state.failed_steps

    def is_node_success(self, node_name: str) -> bool:
        return self._status(node_name) == "success"

    def is_node_failed(self, node_name: str) -> bool:
        return self._status(node_name) == "failed"

    def is_node_skipped(self, node_name: str) -> bool:
        return self._status(node_name) == "skipped"

    def is_node_untouched(self, node_name: str) -> bool:
        return self._status(node_name) is None

    def _status(self, node_name: str) -> str | None:
        if self._state is None:
            return None
        from dagloom.execution.step import FAILED, SKIPPED

        found = [v for k, v in self._state.status.items() if _node_of(k) == node_name]
        if not found:
            return None
        if FAILED in found:
            return "failed"
        if all(v == SKIPPED for v in found):
            return "skipped"
        return "success"

    def output_for_node(self, node_name: str, output_name: str = DEFAULT_OUTPUT) -> Any:
        """The value a node produced for `output_name`. For a mapped node or a dynamic output,
        a dict of mapping key to value. A graph node's output is the output it maps to."""
        mapped_to = self.job_def.graph_outputs.get((node_name, output_name))
        if mapped_to is not None and node_name not in self.job_def.nodes:
            return self.output_for_node(*mapped_to)
        if node_name not in self.job_def.nodes:
            raise DagloomError(
                f"job {self.job_def.name!r} has no node {node_name!r}; nodes are "
                f"{sorted(self.job_def.nodes)}"
            )
        state = self._state
        if state is None:
            raise DagloomError(f"run {self.run_id} did not execute")
        dynamic = state.dynamic_keys.get((node_name, output_name))
        if dynamic is not None:
            return {key: self._load(ctx) for key, ctx in dynamic.items()}
        found = state.outputs.get((node_name, output_name))
        if found is not None:
            return self._load(found)
        prefix = f"{node_name}["
        mapped = {
            key[len(prefix) : -1]: stored
            for (key, name), stored in state.outputs.items()
            if name == output_name and key.startswith(prefix)
        }
        if mapped:
            return {key: self._load(stored) for key, stored in mapped.items()}
        raise DagloomError(
            f"node {node_name!r} produced no output {output_name!r} in run {self.run_id}"
        )

    def output_value(self, output_name: str = DEFAULT_OUTPUT) -> Any:
        """For a job made from a single op or graph: the value of its output."""
        if len(self.job_def.nodes) != 1:
            raise DagloomError("output_value() needs a job with one node; use output_for_node")
        return self.output_for_node(next(iter(self.job_def.nodes)), output_name)

    def asset_value(self, asset_key: CoercibleToAssetKey) -> Any:
        """The value materialized for an asset in this run."""
        key = AssetKey.from_coercible(asset_key)
        layer = self.job_def.asset_layer
        if layer is None or self._state is None:
            raise DagloomError(f"run {self.run_id} materialized no assets")
        for (node, output), found in layer.asset_keys_by_output.items():
            if found == key:
                return self.output_for_node(node, output)
        raise DagloomError(f"asset {key.to_user_string()!r} is not part of job {self.job_name!r}")

    def _load(self, ctx: Any) -> Any:
        """The value of an output as the run's state keeps it: through the IO manager that
        stored it, given its context; a plain output's value as it is (see
        `ExecutionState`)."""
        if not isinstance(ctx, OutputContext):
            from dagloom.execution.step import plain_value

            return plain_value(ctx)
        op = self.job_def.nodes[_node_of(ctx.step_key)].op
        manager = self._io_managers[op.outs[ctx.name].io_manager_key]
        input_ctx = InputContext(
            ctx.name, None, ctx, asset_key=ctx.asset_key, resources=ctx.resources
        )
        # the partitions the output was stored for are the ones read back
        input_ctx.set_partitions(
            ctx._asset_partition_keys, ctx.asset_partitions_def, ctx._run_partition_key
        )
        return manager.load_input(input_ctx)

    def __repr__(self) -> str:
        return (
            f"<ExecuteInProcessResult {self.job_name} run_id={self.run_id} success={self.success}>"
        )


_FINISHED = frozenset({RunStatus.SUCCESS, RunStatus.FAILURE, RunStatus.CANCELED})


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as Dagster's `DagsterRun` reads: `result.dagster_run`,
    `instance.get_run_by_id(...)`, a run record's `dagster_run`."""

    run_id: str
    job_name: str
    status: RunStatus
    tags: dict[str, str] = field(default_factory=dict)
    run_config: dict[str, Any] = field(default_factory=dict)
    parent_run_id: str | None = None
    root_run_id: str | None = None

    @classmethod
    def of(cls, run: Run) -> RunView:
        """The view of a stored run."""
        import orjson

        config = orjson.loads(run.run_config_json) if run.run_config_json else {}
        return cls(
            run.run_id,
            run.job_name,
            run.status,
            dict(run.tags),
            config,
            run.parent_run_id or None,
            run.root_run_id or None,
        )

    @property
    def is_success(self) -> bool:
        return self.status == RunStatus.SUCCESS

    @property
    def is_failure(self) -> bool:
        return self.status == RunStatus.FAILURE

    @property
    def is_failure_or_canceled(self) -> bool:
        return self.status in (RunStatus.FAILURE, RunStatus.CANCELED)

    @property
    def is_finished(self) -> bool:
        """Whether the run ended: SUCCESS, FAILURE or CANCELED."""
        return self.status in _FINISHED


def _node_of(step_key: str) -> str:
    return split_step_key(step_key)[0]


__all__ = ["ExecuteInProcessResult", "RunView"]
