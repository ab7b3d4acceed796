"""AssetValueLoader: reads stored asset values through their IO managers, outside any run."""

from __future__ import annotations

from contextlib import ExitStack
from typing import TYPE_CHECKING, Any, Self

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.errors import DefinitionError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dagloom.definitions.definitions import Definitions
    from dagloom.definitions.resources import Resources

__all__ = ["AssetValueLoader"]


class AssetValueLoader:
    """Loads the values of a Definitions' assets (`defs.get_asset_value_loader()`), used as
    a context manager: `with defs.get_asset_value_loader() as loader:
    loader.load_asset_value(key)`.

    The resources an asset's IO manager needs are built on the first load that needs them
    and kept for the next ones; leaving the block tears them all down (closing twice is
    safe).
    """

    def __init__(self, defs: Definitions) -> None:
        self._defs = defs
        self._stack = ExitStack()
        self._built: dict[int, Resources] = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Tear down the resources built so far."""
        self._built.clear()
        self._stack.close()

    def load_asset_value(
        self,
        asset_key: CoercibleToAssetKey,
        *,
        python_type: type | None = None,
        metadata: Mapping[str, Any] | None = None,
        resource_config: Mapping[str, Any] | None = None,
    ) -> Any:
        """The stored value of asset `asset_key`, loaded through the IO manager that stores
        it (its `io_manager_key`; `io_manager` defaults to the filesystem IO manager under
        `$DAGLOOM_HOME/storage`, as `materialize` stores). The resources are the asset's own
        (`with_resources`, `@asset(resource_defs=...)`) under the Definitions' ones;
        `resource_config` is shaped as run config's `resources:` section. `python_type` is
        the type the IO manager sees as the input's `dagster_type`."""
        from dagloom.definitions.io_manager import FilesystemIOManager, InputContext
        from dagloom.definitions.resources import build_resources

        defs = self._defs
        graph = defs.asset_graph
        key = AssetKey.from_coercible(asset_key)
        if key not in graph.keys and key not in graph.external_specs:
            raise DefinitionError(f"no asset {key.to_user_string()!r}", name=key.to_user_string())
        manager_key = graph.io_manager_key_of(key)
        own: Mapping[str, Any] = next(
            (a.resource_defs for a in graph.assets_defs if key in a.keys), {}
        )
        cache_key = id(own)
        built = self._built.get(cache_key) if resource_config is None else None
        if built is None:
            resources = {**own, **defs.resources}
            if manager_key == "io_manager" and manager_key not in resources:
                resources[manager_key] = FilesystemIOManager()
            built = self._stack.enter_context(
                build_resources(resources, resource_config=resource_config)
            )
            if resource_config is None:
                self._built[cache_key] = built
        context = InputContext(
            key.path[-1],
            None,
            None,
            asset_key=key,
            definition_metadata=metadata,
            resources=built,
        )
        if python_type is not None:
            context.dagster_type = python_type
        return getattr(built, manager_key).load_input(context)
