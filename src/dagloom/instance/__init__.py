"""The instance: `$DAGLOOM_HOME/dagloom.yaml` and the components it configures.

Importing this package does not import a database driver; a backend's driver is imported
when an instance using it is built.
"""

from __future__ import annotations

from dagloom.instance._instance import DagloomInstance
from dagloom.instance._loader import LoadContext
from dagloom.instance.config import (
    CONFIG_FILE,
    ComponentConfig,
    InstanceConfig,
    default_home,
    load_config_file,
    parse_config,
)

__all__ = [
    "CONFIG_FILE",
    "ComponentConfig",
    "DagloomInstance",
    "InstanceConfig",
    "LoadContext",
    "default_home",
    "load_config_file",
    "parse_config",
]
