"""Loggers: `@logger`, `LoggerDefinition`, and `colored_console_logger`.

A job's `logger_defs` (or its Definitions' `loggers`) name Python loggers a run builds from
run config `loggers: {name: {config: ...}}` when it starts; every event of the run, the
messages of `context.log` among them, then goes to each of them as a log record.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from dagloom.errors import DagsterInvalidDefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.config_types import Field

# The config types load when a logger's config is first checked: a run of a job without
# loggers never imports them.

__all__ = [
    "InitLoggerContext",
    "LoggerDefinition",
    "build_init_logger_context",
    "colored_console_logger",
    "default_loggers",
    "logger",
]


class InitLoggerContext:
    """What a logger function is given: its `logger_config` (validated, defaults filled),
    the `logger_def`, and the `job_def` and `run_id` of the run it logs for (None outside
    a run)."""

    __slots__ = ("job_def", "logger_config", "logger_def", "run_id")

    def __init__(
        self,
        logger_config: Any = None,
        logger_def: LoggerDefinition | None = None,
        job_def: Any = None,
        run_id: str | None = None,
    ) -> None:
        self.logger_config = logger_config
        self.logger_def = logger_def
        self.job_def = job_def
        self.run_id = run_id


def build_init_logger_context(logger_config: Any = None, job_def: Any = None) -> InitLoggerContext:
    """A context for calling a logger function in a unit test; the logger checks
    `logger_config` against its schema when called with it."""
    return InitLoggerContext(logger_config, None, job_def, None)


class LoggerDefinition:
    """A logger: `logger_fn(init_context)` returns the `logging.Logger` a run logs to.

    Called directly (`my_logger(None)` or `my_logger(build_init_logger_context(...))`), it
    checks the context's config against `config_schema` (DagsterInvalidConfigError names
    the key path), fills its defaults and returns what `logger_fn` returns.
    """

    def __init__(
        self,
        logger_fn: Callable[[InitLoggerContext], logging.Logger],
        config_schema: Any = None,
        description: str | None = None,
    ) -> None:
        if not callable(logger_fn):
            raise DagsterInvalidDefinitionError(
                f"a LoggerDefinition needs a function, got {type(logger_fn).__name__}"
            )
        self.logger_fn = logger_fn
        self._config_schema = config_schema
        self._config_field: Field | None = None
        self.description = description

    @property
    def config_schema(self) -> Any:
        return self._config_schema

    @property
    def config_field(self) -> Field | None:
        """The schema as a Field (None without one), made on first use."""
        schema = self.config_schema
        if schema is not None and self._config_field is None:
            from dagloom.definitions.config_types import as_field

            self._config_field = as_field(schema)
        return self._config_field

    def process_config(self, config: Any, path: Sequence[str | int] = ("config",)) -> Any:
        """`config` checked against the schema, defaults filled (as given without one)."""
        from dagloom.definitions.config_types import process_config

        field = self.config_field
        if field is None:
            return config
        return process_config(field, config, tuple(path), "logger")

    def initialize(
        self, config: Any, *, job_def: Any = None, run_id: str | None = None
    ) -> logging.Logger:
        """The logger of a run: `logger_fn` called with `config` (already processed)."""
        return self.logger_fn(InitLoggerContext(config, self, job_def, run_id))

    def __call__(self, init_context: InitLoggerContext | None = None) -> logging.Logger:
        context = init_context or InitLoggerContext()
        config = self.process_config(context.logger_config, ("logger_config",))
        return self.initialize(config, job_def=context.job_def, run_id=context.run_id)


@overload
def logger(config_schema: Callable[[InitLoggerContext], logging.Logger]) -> LoggerDefinition: ...


@overload
def logger(
    config_schema: Any = None, description: str | None = None
) -> Callable[[Callable[[InitLoggerContext], logging.Logger]], LoggerDefinition]: ...


def logger(
    config_schema: Any = None, description: str | None = None
) -> LoggerDefinition | Callable[[Callable[[InitLoggerContext], logging.Logger]], LoggerDefinition]:
    """Declare a logger, bare (`@logger`) or with a config schema and description
    (`@logger({"log_level": Field(str, default_value="INFO")}, description=...)`)."""
    if inspect.isfunction(config_schema):
        return LoggerDefinition(config_schema, description=inspect.getdoc(config_schema))

    def wrap(fn: Callable[[InitLoggerContext], logging.Logger]) -> LoggerDefinition:
        return LoggerDefinition(fn, config_schema, description or inspect.getdoc(fn))

    return wrap


def _console_logger(init_context: InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    made = logging.Logger(config["name"], level=logging.getLevelName(config["log_level"]))
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    made.addHandler(handler)
    return made


class _ConsoleLoggerDefinition(LoggerDefinition):
    """The console logger, its schema (`log_level`, `name`, both optional) made when first
    read."""

    @property
    def config_schema(self) -> Any:
        from dagloom.definitions.config_types import Field

        return {
            "log_level": Field(str, is_required=False, default_value="INFO"),
            "name": Field(str, is_required=False, default_value="dagster"),
        }


colored_console_logger: LoggerDefinition = _ConsoleLoggerDefinition(
    _console_logger, description="The default console logger: writes each event to stderr."
)


def default_loggers() -> Mapping[str, LoggerDefinition]:
    """The loggers a job has when it declares none: `console`."""
    return {"console": colored_console_logger}
