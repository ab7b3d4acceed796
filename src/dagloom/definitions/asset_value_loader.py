"""AssetValueLoader: stored asset values loaded outside any run, through their IO managers."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Self

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.errors import DefinitionError

if TYPE_CHECKING:
    from dagloom.definitions.definitions import Definitions
    from dagloom.definitions.resources import Resources


class AssetValueLoader:
    """Loads asset values as a downstream asset's inputs would, for notebooks and scripts:
    `with defs.get_asset_value_loader() as loader: loader.load_asset_value("orders")`.

    The resources are the asset's own (`with_resources`, `@asset(resource_defs=...)`) over
    the location's; they are built on the first load that needs them, once for each set of
    them and `resource_config`, and torn down (in reverse order) when the `with` block ends;
    `close` does the same and is safe to call twice.
    """

    def __init__(self, defs: Definitions, instance: Any = None) -> None:
        self._defs = defs
        self._instance = instance
        self._stack = ExitStack()
        self._built: dict[str, Resources] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._built.clear()

    def load_asset_value(
        self,
        asset_key: CoercibleToAssetKey,
        *,
        python_type: type | None = None,
        partition_key: str | None = None,
        input_definition_metadata: Mapping[str, Any] | None = None,
        resource_config: Mapping[str, Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Any:
        """The stored value of asset `asset_key` (of one partition, for `partition_key`),
        loaded through the IO manager that stores it (its `io_manager_key`; `io_manager`
        defaults to the filesystem IO manager under `$DAGLOOM_HOME/storage`, where
        `materialize` stores). `python_type` is the type the IO manager sees as the
        input's `dagster_type.typing_type`; `resource_config` is shaped as run config's
        `resources:`. DefinitionError names an asset the location does not have."""
        from dagloom.definitions.dagster_type import resolve_dagster_type
        from dagloom.definitions.io_manager import InputContext

        defs = self._defs
        key = AssetKey.from_coercible(asset_key)
        graph = defs.asset_graph
        if key not in graph.keys and key not in graph.external_specs:
            raise DefinitionError(f"no asset {key.to_user_string()!r}", name=key.to_user_string())
        manager_key = graph.io_manager_key_of(key)
        own: Mapping[str, Any] = next(
            (a.resource_defs for a in graph.assets_defs if key in a.keys), {}
        )
        built = self._resources(own, resource_config)
        context = InputContext(
            key.path[-1],
            None,
            None,
            asset_key=key,
            definition_metadata=input_definition_metadata or metadata,
            resources=built,
        )
        context.dagster_type = resolve_dagster_type(python_type)
        if partition_key is not None:
            context.set_partitions([partition_key], graph.partitions_def(key), partition_key)
        return getattr(built, manager_key).load_input(context)

    def _resources(
        self, own: Mapping[str, Any], resource_config: Mapping[str, Any] | None
    ) -> Resources:
        from dagloom.definitions.io_manager import FilesystemIOManager
        from dagloom.definitions.resources import build_resources

        cache_key = f"{id(own)} {sorted((resource_config or {}).items())!r}"
        found = self._built.get(cache_key)
        if found is None:
            resources = {**self._defs.resources, **own}
            resources.setdefault("io_manager", FilesystemIOManager())
            found = self._stack.enter_context(
                build_resources(resources, self._instance, resource_config=resource_config)
            )
            self._built[cache_key] = found
        return found


__all__ = ["AssetValueLoader"]
