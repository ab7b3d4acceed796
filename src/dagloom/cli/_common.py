"""What the `job` and `asset` commands share: loading code, run config, the instance, a run."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import anyio
import typer
from rich.console import Console
from rich.text import Text

from dagloom.code import load_definitions
from dagloom.definitions.definitions import Definitions
from dagloom.definitions.job import JobDefinition
from dagloom.errors import (
    CodeLocationLoadError,
    ConfigError,
    DagloomError,
    DefinitionError,
    StorageError,
    format_key_path,
)
from dagloom.execution.run_config import deep_merge
from dagloom.instance.config import read_yaml_file
from dagloom.instance.yaml_bounds import expanded_size

if TYPE_CHECKING:
    from dagloom.instance import DagloomInstance
    from dagloom.messages import Run

EXIT_FAILED = 1
"""The run started and failed."""
EXIT_USAGE = 2
"""Nothing ran: bad arguments, code that does not load, an unknown name, or bad config."""

# -- options shared by the commands --------------------------------------------------------

PythonFileOpt = Annotated[
    Path | None,
    typer.Option("--python-file", "-f", help="The Python file that defines the code."),
]
ModuleNameOpt = Annotated[
    str | None,
    typer.Option("--module-name", "-m", help="The module that defines the code."),
]
AttributeOpt = Annotated[
    str | None,
    typer.Option(
        "--attribute", "-a", help="The Definitions (or job) attribute, if not the only one."
    ),
]
WorkingDirOpt = Annotated[
    Path | None,
    typer.Option("--working-directory", "-d", help="Where -m modules are found (default: here)."),
]
PythonFilesOpt = Annotated[
    list[Path] | None,
    typer.Option("--python-file", "-f", help="A Python file of definitions (repeatable)."),
]
ModuleNamesOpt = Annotated[
    list[str] | None,
    typer.Option("--module-name", "-m", help="A module of definitions (repeatable)."),
]
WorkspaceFileOpt = Annotated[
    Path | None,
    typer.Option("--workspace", "-w", help="A workspace.yaml naming the code locations."),
]
ConfigFilesOpt = Annotated[
    list[Path] | None,
    typer.Option("--config", "-c", help="A run config YAML file; later files override."),
]
ConfigJsonOpt = Annotated[
    str | None,
    typer.Option("--config-json", help="Run config as JSON, laid over the files."),
]
TagsOpt = Annotated[
    str | None,
    typer.Option("--tags", help='Run tags as a JSON object, e.g. \'{"team": "data"}\'.'),
]


def consoles() -> tuple[Console, Console]:
    """(stdout, stderr) consoles; made per command so they write to the streams of the moment
    (typer's CliRunner swaps them)."""
    return Console(highlight=False), Console(stderr=True, highlight=False)


def fail(err: Console, message: str, code: int = EXIT_USAGE, *, detail: str = "") -> NoReturn:
    """Print `message` (and `detail`, plain) to stderr and exit with `code`."""
    err.print(Text(f"Error: {message}", style="bold red"), soft_wrap=True)
    if detail:
        err.print(Text(detail.rstrip()), soft_wrap=True)
    raise typer.Exit(code)


def load_or_exit(
    err: Console,
    python_file: Path | None,
    module_name: str | None,
    attribute: str | None,
    working_directory: Path | None,
) -> Definitions:
    """The Definitions of the code named on the command line, or exit 2 saying why."""
    if (python_file is None) == (module_name is None):
        fail(err, "give exactly one of -f/--python-file and -m/--module-name")
    try:
        return load_definitions(
            python_file=python_file,
            module_name=module_name,
            attribute=attribute,
            working_directory=working_directory,
        )
    except CodeLocationLoadError as exc:
        fail(err, str(exc), detail=exc.traceback_text)
    except DefinitionError as exc:
        fail(err, str(exc))


# -- run config and tags -------------------------------------------------------------------


class RunConfigSources:
    """Run config read from YAML files (in order) and a JSON string, merged; remembers which
    source holds each key so an error can name the file."""

    def __init__(self) -> None:
        self.layers: list[tuple[str, Mapping[str, Any]]] = []

    @classmethod
    def read(cls, files: Sequence[Path], config_json: str | None) -> RunConfigSources:
        """Read every source; a file that is missing or not a YAML mapping raises ConfigError
        naming it."""
        out = cls()
        for path in files:
            out._add(str(path), read_yaml_file(path))
        if config_json is not None:
            try:
                data = json.loads(config_json)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"not valid JSON: {exc}", source="--config-json") from exc
            except RecursionError as exc:
                raise ConfigError("nested too deeply", source="--config-json") from exc
            try:
                expanded_size(data)
            except ValueError as exc:
                raise ConfigError(f"refused: {exc}", source="--config-json") from exc
            out._add("--config-json", data)
        return out

    def _add(self, source: str, data: Any) -> None:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"run config must be a mapping, got {type(data).__name__}", source=source
            )
        self.layers.append((source, data))

    @property
    def merged(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for _, data in self.layers:
            out = deep_merge(out, data)
        return out

    def source_of(self, path: Sequence[str | int]) -> str | None:
        """The last source holding the longest prefix of `path` (the one that set it)."""
        best: tuple[int, str] | None = None
        for source, data in self.layers:
            depth = _depth_present(data, path)
            if depth and (best is None or depth >= best[0]):
                best = (depth, source)
        return None if best is None else best[1]


def _depth_present(data: Any, path: Sequence[str | int]) -> int:
    depth = 0
    for part in path:
        if isinstance(data, Mapping):
            if part not in data:
                break
        elif not (isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)):
            break
        data = data[part]
        depth += 1
    return depth


