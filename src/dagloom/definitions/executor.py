"""Executor definitions: which executor runs a job's steps, and its config.

Executors are a component family like the others (`dagloom._components`): an executor is
a class implementing `Executor`, with a pydantic `config_model` and a classmethod
`from_config(config, context)`; the built-ins are `in_process` and `multiprocess`. An
`ExecutorDefinition` names one for a job: a built-in by short name, a class by
`{module, class}` (also from run config: `execution: {module, class, config}`), or a
function decorated with `@executor`, as in Dagster.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard, runtime_checkable

from pydantic import Field, model_validator

from dagloom._components import ComponentFamily, KeyPath, component_class
from dagloom.definitions.config import Config, validate_model
from dagloom.errors import ConfigError

if TYPE_CHECKING:
    from dagloom.execution.executor import ExecutorContext
    from dagloom.execution.step import ExecutionState


class InProcessExecutorConfig(Config):
    """`execution: {config: ...}` for the in-process executor."""

    max_concurrent: int = Field(default=64, ge=1)  # async steps in flight at once
    sync_op_threads: int = Field(default=0, ge=0)  # >0: run sync ops in a thread pool
    retries: dict[str, Any] | None = None


class ForkserverConfig(Config):
    """`start_method: {forkserver: ...}`: modules the fork server imports before forking."""

    preload_modules: list[str] | None = None


class StartMethodConfig(Config):
    """`start_method:` of the multiprocess executor, Dagster's selector of `spawn: {}` (the
    default) or `forkserver: {preload_modules: [...]}`; `fork` is not offered, since the
    parent runs an event loop and threads that a fork would copy in an unusable state."""

    spawn: dict[str, Any] | None = None
    forkserver: ForkserverConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _present_means_chosen(cls, value: Any) -> Any:
        """`forkserver:` written with nothing after it (None) chooses it."""
        if isinstance(value, Mapping):
            return {k: {} if v is None else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _at_most_one(self) -> StartMethodConfig:
        if self.spawn is not None and self.forkserver is not None:
            raise ValueError("give one of 'spawn' or 'forkserver', not both")
        return self

    @property
    def method(self) -> str:
        """The `multiprocessing` start method: `forkserver` or `spawn`."""
        return "forkserver" if self.forkserver is not None else "spawn"


class MultiprocessExecutorConfig(Config):
    """`execution: {config: ...}` for the multiprocess executor."""

    max_concurrent: int = Field(default=0, ge=0)  # 0: one process per core
    retries: dict[str, Any] | None = None
    start_method: StartMethodConfig | None = None


class MultiOrInProcessExecutorConfig(Config):
    """`execution: {config: ...}` for `multi_or_in_process_executor`: Dagster's selector of
    `multiprocess: {...}` (the default) or `in_process: {...}`, at most one of them."""

    multiprocess: MultiprocessExecutorConfig | None = None
    in_process: InProcessExecutorConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _present_means_chosen(cls, value: Any) -> Any:
        """`in_process:` written with nothing after it (None) chooses it with its defaults."""
        if isinstance(value, Mapping):
            return {k: {} if v is None and k in _MODES else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _at_most_one(self) -> MultiOrInProcessExecutorConfig:
        if self.multiprocess is not None and self.in_process is not None:
            raise ValueError("give one of 'multiprocess' or 'in_process', not both")
        return self


_MODES = ("multiprocess", "in_process")


class EmptyExecutorConfig(Config):
    """The config of an executor that takes none."""


@runtime_checkable
class Executor(Protocol):
    """Runs the steps of one run.

    `execute` blocks until every step ended and returns the final state; step failures are
    recorded as events, not raised. It raises `DefinitionError` when the run cannot execute
    this way (the run then ends FAILURE). Cancelling it cancels the steps and re-raises.
    `context.execute_plan(...)` runs the plan with dagloom's executor core.
    """

    async def execute(self, context: ExecutorContext) -> ExecutionState: ...


EXECUTORS = ComponentFamily(
    section="execution",
    requirement="an Executor (a class with `async def execute(self, context)`)",
    accepts=lambda cls: issubclass(cls, Executor),
    builtins={
        "in_process": "dagloom.execution.executor:InProcessExecutor",
        "InProcessExecutor": "dagloom.execution.executor:InProcessExecutor",
        "multiprocess": "dagloom.execution.multiprocess:MultiprocessExecutor",
        "MultiprocessExecutor": "dagloom.execution.multiprocess:MultiprocessExecutor",
        # needs the `dask` extra; imported only when a run selects it
        "dask": "dagloom.dask.executor:DaskExecutor",
        "DaskExecutor": "dagloom.dask.executor:DaskExecutor",
    },
)
"""The executor family: built-ins by short name and class name; a user's is an `Executor`
class named by `module` and `class`."""


_BUILTIN_CLASSES: dict[str, type] = {}  # built-in executor name -> its class, once resolved
# config model -> its instance with every default (validating {} took ~10 µs a run)
_DEFAULT_CONFIGS: dict[type[Config], Config] = {}


@dataclass(frozen=True, slots=True)
class InitExecutorContext:
    """What an `@executor` function gets: the run's validated `executor_config`."""

    executor_config: Config


