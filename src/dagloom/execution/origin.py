"""Where a job's code comes from, as plain data another process can use to load it again.

A run worker in another process, and each step process of the multiprocess executor, import
the code location themselves: they are handed a `JobOrigin` (picklable, printable on a
command line), never a `JobDefinition`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dagloom.errors import DefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.definitions import Definitions
    from dagloom.definitions.job import JobDefinition

_LOCATION_PACKAGE = "__dagloom_location__"  # dagloom.code.loader.LOCATION_PACKAGE


@dataclass(frozen=True, slots=True)
class CodeOrigin:
    """A code location's source: a Python file or an importable module (exactly one).

    `attribute` picks one Definitions (or job) in it; `working_directory` is appended to
    `sys.path` for a module.
    """

    python_file: str | None = None
    module_name: str | None = None
    attribute: str | None = None
    working_directory: str | None = None

    def __post_init__(self) -> None:
        if (self.python_file is None) == (self.module_name is None):
            raise DefinitionError("a code origin needs exactly one of python_file, module_name")

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
    """One job of a code location, with the asset selection it was subset to (if any)."""

    code: CodeOrigin
    job_name: str
    asset_selection: tuple[tuple[str, ...], ...] = ()
    op_selection: tuple[str, ...] = field(default=())


def job_from_definitions(
    defs: Definitions, job_name: str, asset_selection: Sequence[Sequence[str]] = ()
) -> JobDefinition:
    """The job `job_name` of `defs`, restricted to `asset_selection` when one is given.

    Raises `DefinitionError` naming the job when there is no such job or asset.
    """
    from dagloom.definitions.asset_key import AssetKey

    if not asset_selection:
        return defs.get_job_def(job_name)
    selection = {AssetKey(list(path)) for path in asset_selection}
    for key in selection:
        defs.get_assets_def(key)  # raises DefinitionError naming a key that is not there
    return defs.get_asset_job(selection, name=job_name)


_loaded: dict[CodeOrigin, Definitions] = {}


def load_job(origin: JobOrigin) -> JobDefinition:
    """The job `origin` names, importing its code the first time this process asks.

    The Definitions is cached per `CodeOrigin` for the life of the process, so a warm step
    process imports user code once. Blocks while importing.
    """
    defs = _loaded.get(origin.code)
    if defs is None:
        defs = _loaded[origin.code] = origin.code.load()
    job = job_from_definitions(defs, origin.job_name, origin.asset_selection)
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