def explain_config_error(exc: ConfigError, sources: RunConfigSources) -> str:
    """The error with each problem's key path and the file it came from."""
    if not exc.problems:
        return str(exc)
    head = str(exc).splitlines()[0]
    lines = [head]
    for path, text in exc.problems:
        source = sources.source_of(path)
        where = f" (in {source})" if source else ""
        lines.append(f"  at {format_key_path(path)}{where}: {text}")
    return "\n".join(lines)


def parse_tags(text: str | None) -> dict[str, str]:
    """Tags from a JSON object; non-string values are kept as their JSON text."""
    if text is None:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--tags is not valid JSON: {exc}", source="--tags") from exc
    if not isinstance(data, dict):
        raise ConfigError("--tags must be a JSON object", source="--tags")
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}


# -- the instance --------------------------------------------------------------------------


def instance_home() -> Path:
    """Where runs are recorded: `$DAGLOOM_HOME`, or `./.dagloom` when it is not set. The
    instance there is created on first use with the embedded defaults (SQLite)."""
    from dagloom.instance.config import DEFAULT_HOME

    return Path(os.environ.get("DAGLOOM_HOME") or DEFAULT_HOME)


@asynccontextmanager
async def open_instance(home: Path | None) -> AsyncIterator[DagloomInstance | None]:
    """The instance at `home`, entered, or None when `home` is None (record nowhere).

    Raises StorageError or ConfigError when the instance cannot be opened.
    """
    if home is None:
        yield None
        return
    from dagloom.instance import DagloomInstance

    async with DagloomInstance.open(home) as instance:
        yield instance


# -- running a job -------------------------------------------------------------------------


def run_options_or_exit(
    err: Console, config: list[Path] | None, config_json: str | None, tags: str | None
) -> tuple[RunConfigSources, dict[str, str]]:
    """The run config sources and tags given by `--config`, `--config-json` and `--tags`;
    exits 2 naming the file or option that is invalid."""
    try:
        return RunConfigSources.read(config or [], config_json), parse_tags(tags)
    except ConfigError as exc:
        fail(err, str(exc))