@dataclass(frozen=True, slots=True)
class ExecutorDefinition:
    """A named executor with a config model and the config it was `configured` with.

    What executes is made by `create`: `executor_creation_fn` when given (`@executor`),
    else the `Executor` class `{module, class_name}` names in the executor family (a
    built-in by its short name when both are absent: the definition's `name`).
    """

    name: str
    config_model: type[Config]
    config: Mapping[str, Any] = field(default_factory=dict)
    executor_creation_fn: Callable[[InitExecutorContext], Executor] | None = None
    module: str | None = None
    class_name: str | None = None

    @classmethod
    def from_component(
        cls,
        module: str | None,
        class_name: str,
        *,
        path: KeyPath = ("execution",),
        source: str | None = None,
    ) -> ExecutorDefinition:
        """The executor `{module, class}` names (a built-in without `module`), with its
        class's `config_model` (default: no config). Imports it now; `ConfigError` names
        `path` + `module`/`class` when it does not import or is not an `Executor`."""
        executor_cls = component_class(EXECUTORS, module, class_name, path=path, source=source)
        model = getattr(executor_cls, "config_model", None)
        if not (isinstance(model, type) and issubclass(model, Config)):
            model = EmptyExecutorConfig
        return cls(
            executor_cls.__name__ if module is not None else class_name,
            model,
            module=module,
            class_name=class_name,
        )

    def configured(self, config: Mapping[str, Any]) -> ExecutorDefinition:
        """The same executor with `config` as its defaults (validated now)."""
        merged = {**self.config, **config}
        validate_model(self.config_model, merged, ("execution", "config"), what=self.name)
        return ExecutorDefinition(
            self.name,
            self.config_model,
            merged,
            self.executor_creation_fn,
            self.module,
            self.class_name,
        )

    def resolve_config(self, run_config_value: Any) -> Config:
        """This executor's config for a run: defaults, then `execution.config` from run
        config."""
        given = dict(run_config_value or {})
        # Dagster nests executor config under the executor's name (YAML `in_process:` with
        # nothing after it is None); accept both shapes.
        if set(given) == {self.name} and (
            given[self.name] is None or isinstance(given[self.name], Mapping)
        ):
            given = dict(given[self.name] or {})
        merged = {**self.config, **given}
        if not merged:  # most runs: the model's defaults, the same (frozen) config each time
            found = _DEFAULT_CONFIGS.get(self.config_model)
            if found is not None:
                return found
        model = validate_model(
            self.config_model, merged, ("execution", "config"), what=f"executor {self.name!r}"
        )
        assert isinstance(model, Config)
        if not merged:
            _DEFAULT_CONFIGS[self.config_model] = model
        return model

    def _class(self) -> type:
        """The Executor class this definition names (a built-in's, resolved once)."""
        name = self.class_name or self.name
        if self.module is None:
            found = _BUILTIN_CLASSES.get(name)
            if found is None:
                found = _BUILTIN_CLASSES[name] = component_class(
                    EXECUTORS, None, name, path=("execution",)
                )
            return found
        return component_class(EXECUTORS, self.module, name, path=("execution",))

    def create(self, config: Config) -> Executor:
        """The executor for one run, given its validated `config` (`resolve_config`).
        Raises `ConfigError` naming `execution.class` when what is made is no `Executor`."""
        if self.executor_creation_fn is not None:
            made: object = self.executor_creation_fn(InitExecutorContext(config))
        else:
            executor_cls = self._class()
            from_config = getattr(executor_cls, "from_config", None)
            made = from_config(config, None) if callable(from_config) else executor_cls()
        if not _is_executor(made):
            raise ConfigError(
                f"executor {self.name!r} did not make an Executor",
                problems=[(("execution", "class"), f"got {type(made).__qualname__}")],
            )
        return made


