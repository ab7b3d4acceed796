"""`execute_job` and `reconstructable`: run a job with its own executor on an instance, as
Dagster's `execute_job` does, and re-execute a run from failure (`ReexecutionOptions`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagloom.errors import DagsterInvalidDefinitionError, DagsterInvalidInvocationError

if TYPE_CHECKING:
    from dagloom.definitions.config import RunConfig
    from dagloom.definitions.job import JobDefinition
    from dagloom.execution.origin import CodeOrigin
    from dagloom.execution.result import ExecuteInProcessResult
    from dagloom.instance import DagloomInstance

__all__ = ["ReconstructableJob", "ReexecutionOptions", "execute_job", "reconstructable"]


@dataclass(frozen=True, slots=True)
class ReconstructableJob:
    """A job and the code origin of the module that defines it: what a step process of the
    multiprocess executor imports to build the job again."""

    job_def: JobDefinition
    code_origin: CodeOrigin

    def get_definition(self) -> JobDefinition:
        return self.job_def


def reconstructable(target: JobDefinition | Callable[[], JobDefinition]) -> ReconstructableJob:
    """The job `target` is (or a function without arguments returns), with where its code
    lives. DagsterInvalidDefinitionError when it is not a job, or is defined where another
    process cannot import it (`__main__`, a module made at runtime)."""
    from dagloom.definitions.job import JobDefinition
    from dagloom.execution.origin import infer_code_origin

    job = target if isinstance(target, JobDefinition) else target()
    if not isinstance(job, JobDefinition):
        raise DagsterInvalidDefinitionError(
            f"reconstructable takes a job, or a function returning one; got {type(job).__name__}"
        )
    origin = infer_code_origin(job)
    if origin is None:
        raise DagsterInvalidDefinitionError(
            f"reconstructable: job {job.name!r} is defined where another process cannot "
            "import it (__main__, or a module made at runtime); define it in a module",
            name=job.name,
        )
    return ReconstructableJob(job, origin)


@dataclass(frozen=True, slots=True)
class ReexecutionOptions:
    """Re-execute run `parent_run_id`: the steps `step_selection` names (empty: every step);
    every other step that succeeded there is not executed again, its outputs read from
    where that run stored them."""

    parent_run_id: str
    step_selection: Sequence[str] = ()

    @staticmethod
    def from_failure(run_id: str, instance: DagloomInstance) -> ReexecutionOptions:
        """Re-execute the steps of failed run `run_id` that did not succeed.
        DagsterInvalidInvocationError when the run does not exist or did not fail."""
        from dagloom.daemon.retry_loop import reexecution_steps
        from dagloom.errors import DagloomError
        from dagloom.execution.run import run_sync_with

        async def steps() -> list[str]:
            parent = await instance.get_run(run_id)
            if parent is None:
                raise DagsterInvalidInvocationError(f"no run {run_id!r} to re-execute")
            try:
                return await reexecution_steps(instance, parent, from_failure=True)
            except DagloomError as exc:
                raise DagsterInvalidInvocationError(str(exc)) from exc

        selected = run_sync_with(steps(), instance, what="ReexecutionOptions.from_failure()")
        return ReexecutionOptions(run_id, tuple(selected))


def execute_job(
    job: ReconstructableJob,
    instance: DagloomInstance,
    run_config: Mapping[str, Any] | RunConfig | None = None,
    tags: Mapping[str, str] | None = None,
    raise_on_error: bool = False,
    op_selection: Sequence[str] | None = None,
    reexecution_options: ReexecutionOptions | None = None,
    asset_selection: Any = None,
) -> ExecuteInProcessResult:
    """Run `job` with its own executor (its steps in processes of their own with the
    multiprocess executor) and record it in `instance`; block until it ends.

    As Dagster's, a failed step does not raise unless `raise_on_error`; the result is also
    a context manager (`with execute_job(...) as result:`). With `reexecution_options` the
    run re-executes that run (tagged with its parent and root run ids).
    """
    from dagloom.execution.run import execute_job_in_process, run_sync_with

    if not isinstance(job, ReconstructableJob):
        raise DagsterInvalidInvocationError(
            f"execute_job takes reconstructable(job), got {type(job).__name__}"
        )
    job_def = job.job_def
    if asset_selection is not None:
        job_def = job_def.asset_subset(asset_selection)
    run_tags = dict(tags or {})
    parent_run_id: str | None = None
    steps: Sequence[str] = ()
    if reexecution_options is not None:
        parent_run_id = reexecution_options.parent_run_id
        steps = reexecution_options.step_selection
        parent = instance.get_run_by_id(parent_run_id)
        if parent is None:
            raise DagsterInvalidInvocationError(f"no run {parent_run_id!r} to re-execute")
        root = parent.tags.get("dagster/root_run_id") or parent_run_id
        run_tags = {
            **run_tags,
            "dagster/parent_run_id": parent_run_id,
            "dagster/root_run_id": root,
        }
    run = execute_job_in_process(
        job_def,
        run_config=run_config,
        instance=instance,
        raise_on_error=raise_on_error,
        op_selection=list(op_selection) if op_selection else None,
        tags=run_tags,
        code_origin=job.code_origin,
        parent_run_id=parent_run_id,
        step_keys_to_execute=steps,
    )
    return run_sync_with(run, instance, what="execute_job()")
