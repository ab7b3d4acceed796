"""AutomationCondition: when an asset should run, declared as a tree of small conditions.

`@asset(automation_condition=AutomationCondition.eager())` asks the automation daemon loop to
request the asset whenever an upstream asset updates; `on_cron`, `on_missing` and the
operators `&`, `|`, `~`, `.since(...)` compose others. A condition is a frozen value: it says
nothing about how it is evaluated (that is `dagloom.daemon._automation`), and it round-trips
through `to_dict` / `condition_from_dict` so a code snapshot carries it to the daemon.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

from dagloom.definitions._cron import cron_problem, load_timezone
from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.errors import DagsterInvalidDefinitionError

# Leaf kinds whose value depends only on the asset's own records (no arguments).
LEAF_KINDS = frozenset(
    {
        "missing",
        "in_progress",
        "newly_requested",
        "newly_updated",
        "code_version_changed",
        "initial_evaluation",
        "will_be_requested",
        "execution_failed",
    }
)
OPERATOR_KINDS = frozenset({"and", "or", "not", "since", "newly_true"})
DEP_KINDS = frozenset({"any_deps_match", "all_deps_match"})
OTHER_KINDS = frozenset({"cron_tick_passed", "in_latest_time_window", "asset_matches"})
KINDS = LEAF_KINDS | OPERATOR_KINDS | DEP_KINDS | OTHER_KINDS

_DEFAULT_LABELS = {
    "missing": "missing",
    "in_progress": "in_progress",
    "newly_requested": "newly_requested",
    "newly_updated": "newly_updated",
    "code_version_changed": "code_version_changed",
    "initial_evaluation": "initial_evaluation",
    "will_be_requested": "will_be_requested",
    "execution_failed": "execution_failed",
}


@dataclass(frozen=True, slots=True)
class AutomationCondition:
    """A condition on an asset's partitions, true or false per partition on each tick.

    Build one with the constructors (`AutomationCondition.eager()`, `.on_cron("0 * * * *")`,
    `.missing()`, ...) and combine with `&`, `|`, `~`, `.since(...)`. `label` names a node in
    the evaluation tree shown by `dagloom asset automation KEY`.
    """

    kind: str
    children: tuple[AutomationCondition, ...] = ()
    label: str | None = None
    cron_schedule: str | None = None
    cron_timezone: str = "UTC"
    lookback_seconds: float | None = None
    asset_key: AssetKey | None = None
    allow_keys: frozenset[AssetKey] | None = None
    ignore_keys: frozenset[AssetKey] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DagsterInvalidDefinitionError(
                f"unknown automation condition kind {self.kind!r}", name=self.kind
            )

    # -- operators ---------------------------------------------------------------------------

    def __and__(self, other: AutomationCondition) -> AutomationCondition:
        _check_condition(other, "&")
        left = self.children if self.kind == "and" and self.label is None else (self,)
        right = other.children if other.kind == "and" and other.label is None else (other,)
        return AutomationCondition("and", (*left, *right))

    def __or__(self, other: AutomationCondition) -> AutomationCondition:
        _check_condition(other, "|")
        left = self.children if self.kind == "or" and self.label is None else (self,)
        right = other.children if other.kind == "or" and other.label is None else (other,)
        return AutomationCondition("or", (*left, *right))

    def __invert__(self) -> AutomationCondition:
        return AutomationCondition("not", (self,))

    def since(self, reset_condition: AutomationCondition) -> AutomationCondition:
        """True from the tick this condition becomes true until `reset_condition` becomes
        true (a tick where both become true leaves it false)."""
        _check_condition(reset_condition, "since")
        return AutomationCondition("since", (self, reset_condition))

    def since_last_handled(self) -> AutomationCondition:
        """True once this condition became true after the asset was last requested or
        updated (or after its first evaluation)."""
        handled = (
            AutomationCondition.newly_requested()
            | AutomationCondition.newly_updated()
            | AutomationCondition.initial_evaluation()
        ).with_label("handled")
        return self.since(handled)

    def newly_true(self) -> AutomationCondition:
        """True where this condition is true now but was false on the previous tick."""
        return AutomationCondition("newly_true", (self,))

    def with_label(self, label: str | None) -> AutomationCondition:
        """This condition, shown as `label` in evaluation trees."""
        return replace(self, label=label)

    def replace(
        self, old: AutomationCondition | str, new: AutomationCondition
    ) -> AutomationCondition:
        """This tree with every sub-condition equal to `old`, or named `old` (its label, or
        a constructor's name such as "newly_updated"), replaced by `new`."""
        if (isinstance(old, str) and self.name == old) or self == old:
            return new
        return replace(self, children=tuple(c.replace(old, new) for c in self.children))

    def allow(self, selection: Any) -> AutomationCondition:
        """A dependency condition restricted to the deps in `selection` (keys or an
        AssetSelection of keys)."""
        return replace(self, allow_keys=frozenset(_keys_of(selection, self.name)))

    def ignore(self, selection: Any) -> AutomationCondition:
        """A dependency condition that disregards the deps in `selection`."""
        return replace(
            self, ignore_keys=self.ignore_keys | frozenset(_keys_of(selection, self.name))
        )

    # -- description -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The label, else a short description of this node."""
        if self.label is not None:
            return self.label
        return self.description

    @property
    def description(self) -> str:
        match self.kind:
            case "and":
                return "all of"
            case "or":
                return "any of"
            case "not":
                return "not"
            case "since":
                return "since"
            case "newly_true":
                return "newly true"
            case "cron_tick_passed":
                return f"cron_tick_passed({self.cron_schedule}, {self.cron_timezone})"
            case "in_latest_time_window":
                if self.lookback_seconds is None:
                    return "in_latest_time_window"
                return f"in_latest_time_window(lookback={self.lookback_seconds:g}s)"
            case "asset_matches":
                key = self.asset_key.to_user_string() if self.asset_key else "?"
                return f"asset_matches({key})"
            case "any_deps_match":
                return "any_deps_match"
            case "all_deps_match":
                return "all_deps_match"
        return _DEFAULT_LABELS[self.kind]

    def __str__(self) -> str:
        if self.kind in ("and", "or") and self.label is None:
            op = " & " if self.kind == "and" else " | "
            return "(" + op.join(str(c) for c in self.children) + ")"
        if self.kind == "not" and self.label is None:
            return f"~{self.children[0]}"
        if self.kind == "since" and self.label is None:
            return f"{self.children[0]}.since({self.children[1]})"
        return self.name

    # -- serialization -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe form of this tree; `condition_from_dict` reads it back."""
        out: dict[str, Any] = {"kind": self.kind}
        if self.children:
            out["children"] = [c.to_dict() for c in self.children]
        if self.label is not None:
            out["label"] = self.label
        if self.cron_schedule is not None:
            out["cron_schedule"] = self.cron_schedule
            out["cron_timezone"] = self.cron_timezone
        if self.lookback_seconds is not None:
            out["lookback_seconds"] = self.lookback_seconds
        if self.asset_key is not None:
            out["asset_key"] = list(self.asset_key.path)
        if self.allow_keys is not None:
            out["allow_keys"] = sorted(list(k.path) for k in self.allow_keys)
        if self.ignore_keys:
            out["ignore_keys"] = sorted(list(k.path) for k in self.ignore_keys)
        return out

    # -- constructors ------------------------------------------------------------------------

    @staticmethod
    def missing() -> AutomationCondition:
        """True for partitions that have never been materialized."""
        return AutomationCondition("missing")

    @staticmethod
    def in_progress() -> AutomationCondition:
        """True for partitions targeted by a run that has not finished."""
        return AutomationCondition("in_progress")

    @staticmethod
    def execution_failed() -> AutomationCondition:
        """True for partitions whose latest run targeting them failed."""
        return AutomationCondition("execution_failed")

    @staticmethod
    def newly_requested() -> AutomationCondition:
        """True for partitions requested on the previous tick."""
        return AutomationCondition("newly_requested")

    @staticmethod
    def newly_updated() -> AutomationCondition:
        """True for partitions materialized since the previous tick."""
        return AutomationCondition("newly_updated")

    @staticmethod
    def will_be_requested() -> AutomationCondition:
        """True for partitions requested on this tick (meaningful on a dependency)."""
        return AutomationCondition("will_be_requested")

    @staticmethod
    def code_version_changed() -> AutomationCondition:
        """True when the asset's code_version differs from the previous tick's."""
        return AutomationCondition("code_version_changed")

    @staticmethod
    def initial_evaluation() -> AutomationCondition:
        """True on the first tick that evaluates this condition for the asset."""
        return AutomationCondition("initial_evaluation")

    @staticmethod
    def newly_missing() -> AutomationCondition:
        """True for partitions that became missing since the previous tick."""
        return AutomationCondition.missing().newly_true().with_label("newly_missing")

    @staticmethod
    def cron_tick_passed(cron_schedule: str, cron_timezone: str = "UTC") -> AutomationCondition:
        """True on a tick when `cron_schedule` fired (in `cron_timezone`) since the previous
        tick. A cron string that does not parse raises DagsterInvalidDefinitionError."""
        problem = cron_problem(cron_schedule)
        if problem is not None:
            raise DagsterInvalidDefinitionError(
                f"AutomationCondition cron schedule {cron_schedule!r}: {problem}",
                name=str(cron_schedule),
            )
        try:
            load_timezone(cron_timezone)
        except ValueError as exc:
            raise DagsterInvalidDefinitionError(
                f"AutomationCondition cron timezone: {exc}", name=str(cron_timezone)
            ) from exc
        return AutomationCondition(
            "cron_tick_passed", cron_schedule=cron_schedule, cron_timezone=cron_timezone
        )

    @staticmethod
    def in_latest_time_window(lookback_delta: timedelta | None = None) -> AutomationCondition:
        """True for an unpartitioned or non-time-partitioned asset, and for the latest time
        partition (or those ending within `lookback_delta` of it)."""
        seconds = None if lookback_delta is None else lookback_delta.total_seconds()
        return AutomationCondition("in_latest_time_window", lookback_seconds=seconds)

    @staticmethod
    def any_deps_match(condition: AutomationCondition) -> AutomationCondition:
        """True where `condition` holds for at least one upstream asset partition."""
        _check_condition(condition, "any_deps_match")
        return AutomationCondition("any_deps_match", (condition,))

    @staticmethod
    def all_deps_match(condition: AutomationCondition) -> AutomationCondition:
        """True where `condition` holds for every upstream asset (vacuously with none)."""
        _check_condition(condition, "all_deps_match")
        return AutomationCondition("all_deps_match", (condition,))

    @staticmethod
    def asset_matches(
        key: CoercibleToAssetKey, condition: AutomationCondition
    ) -> AutomationCondition:
        """True where `condition` holds for any partition of asset `key`."""
        _check_condition(condition, "asset_matches")
        return AutomationCondition(
            "asset_matches", (condition,), asset_key=AssetKey.from_coercible(key)
        )

    @staticmethod
    def any_deps_updated() -> AutomationCondition:
        """True where an upstream partition was updated since the previous tick, or will be
        requested on this one."""
        return AutomationCondition.any_deps_match(
            (
                AutomationCondition.newly_updated() | AutomationCondition.will_be_requested()
            ).with_label("newly_updated_or_requested")
        ).with_label("any_deps_updated")

    @staticmethod
    def any_deps_missing() -> AutomationCondition:
        """True where an upstream partition is missing and not requested on this tick."""
        return AutomationCondition.any_deps_match(
            (AutomationCondition.missing() & ~AutomationCondition.will_be_requested()).with_label(
                "missing_and_not_requested"
            )
        ).with_label("any_deps_missing")

    @staticmethod
    def any_deps_in_progress() -> AutomationCondition:
        """True where an upstream partition is part of an unfinished run."""
        return AutomationCondition.any_deps_match(AutomationCondition.in_progress()).with_label(
            "any_deps_in_progress"
        )

    @staticmethod
    def all_deps_updated_since_cron(
        cron_schedule: str, cron_timezone: str = "UTC"
    ) -> AutomationCondition:
        """True where every upstream asset updated (or will be requested) since the latest
        tick of `cron_schedule`."""
        updated = (
            AutomationCondition.newly_updated() | AutomationCondition.will_be_requested()
        ).since(AutomationCondition.cron_tick_passed(cron_schedule, cron_timezone))
        return AutomationCondition.all_deps_match(
            updated.with_label("updated_since_cron")
        ).with_label(f"all_deps_updated_since_cron({cron_schedule}, {cron_timezone})")

    @staticmethod
    def eager() -> AutomationCondition:
        """Request the asset when it becomes missing or an upstream asset updates, unless an
        upstream is missing or in progress, or the asset itself is in progress."""
        return (
            AutomationCondition.in_latest_time_window()
            & (
                AutomationCondition.newly_missing() | AutomationCondition.any_deps_updated()
            ).since_last_handled()
            & ~AutomationCondition.any_deps_missing()
            & ~AutomationCondition.any_deps_in_progress()
            & ~AutomationCondition.in_progress()
        ).with_label("eager")

    @staticmethod
    def on_cron(cron_schedule: str, cron_timezone: str = "UTC") -> AutomationCondition:
        """Request the asset once per tick of `cron_schedule`, after every upstream asset has
        updated since that tick."""
        return (
            AutomationCondition.in_latest_time_window()
            & AutomationCondition.cron_tick_passed(
                cron_schedule, cron_timezone
            ).since_last_handled()
            & AutomationCondition.all_deps_updated_since_cron(cron_schedule, cron_timezone)
        ).with_label(f"on_cron({cron_schedule}, {cron_timezone})")

    @staticmethod
    def on_missing() -> AutomationCondition:
        """Request partitions that go missing after the condition is first evaluated (a
        partition added later, say), once each, after every upstream asset is present.

        Partitions missing already on the first evaluation are not requested; to request
        those too, replace its "handled" reset as Dagster's documentation shows:
        `on_missing().replace("handled", newly_requested() | newly_updated())`.
        """
        return (
            AutomationCondition.in_latest_time_window()
            & AutomationCondition.missing().newly_true().with_label("missing").since_last_handled()
            & ~AutomationCondition.any_deps_missing()
        ).with_label("on_missing")


def condition_from_dict(data: Mapping[str, Any]) -> AutomationCondition:
    """Read back a tree written by `AutomationCondition.to_dict` (no validation of cron
    strings beyond what the constructor did when the tree was built)."""
    asset_key = data.get("asset_key")
    allow = data.get("allow_keys")
    return AutomationCondition(
        kind=str(data["kind"]),
        children=tuple(condition_from_dict(c) for c in data.get("children", ())),
        label=data.get("label"),
        cron_schedule=data.get("cron_schedule"),
        cron_timezone=str(data.get("cron_timezone", "UTC")),
        lookback_seconds=data.get("lookback_seconds"),
        asset_key=AssetKey(tuple(asset_key)) if asset_key is not None else None,
        allow_keys=frozenset(AssetKey(tuple(k)) for k in allow) if allow is not None else None,
        ignore_keys=frozenset(AssetKey(tuple(k)) for k in data.get("ignore_keys", ())),
    )


def check_automation_condition(value: object, what: str) -> AutomationCondition | None:
    """`value` if it is an AutomationCondition or None, else DagsterInvalidDefinitionError
    naming `what` (the asset or check that declares it)."""
    if value is None or isinstance(value, AutomationCondition):
        return value
    raise DagsterInvalidDefinitionError(
        f"{what}: automation_condition must be an AutomationCondition, got {type(value).__name__}",
        name=what,
    )


def _check_condition(value: object, where: str) -> None:
    if not isinstance(value, AutomationCondition):
        raise DagsterInvalidDefinitionError(
            f"AutomationCondition {where}: expected an AutomationCondition, got "
            f"{type(value).__name__}",
            name=where,
        )


def _keys_of(selection: Any, where: str) -> list[AssetKey]:
    if isinstance(selection, (str, AssetKey)):
        return [AssetKey.from_coercible(selection)]
    if isinstance(selection, Sequence):
        return [AssetKey.from_coercible(k) for k in selection]
    selected = getattr(selection, "selected", None)  # AssetSelection.keys(...) / .assets(...)
    if isinstance(selected, tuple) and all(isinstance(k, AssetKey) for k in selected):
        return list(selected)
    raise DagsterInvalidDefinitionError(
        f"AutomationCondition {where}: cannot read asset keys from {selection!r}; pass keys "
        "or AssetSelection.keys(...)",
        name=where,
    )


__all__ = ["AutomationCondition", "check_automation_condition", "condition_from_dict"]