_EXECUTOR_CLASSES: set[type] = set()
"""Classes whose instances passed the `Executor` check: a protocol `isinstance` lists the
protocol's members each time (~0.1 ms), and a run makes an executor of the same class."""


def _is_executor(made: object) -> TypeGuard[Executor]:
    """`isinstance(made, Executor)`, remembered per class once true."""
    if type(made) in _EXECUTOR_CLASSES:
        return True
    if isinstance(made, Executor):
        _EXECUTOR_CLASSES.add(type(made))
        return True
    return False


def executor(
    name: str | None = None, config_schema: type[Config] | None = None
) -> Callable[[Callable[[InitExecutorContext], Executor]], ExecutorDefinition]:
    """Declare an executor, as Dagster's `@executor` does: the decorated function gets an
    `InitExecutorContext` (with the run's validated `executor_config`, a `config_schema`
    instance) and returns the `Executor` that runs the steps."""

    def decorate(fn: Callable[[InitExecutorContext], Executor]) -> ExecutorDefinition:
        return ExecutorDefinition(
            name or fn.__name__,
            config_schema or EmptyExecutorConfig,
            executor_creation_fn=fn,
        )

    return decorate


in_process_executor = ExecutorDefinition("in_process", InProcessExecutorConfig)
multiprocess_executor = ExecutorDefinition("multiprocess", MultiprocessExecutorConfig)


def _multi_or_in_process(context: InitExecutorContext) -> Executor:
    """The executor `MultiOrInProcessExecutorConfig` chooses: in-process when `in_process`
    is given, else multiprocess (with `multiprocess`'s config or its defaults)."""
    config = context.executor_config
    assert isinstance(config, MultiOrInProcessExecutorConfig)
    if config.in_process is not None:
        return in_process_executor.create(config.in_process)
    return multiprocess_executor.create(config.multiprocess or MultiprocessExecutorConfig())


multi_or_in_process_executor = ExecutorDefinition(
    "multi_or_in_process",
    MultiOrInProcessExecutorConfig,
    executor_creation_fn=_multi_or_in_process,
)
"""Dagster's default executor: each step in its own process (`multiprocess`) unless run
config chooses `execution: {config: {in_process: {}}}`. (dagloom's jobs default to
`in_process_executor`; this one is for code that names it.)"""


def prepare_default_executor() -> None:
    """Resolve the default executor's class and its default config now, once per process,
    rather than in the first run that needs them (~60 µs there); called as the execution
    modules load (`dagloom.execution.run`). The class passed `EXECUTORS`' check that it
    is an `Executor`, so its instances are known to be (`_is_executor`)."""
    _EXECUTOR_CLASSES.add(in_process_executor._class())
    in_process_executor.resolve_config(None)


def select_executor(default: ExecutorDefinition, run_config_value: Any) -> ExecutorDefinition:
    """The executor a run uses: the built-in `execution.config` names, else the job's own.

    Run config picks a built-in as Dagster does, by nesting its config under its short
    name: `execution: {config: {multiprocess: {max_concurrent: 4}}}`. The job's executor
    keeps the config it was `configured` with when run config names that same executor.
    """
    # `is not None` first: an ABC's first isinstance check of None costs ~40 µs.
    if (
        run_config_value is not None
        and isinstance(run_config_value, Mapping)
        and len(run_config_value) == 1
    ):
        (name,) = run_config_value
        if name != default.name and name in EXECUTORS.builtins:
            return ExecutorDefinition.from_component(None, name)
    return default


__all__ = [
    "EXECUTORS",
    "Executor",
    "ExecutorDefinition",
    "InitExecutorContext",
    "executor",
    "in_process_executor",
    "multi_or_in_process_executor",
    "multiprocess_executor",
    "prepare_default_executor",
    "select_executor",
]
