"""Collecting the assets a module or a package of modules defines, as Dagster's loaders do."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from dagloom.definitions.asset import AssetDep, AssetsDefinition, AssetSpec
from dagloom.definitions.asset_key import AssetKey
from dagloom.errors import DagsterInvalidDefinitionError
from dagloom.execution.boundary import user_code


def load_assets_from_modules(
    modules: Iterable[ModuleType],
    group_name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
) -> list[AssetsDefinition]:
    """Every `AssetsDefinition` bound to a name in `modules`, each once, in module order.

    `group_name` puts them all in that group; `key_prefix` prefixes their keys and the
    references between them (an asset reading another loaded asset follows it), not
    references to assets loaded elsewhere. Two different definitions of one key raise
    `DagsterInvalidDefinitionError` naming the key and both modules. Pure apart from reading
    module attributes; nothing is imported.
    """
    found: dict[int, AssetsDefinition] = {}
    owner: dict[AssetKey, tuple[AssetsDefinition, str]] = {}
    for module in modules:
        for value in list(vars(module).values()):
            if not isinstance(value, AssetsDefinition) or id(value) in found:
                continue
            for key in value.keys:
                seen = owner.get(key)
                if seen is not None and seen[0] is not value:
                    raise DagsterInvalidDefinitionError(
                        f"asset {key.to_user_string()!r} is defined twice: in module "
                        f"{seen[1]!r} and in module {module.__name__!r}",
                        name=key.to_user_string(),
                    )
                owner[key] = (value, module.__name__)
            found[id(value)] = value
    assets = list(found.values())
    if group_name is None and key_prefix is None:
        return assets
    return _rewrite(assets, group_name, key_prefix)


def load_assets_from_package_module(
    package_module: ModuleType,
    group_name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
) -> list[AssetsDefinition]:
    """`load_assets_from_modules` over a package and every module below it, imported here.

    What importing a submodule raises becomes `UserCodeError` naming the module.
    """
    return load_assets_from_modules(_package_modules(package_module), group_name, key_prefix)


def load_assets_from_package_name(
    package_name: str,
    group_name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
) -> list[AssetsDefinition]:
    """`load_assets_from_package_module` for the package imported by name."""
    with user_code("module", package_name, "import"):
        package = importlib.import_module(package_name)
    return load_assets_from_package_module(package, group_name, key_prefix)


def load_assets_from_current_module(
    group_name: str | None = None,
    key_prefix: str | Sequence[str] | None = None,
) -> list[AssetsDefinition]:
    """`load_assets_from_modules` over the module that calls it (`__main__` included).

    Raises `DagsterInvalidDefinitionError` when the caller is not a module's code (an
    interactive prompt, `exec` without a module name)."""
    module = calling_module("load_assets_from_current_module", "load_assets_from_modules")
    return load_assets_from_modules([module], group_name, key_prefix)


def calling_module(loader: str, instead: str) -> ModuleType:
    """The module whose code called the function that calls this one (`loader`, a
    `load_*_from_current_module`); DagsterInvalidDefinitionError, pointing at `instead`, when
    that caller is not a module's code."""
    import inspect
    import sys

    frame = inspect.currentframe()
    loader_frame = frame.f_back if frame is not None else None
    caller = loader_frame.f_back if loader_frame is not None else None
    module_name = caller.f_globals.get("__name__") if caller is not None else None
    del frame, loader_frame, caller
    module = sys.modules.get(module_name) if isinstance(module_name, str) else None
    if module is None:
        raise DagsterInvalidDefinitionError(
            f"{loader} could not find the calling module ({module_name!r} is not in "
            f"sys.modules); use {instead}"
        )
    return module


def _package_modules(package: ModuleType) -> list[ModuleType]:
    modules = [package]
    path = getattr(package, "__path__", None)
    if path is None:
        return modules
    for info in pkgutil.walk_packages(path, prefix=f"{package.__name__}."):
        with user_code("module", info.name, "import"):
            modules.append(importlib.import_module(info.name))
    return modules


def _rewrite(
    assets: list[AssetsDefinition],
    group_name: str | None,
    key_prefix: str | Sequence[str] | None,
) -> list[AssetsDefinition]:
    """Copies of `assets` in group `group_name` with keys prefixed by `key_prefix`."""
    renamed: dict[AssetKey, AssetKey] = {}
    if key_prefix is not None:
        for assets_def in assets:
            for key in assets_def.keys:
                renamed[key] = key.with_prefix(key_prefix)

    def move(key: AssetKey) -> AssetKey:
        return renamed.get(key, key)

    out: list[AssetsDefinition] = []
    for assets_def in assets:
        specs: dict[str, AssetSpec] = {}
        for name, spec in assets_def.specs_by_output.items():
            changes: dict[str, Any] = {
                "key": move(spec.key),
                "deps": tuple(
                    AssetDep(move(d.asset_key), partition_mapping=d.partition_mapping)
                    for d in spec.deps
                ),
            }
            if group_name is not None:
                changes["group_name"] = group_name
            specs[name] = spec.replace_attributes(**changes)
        copy = AssetsDefinition(
            op=assets_def.op,
            specs_by_output=specs,
            keys_by_input={name: move(k) for name, k in assets_def.keys_by_input.items()},
            can_subset=assets_def.can_subset,
            resource_defs=assets_def.resource_defs,
            partitions_def=assets_def.partitions_def,
            partition_mappings={move(k): m for k, m in assets_def.partition_mappings.items()},
            backfill_policy=assets_def.backfill_policy,
        )
        copy.deps_by_key = {
            move(key): tuple(move(d) for d in deps) for key, deps in assets_def.deps_by_key.items()
        }
        out.append(copy)
    return out


__all__ = [
    "load_assets_from_current_module",
    "load_assets_from_modules",
    "load_assets_from_package_module",
    "load_assets_from_package_name",
]
