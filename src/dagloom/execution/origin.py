"""Where a job's code comes from, as plain data another process can use to load it again.

A run worker in another process, and each step process of the multiprocess executor, import
the code location themselves: they are handed a `JobOrigin` (picklable, printable on a
command line), never a `JobDefinition`.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagloom.errors import DagloomInvalidSelectionError, SnapshotMismatchError

if TYPE_CHECKING:
    from dagloom.definitions.asset_checks import AssetCheckKey
    from dagloom.definitions.asset_key import AssetKey
    from dagloom.definitions.asset_selection import AssetGraph
    from dagloom.definitions.definitions import Definitions
    from dagloom.definitions.job import JobDefinition

_LOCATION_PACKAGE = "__dagloom_location__"  # dagloom.code.loader.LOCATION_PACKAGE


@dataclass(frozen=True, slots=True)
class CodeOrigin:
    """Where a code location's code lives: a Python file or an importable module (exactly
    one); the one record for it, in workspaces, topologies, code servers and workers.

    `attribute` picks one Definitions (or job) in it; `working_directory` is where a module
    is imported from (put on `sys.path`). Constructing one with neither or both of
    `python_file` and `module_name` raises `ValueError` (which a pydantic model holding it
    reports under its key path).
    """

    python_file: str | None = None
    module_name: str | None = None
    attribute: str | None = None
    working_directory: str | None = None

    def __post_init__(self) -> None:
        if (self.python_file is None) == (self.module_name is None):
            raise ValueError("give exactly one of python_file and module_name")

    @classmethod
    def from_dict(cls, fields: Mapping[str, Any]) -> CodeOrigin:
        """The origin `to_dict` wrote; `TypeError`/`ValueError` for anything else."""
        return cls(**fields)

    def to_dict(self) -> dict[str, str | None]:
        """The four fields, for JSON (a worker's command line) and YAML; a subclass's own
        fields are left out, so `CodeOrigin.from_dict` reads what any origin writes."""
        return {f.name: getattr(self, f.name) for f in fields(CodeOrigin)}

    def resolved(self, base: Path) -> CodeOrigin:
        """This origin with its paths made absolute against `base`; pure."""
        return replace(
            self,
            python_file=_under(base, self.python_file),
            working_directory=_under(base, self.working_directory),
        )

    @property
    def default_location_name(self) -> str:
        """What the location is called unless named: the file's stem, or the module name."""
        if self.python_file is not None:
            return Path(self.python_file).stem
        return self.module_name or ""

    def load(self) -> Definitions:
        """Import the code and return its Definitions; blocks while user code imports.

        Raises `CodeLocationLoadError` when the code does not import. Each call imports
        again; callers cache (see `load_job`).
        """
        from dagloom.code.loader import load_definitions

        return load_definitions(
            python_file=self.python_file,
            module_name=self.module_name,
            attribute=self.attribute,
            working_directory=self.working_directory,
        )

    def describe(self) -> str:
        """`path/to/defs.py` or `-m package.module`, as a user would name it."""
        where = self.python_file if self.python_file is not None else f"-m {self.module_name}"
        return where if self.attribute is None else f"{where}:{self.attribute}"


@dataclass(frozen=True, slots=True)
class JobOrigin:
    """One job of a code location, with the asset selection it was subset to (if any), the
    asset checks it executes when they are not its assets' checks ((asset path, check name)
    pairs), and the snapshot id of the job the parent executes ("": unchecked)."""

    code: CodeOrigin
    job_name: str
    asset_selection: tuple[tuple[str, ...], ...] = ()
    op_selection: tuple[str, ...] = field(default=())
    snapshot_id: str = ""
    asset_check_selection: tuple[tuple[tuple[str, ...], str], ...] = ()


def _under(base: Path, path: str | None) -> str | None:
    if path is None:
        return None
    return str((base / Path(path).expanduser()).resolve())


def resolve_job(
    definitions: Definitions,
    job_name: str,
    asset_selection: Collection[AssetKey] = (),
    asset_check_selection: Collection[AssetCheckKey] = (),
) -> JobDefinition:
    """The job a run of `job_name` over `asset_selection` and `asset_check_selection`
    executes: the one rule the code location validates with and every worker executes with.

    Without a selection it is the job itself (`__ASSET_JOB` is the implicit asset job). With
    one it is an asset job materializing exactly those assets, which must exist and, when
    `job_name` is a declared asset job, belong to it (that job itself when the selection is
    all of its assets, else its subset, with its executor, config, tags and resources). It
    executes the checks `asset_check_selection` names, or when that is empty every check of
    its assets (those the declared job executes); with checks and no assets it executes
    only the checks. A check computed by its asset's own op (`check_specs`) runs only with
    that asset selected. Raises `DefinitionError` (or its `DagloomInvalidSelectionError`)
    naming what is missing.
    """
    from dagloom.definitions.asset_job import IMPLICIT_ASSET_JOB_NAME

    if not asset_selection and not asset_check_selection:
        return definitions.get_job_def(job_name)
    keys = set(asset_selection)
    graph = definitions.asset_graph
    unknown = keys - graph.keys
    if unknown:
        names = sorted(k.to_user_string() for k in unknown)
        raise DagloomInvalidSelectionError(f"no assets {names} in this location")
    checks = set(asset_check_selection) or None
    if checks is not None:
        _check_selection_problem(graph, keys, checks)
    name = job_name or IMPLICIT_ASSET_JOB_NAME
    if name != IMPLICIT_ASSET_JOB_NAME:
        job = definitions.get_job_def(name)
        layer = job.asset_layer
        allowed = set(layer.asset_keys) if layer is not None else set()
        outside = keys - allowed
        if outside:
            names = sorted(k.to_user_string() for k in outside)
            raise DagloomInvalidSelectionError(
                f"assets {names} are not materialized by job {name!r}", name=name
            )
        if checks is not None:
            foreign = checks - (layer.check_keys if layer is not None else set())
            if foreign:
                names = sorted(k.to_user_string() for k in foreign)
                raise DagloomInvalidSelectionError(
                    f"asset checks {names} are not executed by job {name!r}", name=name
                )
            return job.asset_subset(keys, checks=checks)
        # A declared asset job keeps its own executor, config, tags and resources, over all
        # its assets or a subset of them.
        return job if keys == allowed else job.asset_subset(keys)
    return definitions.get_asset_job(keys, name=name, checks=checks)


def _check_selection_problem(
    graph: AssetGraph, keys: set[AssetKey], checks: set[AssetCheckKey]
) -> None:
    """Raise `DagloomInvalidSelectionError` when `checks` names a check that does not exist,
    or one computed by its asset's op (`check_specs`) without that asset in `keys`."""
    unknown = checks - graph.check_keys_for(graph.keys)
    if unknown:
        names = sorted(k.to_user_string() for k in unknown)
        raise DagloomInvalidSelectionError(f"no asset checks {names} in this location")
    alone = {spec.key for checks_def in graph.checks_defs for spec in checks_def.specs}
    bound = sorted(k.to_user_string() for k in checks - alone if k.asset_key not in keys)
    if bound:
        raise DagloomInvalidSelectionError(
            f"asset checks {bound} are computed by their asset's op and run only with "
            "their asset selected"
        )


def job_from_definitions(
    defs: Definitions,
    job_name: str,
    asset_selection: Sequence[Sequence[str]] = (),
    asset_check_selection: Sequence[tuple[Sequence[str], str]] = (),
) -> JobDefinition:
    """`resolve_job` with the selection given as key paths and checks as (asset path, check
    name) pairs (as runs and origins hold them)."""
    from dagloom.definitions.asset_checks import AssetCheckKey
    from dagloom.definitions.asset_key import AssetKey

    return resolve_job(
        defs,
        job_name,
        [AssetKey(list(path)) for path in asset_selection],
        [AssetCheckKey(AssetKey(list(path)), name) for path, name in asset_check_selection],
    )


_loaded: dict[CodeOrigin, Definitions] = {}
_checked: dict[JobOrigin, JobDefinition] = {}


def load_job(origin: JobOrigin) -> JobDefinition:
    """The job `origin` names, importing its code the first time this process asks.

    The Definitions is cached per `CodeOrigin` for the life of the process, so a warm step
    process imports user code once, until a job origin names a snapshot id its code does
    not give: then the code is imported again, fresh (the parent runs newer code), and
    `SnapshotMismatchError` names both ids if it still differs. Blocks while importing.
    """
    job = _checked.get(origin)
    if job is not None:
        return job
    job = _job(origin, fresh=False)
    if origin.snapshot_id:
        from dagloom.code.snapshot import job_snapshot

        if job_snapshot(job).snapshot_id != origin.snapshot_id:
            job = _job(origin, fresh=True)
            actual = job_snapshot(job).snapshot_id
            if actual != origin.snapshot_id:
                raise SnapshotMismatchError(
                    location=origin.code.describe(),
                    job_name=origin.job_name,
                    expected=origin.snapshot_id,
                    actual=actual,
                )
        _checked[origin] = job
    return job


def _job(origin: JobOrigin, *, fresh: bool) -> JobDefinition:
    defs = None if fresh else _loaded.get(origin.code)
    if defs is None:
        if fresh:
            # The fresh import the code location does on a reload (bytecode dropped, a
            # module's package forgotten); imported here, as it lives with the actors.
            from dagloom.actors.code_location import load_location

            loaded = load_location(origin.code, location_name="", loaded_at=0.0, fresh=True)
            defs = loaded.definitions
        else:
            defs = origin.code.load()
        _loaded[origin.code] = defs
    job = job_from_definitions(
        defs, origin.job_name, origin.asset_selection, origin.asset_check_selection
    )
    if origin.op_selection:
        from dagloom.execution.plan import select_nodes
        from dagloom.execution.run import subset_job

        job = subset_job(job, select_nodes(job, list(origin.op_selection)))
    return job


def infer_code_origin(job: JobDefinition) -> CodeOrigin | None:
    """The code origin of the module that defines `job`'s first op, or None if there is none.

    A file loaded by `dagloom.code.loader` is found again by its path; a module by its name.
    `__main__` and modules made at runtime have no origin another process could import.
    """
    for node in job.nodes.values():
        module_name = getattr(node.op.compute_fn, "__module__", None)
        module = sys.modules.get(module_name or "")
        if module is None or module_name == "__main__":
            return None
        path = getattr(module, "__file__", None)
        if module_name is not None and module_name.startswith(f"{_LOCATION_PACKAGE}."):
            return CodeOrigin(python_file=path) if path else None
        return CodeOrigin(module_name=module_name)
    return None
