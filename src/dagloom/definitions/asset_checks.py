"""Asset checks: `@asset_check`, `@multi_asset_check`, `AssetCheckSpec` on `@asset(check_specs=)`,
and the `AssetCheckResult` a check returns.

A check is an op whose results are AssetCheckResults. A blocking check that fails (not
passed, severity ERROR) fails its step, so the assets downstream of the checked asset in the
same run are skipped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.definitions.automation_condition import check_automation_condition
from dagloom.definitions.op import OpDefinition, analyse_compute_fn
from dagloom.definitions.outputs import In
from dagloom.definitions.retry import RetryPolicy
from dagloom.errors import DagsterInvalidDefinitionError


class AssetCheckSeverity(enum.Enum):
    """How bad a failed check is: WARN only reports; ERROR also stops downstream assets
    when the check is blocking."""

    WARN = "WARN"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class AssetCheckKey:
    """A check's identity: the asset it checks and its name."""

    asset_key: AssetKey
    name: str

    def to_user_string(self) -> str:
        return f"{self.asset_key.to_user_string()}:{self.name}"


def _asset_key_of(asset: Any) -> AssetKey:
    from dagloom.definitions.asset import AssetsDefinition, AssetSpec

    if isinstance(asset, AssetsDefinition | AssetSpec):
        return asset.key
    return AssetKey.from_coercible(asset)


@dataclass(frozen=True, slots=True, init=False)
class AssetCheckSpec:
    """A check declared on an asset (`@asset(check_specs=[...])`, `@multi_asset_check`)."""

    name: str
    asset_key: AssetKey
    description: str | None
    blocking: bool
    metadata: Mapping[str, Any]
    additional_deps: tuple[AssetKey, ...]
    automation_condition: Any  # an AutomationCondition, or None

    def __init__(
        self,
        name: str,
        *,
        asset: Any,
        description: str | None = None,
        blocking: bool = False,
        additional_deps: Iterable[Any] | None = None,
        metadata: Mapping[str, Any] | None = None,
        automation_condition: Any = None,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "asset_key", _asset_key_of(asset))
        set_(self, "description", description)
        set_(self, "blocking", blocking)
        set_(self, "metadata", dict(metadata or {}))
        set_(self, "additional_deps", tuple(_asset_key_of(d) for d in additional_deps or ()))
        what = f"check {name!r} of {self.asset_key.to_user_string()!r}"
        set_(self, "automation_condition", check_automation_condition(automation_condition, what))

    @property
    def key(self) -> AssetCheckKey:
        return AssetCheckKey(self.asset_key, self.name)


@dataclass(frozen=True, slots=True)
class AssetCheckResult:
    """What a check found. `asset_key` and `check_name` may be left out when the check
    being run says which it is (one spec)."""

    passed: bool
    asset_key: CoercibleToAssetKey | None = None
    check_name: str | None = None
    metadata: Mapping[str, Any] | None = None
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR
    description: str | None = None


@dataclass(frozen=True, slots=True)
class AssetCheckEvaluation:
    """A check result as recorded (`result.get_asset_check_evaluations()`)."""

    asset_key: AssetKey
    check_name: str
    passed: bool
    severity: AssetCheckSeverity
    metadata: Mapping[str, Any] = field(default_factory=dict)
    description: str | None = None
    blocking: bool = False
    partition: str | None = None

    @property
    def asset_check_key(self) -> AssetCheckKey:
        return AssetCheckKey(self.asset_key, self.check_name)


class AssetChecksDefinition:
    """One op and the checks its results report (`@asset_check`, `@multi_asset_check`);
    `keys_by_input` names the assets it reads."""

    def __init__(
        self,
        *,
        op: OpDefinition,
        specs: Sequence[AssetCheckSpec],
        keys_by_input: Mapping[str, AssetKey],
        resource_defs: Mapping[str, Any] | None = None,
        can_subset: bool = False,
    ) -> None:
        self.op = op
        self.specs = list(specs)
        self.keys_by_input = dict(keys_by_input)
        self.resource_defs = dict(resource_defs or {})
        self.can_subset = can_subset  # may compute only the selected specs

    @property
    def check_keys(self) -> set[AssetCheckKey]:
        return {s.key for s in self.specs}

    @property
    def asset_keys(self) -> set[AssetKey]:
        """The assets these checks are about."""
        return {s.asset_key for s in self.specs}

    @property
    def name(self) -> str:
        return self.op.name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the check's function directly (for unit tests)."""
        return self.op(*args, **kwargs)

    def __repr__(self) -> str:
        keys = ", ".join(sorted(k.to_user_string() for k in self.check_keys))
        return f"<AssetChecksDefinition {keys}>"