def execute_or_exit(
    job: JobDefinition,
    *,
    sources: RunConfigSources,
    tags: Mapping[str, str],
    title: str,
    out: Console,
    err: Console,
    run: Run | None = None,
    home: Path | None = None,
) -> None:
    """Validate the run config, run `job` with a live view, print a summary, and exit:
    0 when the run succeeded, 1 when it failed (storage failing under it included), 2 when
    it could not start.

    `run` is a run to store and execute as it is given (a re-execution, with its parent,
    root and steps to execute), in the instance at `home` (default: `instance_home()`).

    With an instance (see `instance_home`) the run is recorded there, and a job without its
    own `io_manager` keeps outputs in the instance's storage directory, as Dagster's default
    filesystem IO manager does, so a later run of a subset can load what this one stored.
    Without one, outputs stay in memory and nothing is written.
    """
    code = anyio.run(
        _execute, job, sources, dict(tags), home or instance_home(), title, out, err, run
    )
    raise typer.Exit(code)


async def _execute(
    job: JobDefinition,
    sources: RunConfigSources,
    tags: dict[str, str],
    home: Path | None,
    title: str,
    out: Console,
    err: Console,
    run: Run | None = None,
) -> int:
    from dagloom.cli._progress import RunProgress
    from dagloom.execution.run import (
        default_resource_defs,
        execute_job_in_process,
        with_storage_io_manager,
    )
    from dagloom.execution.run_config import resolve_run_config
    from dagloom.execution.run_thread import run_on_own_thread
    from dagloom.messages import EventType

    run_config = sources.merged
    try:
        async with open_instance(home) as instance:
            if instance is not None:
                job = with_storage_io_manager(job, instance.storage_dir)
            try:
                resolve_run_config(job, run_config, default_resource_defs(job))
            except ConfigError as exc:
                fail(err, explain_config_error(exc, sources))
            if run is not None and instance is not None:
                run = await instance.create_run(run)
            view = RunProgress(job.get_plan(), out, title=title)
            with view:
                execute = functools.partial(
                    execute_job_in_process,
                    job,
                    run_config=run_config,
                    instance=instance,
                    raise_on_error=False,
                    tags=tags,
                    sink=view,
                    run_id=run.run_id if run is not None else None,
                    run_is_stored=run is not None and instance is not None,
                    parent_run_id=run.parent_run_id if run is not None else None,
                    step_keys_to_execute=list(run.step_keys_to_execute) if run else (),
                )
                try:
                    # With an instance the run executes on a thread of its own, so op code
                    # can call `context.instance` without waiting on this loop.
                    result = await (
                        run_on_own_thread(execute, name=f"dagloom run of {job.name}")
                        if instance is not None
                        else execute()
                    )
                except StorageError as exc:
                    # The run started: its events, or its end, could not all be stored.
                    fail(err, f"storage failed under the run: {exc}", EXIT_FAILED)
    except DagloomError as exc:
        fail(err, str(exc))

    out.print(view.summary())
    where = f" (recorded in {instance.home})" if instance is not None else ""
    materialized = len(result.filter_events(EventType.ASSET_MATERIALIZATION))
    assets = f", {materialized} asset(s) materialized" if materialized else ""
    if result.success:
        out.print(
            Text(f"Run {result.run_id} succeeded{assets}{where}.", style="bold green"),
            soft_wrap=True,
        )
        return 0
    failed = view.failed
    err.print(Text(f"Run {result.run_id} failed{assets}{where}.", style="bold red"), soft_wrap=True)
    for record in failed:
        err.print(Text(f"  {record.key}: {record.error}", style="red"), soft_wrap=True)
    if not failed:
        failure = result.get_run_failure_event()
        error = failure.run_failure.error if failure.run_failure else None
        text = f"{error.cls_name}: {error.message}" if error else failure.message
        err.print(Text(f"  {text}", style="red"), soft_wrap=True)
    return EXIT_FAILED
