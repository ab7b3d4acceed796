"""AutomationConditionSensorDefinition: which assets' automation conditions the daemon
evaluates, and with what run tags.

Without one, every asset with a condition is covered by the default automation sensor
(`default_automation_condition_sensor`); an asset targeted by a declared one is evaluated
only while that sensor runs (`dagloom sensor start NAME`). The sensor has no function of its
own: the daemon's automation loop evaluates the conditions of the assets it targets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagloom.definitions.asset_selection import AssetSelection
from dagloom.definitions.run_request import SkipReason
from dagloom.definitions.sensor import DefaultSensorStatus, SensorDefinition
from dagloom.errors import DagsterInvalidDefinitionError

DEFAULT_AUTOMATION_SENSOR_NAME = "default_automation_condition_sensor"


def _evaluated_by_the_daemon(context: Any) -> SkipReason:
    return SkipReason("automation conditions are evaluated by the daemon's automation loop")


class AutomationConditionSensorDefinition(SensorDefinition):
    """Evaluates the automation conditions of the assets `target` selects (an
    AssetSelection, or asset keys / definitions) on every tick of the automation loop.

    `run_tags` go on every run it launches. `default_status` is STOPPED, as in Dagster.
    `use_user_code_server` is accepted for compatibility: conditions are always evaluated in
    the daemon, from the code location's snapshot.
    """

    def __init__(
        self,
        name: str,
        *,
        target: Any,
        tags: Mapping[str, str] | None = None,
        run_tags: Mapping[str, str] | None = None,
        default_status: DefaultSensorStatus = DefaultSensorStatus.STOPPED,
        minimum_interval_seconds: int | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        use_user_code_server: bool = False,
        default_condition: Any = None,
    ) -> None:
        super().__init__(
            name,
            evaluation_fn=_evaluated_by_the_daemon,
            minimum_interval_seconds=minimum_interval_seconds,
            description=description,
            default_status=default_status,
            tags=tags,
            metadata=metadata,
        )
        if target is None:
            raise DagsterInvalidDefinitionError(
                f"automation condition sensor {name!r} needs a target", name=name
            )
        self._target = _selection(target)
        self._run_tags = {str(k): str(v) for k, v in (run_tags or {}).items()}
        self._use_user_code_server = use_user_code_server
        self._default_condition = default_condition

    @property
    def target(self) -> AssetSelection:
        """The assets whose conditions this sensor evaluates."""
        return self._target

    @property
    def asset_selection(self) -> AssetSelection:
        return self._target

    @property
    def run_tags(self) -> dict[str, str]:
        """Tags on every run this sensor launches."""
        return dict(self._run_tags)


def _selection(target: Any) -> AssetSelection:
    if isinstance(target, AssetSelection):
        return target
    if isinstance(target, str):
        return AssetSelection.from_string(target)
    items = target if isinstance(target, list | tuple | set | frozenset) else [target]
    return AssetSelection.assets(*items)


__all__ = ["DEFAULT_AUTOMATION_SENSOR_NAME", "AutomationConditionSensorDefinition"]
