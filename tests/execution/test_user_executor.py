"""A user's own executor: declared with @executor on a job, or named in run config by
{module, class, config} as every component is; bad input names its key path."""

from __future__ import annotations

from typing import Any, ClassVar

import anyio
import anyio.lowlevel
import pytest

from dagloom import Config, ConfigError, Executor, InitExecutorContext, executor, job, op
from dagloom.execution.executor import ExecutorContext
from dagloom.execution.step import ExecutionState

IN_FLIGHT: list[int] = []
"""How many steps were running at once, sampled as each step started."""
RUNNING = [0]


@op
async def slow_a() -> int:
    RUNNING[0] += 1
    IN_FLIGHT.append(RUNNING[0])
    await anyio.lowlevel.checkpoint()
    RUNNING[0] -= 1
    return 1


@op
async def slow_b() -> int:
    RUNNING[0] += 1
    IN_FLIGHT.append(RUNNING[0])
    await anyio.lowlevel.checkpoint()
    RUNNING[0] -= 1
    return 2


class SerialConfig(Config):
    label: str


class SerialExecutor:
    """Runs one step at a time, and remembers the runs it executed."""

    config_model = SerialConfig
    executed: ClassVar[list[tuple[str, str]]] = []

    def __init__(self, label: str) -> None:
        self.label = label

    @classmethod
    def from_config(cls, config: SerialConfig, context: object) -> SerialExecutor:
        return cls(config.label)

    async def execute(self, context: ExecutorContext) -> ExecutionState:
        self.executed.append((self.label, context.facts.run_id))
        return await context.execute_plan(max_concurrent=1)


@executor(name="serial", config_schema=SerialConfig)
def serial_executor(init_context: InitExecutorContext) -> Executor:
    config = init_context.executor_config
    assert isinstance(config, SerialConfig)
    return SerialExecutor(config.label)


@job(executor_def=serial_executor)
def serial_job() -> None:
    slow_a()
    slow_b()


@job
def plain_job() -> None:
    slow_a()
    slow_b()


@pytest.fixture(autouse=True)
def _fresh() -> None:
    IN_FLIGHT.clear()
    SerialExecutor.executed.clear()


def test_a_job_runs_through_its_own_executor_with_validated_config() -> None:
    result = serial_job.execute_in_process(run_config={"execution": {"config": {"label": "x"}}})
    assert result.success
    assert SerialExecutor.executed == [("x", result.run_id)]
    assert IN_FLIGHT == [1, 1]
    with pytest.raises(ConfigError) as caught:
        serial_job.execute_in_process(run_config={"execution": {"config": {"label": 3}}})
    assert caught.value.key_paths == ["execution.config.label"]


def test_the_builtin_executor_runs_async_steps_together() -> None:
    assert plain_job.execute_in_process().success
    assert IN_FLIGHT == [1, 2]


def test_run_config_names_an_executor_by_module_and_class() -> None:
    execution = {"module": __name__, "class": "SerialExecutor", "config": {"label": "rc"}}
    result = plain_job.execute_in_process(run_config={"execution": execution})
    assert result.success
    assert SerialExecutor.executed == [("rc", result.run_id)]
    assert IN_FLIGHT == [1, 1]
    builtin = plain_job.execute_in_process(
        run_config={"execution": {"class": "in_process", "config": {"max_concurrent": 1}}}
    )
    assert builtin.success and IN_FLIGHT[-2:] == [1, 1]


@pytest.mark.parametrize(
    ("execution", "key_path", "expected"),
    [
        ({"module": "no_such_module_dagloom", "class": "X"}, "execution.module", "cannot import"),
        ({"module": __name__, "class": "Nope"}, "execution.class", "has no class"),
        ({"module": __name__, "class": "SerialConfig"}, "execution.class", "is not an Executor"),
        ({"class": "threaded"}, "execution.class", "not a built-in"),
        ({"module": __name__}, "execution.class", "required with 'module'"),
        (
            {"module": __name__, "class": "SerialExecutor", "config": {"lable": "x"}},
            "execution.config.lable",
            "",
        ),
    ],
)
def test_a_bad_executor_is_one_error_naming_its_key_path(
    execution: dict[str, Any], key_path: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        plain_job.execute_in_process(run_config={"execution": execution})
    assert key_path in caught.value.key_paths, str(caught.value)
    assert expected in str(caught.value)
    assert IN_FLIGHT == []  # nothing ran