def _check_inputs(
    fn: Callable[..., Any], name: str, asset_keys: Sequence[AssetKey], additional_ins: Any
) -> tuple[dict[str, In], dict[str, AssetKey]]:
    """The function's data parameters as inputs: one named after a checked asset (or the
    only parameter, when one asset is checked) reads that asset; `additional_ins` map others."""
    signature, _, _ = analyse_compute_fn(fn, name=name, explicit_ins=None)
    by_name = {k.path[-1]: k for k in asset_keys}
    extra = {
        n: AssetKey.from_coercible(getattr(i, "key", None) or n)
        for n, i in (additional_ins or {}).items()
    }
    keys: dict[str, AssetKey] = {}
    names = list(signature.input_names)
    for input_name in names:
        if input_name in extra:
            keys[input_name] = extra[input_name]
        elif input_name in by_name:
            keys[input_name] = by_name[input_name]
        elif len(names) == 1 and len(asset_keys) == 1:
            keys[input_name] = asset_keys[0]
        else:
            raise DagsterInvalidDefinitionError(
                f"asset check {name!r}: parameter {input_name!r} names no checked asset "
                f"({sorted(by_name)}) and no additional_ins",
                name=name,
            )
    return {n: In(asset_key=k) for n, k in keys.items()}, keys


def asset_check(
    *,
    asset: Any,
    name: str | None = None,
    description: str | None = None,
    blocking: bool = False,
    additional_ins: Mapping[str, Any] | None = None,
    additional_deps: Iterable[Any] | None = None,
    required_resource_keys: Sequence[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    config_schema: Any = None,
    metadata: Mapping[str, Any] | None = None,
    op_tags: Mapping[str, Any] | None = None,
    retry_policy: RetryPolicy | None = None,
    compute_kind: str | None = None,
    automation_condition: Any = None,
) -> Callable[[Callable[..., Any]], AssetChecksDefinition]:
    """Declare a check of `asset`, computed by a function returning an AssetCheckResult;
    a parameter named after the asset receives its value."""

    def wrap(fn: Callable[..., Any]) -> AssetChecksDefinition:
        check_name = name or fn.__name__
        spec = AssetCheckSpec(
            check_name,
            asset=asset,
            description=description,
            blocking=blocking,
            additional_deps=additional_deps,
            metadata=metadata,
            automation_condition=automation_condition,
        )
        op_name = f"{spec.asset_key.to_python_identifier()}_{check_name}"
        ins, keys = _check_inputs(fn, op_name, [spec.asset_key], additional_ins)
        op = OpDefinition(
            fn,
            name=op_name,
            ins=ins,
            out={},
            description=description,
            tags=op_tags,
            config_schema=config_schema,
            required_resource_keys=required_resource_keys,
            retry_policy=retry_policy,
        )
        return AssetChecksDefinition(
            op=op, specs=[spec], keys_by_input=keys, resource_defs=resource_defs
        )

    return wrap


def multi_asset_check(
    *,
    specs: Sequence[AssetCheckSpec],
    name: str | None = None,
    description: str | None = None,
    required_resource_keys: Sequence[str] | None = None,
    resource_defs: Mapping[str, Any] | None = None,
    config_schema: Any = None,
    op_tags: Mapping[str, Any] | None = None,
    retry_policy: RetryPolicy | None = None,
    ins: Mapping[str, Any] | None = None,
    can_subset: bool = False,
) -> Callable[[Callable[..., Any]], AssetChecksDefinition]:
    """Declare several checks computed by one function yielding an AssetCheckResult for
    each (naming its `asset_key` and `check_name`)."""

    def wrap(fn: Callable[..., Any]) -> AssetChecksDefinition:
        op_name = name or fn.__name__
        if not specs:
            raise DagsterInvalidDefinitionError(
                f"multi_asset_check {op_name!r} needs specs", name=op_name
            )
        asset_keys = list(dict.fromkeys(s.asset_key for s in specs))
        op_ins, keys = _check_inputs(fn, op_name, asset_keys, ins)
        op = OpDefinition(
            fn,
            name=op_name,
            ins=op_ins,
            out={},
            description=description,
            tags=op_tags,
            config_schema=config_schema,
            required_resource_keys=required_resource_keys,
            retry_policy=retry_policy,
        )
        return AssetChecksDefinition(
            op=op,
            specs=specs,
            keys_by_input=keys,
            resource_defs=resource_defs,
            can_subset=can_subset,
        )

    return wrap


__all__ = [
    "AssetCheckEvaluation",
    "AssetCheckKey",
    "AssetCheckResult",
    "AssetCheckSeverity",
    "AssetCheckSpec",
    "AssetChecksDefinition",
    "asset_check",
    "multi_asset_check",
]
