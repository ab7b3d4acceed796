"""AssetSelection: which assets a job or command targets, composed with |, & and -.

A selection is a small expression tree resolved against an AssetGraph; resolving an unknown
key or group raises DagloomInvalidSelectionError naming it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagloom.definitions.asset import AssetsDefinition, AssetSpec
from dagloom.definitions.asset_key import AssetKey, CoercibleToAssetKey
from dagloom.errors import (
    DagloomInvalidSelectionError,
    DagsterInvalidDefinitionError,
    DefinitionError,
)


class AssetGraph:
    """Assets by key, with their upstream and downstream keys."""

    def __init__(
        self,
        assets: Iterable[AssetsDefinition],
        external: Iterable[AssetSpec] = (),
        checks: Iterable[Any] = (),
    ) -> None:
        self.assets_defs = list(assets)
        # Assets declared by an AssetSpec (or SourceAsset) and made elsewhere: read only.
        self.external_specs: dict[AssetKey, AssetSpec] = {spec.key: spec for spec in external}
        # AssetChecksDefinitions: each checks assets of this graph (or external ones).
        self.checks_defs = list(checks)
        self.by_key: dict[AssetKey, AssetsDefinition] = {}
        for assets_def in self.assets_defs:
            for key in assets_def.keys_by_output.values():
                if key in self.by_key:
                    raise DefinitionError(
                        f"asset {key.to_user_string()!r} is defined twice (by "
                        f"{self.by_key[key].op.name!r} and {assets_def.op.name!r})",
                        name=key.to_user_string(),
                    )
                self.by_key[key] = assets_def
        self.upstream: dict[AssetKey, set[AssetKey]] = {}
        self.downstream: dict[AssetKey, set[AssetKey]] = {k: set() for k in self.by_key}
        for key, assets_def in self.by_key.items():
            ups = set(assets_def.deps_by_key[key])
            self.upstream[key] = ups
            for up in ups:
                self.downstream.setdefault(up, set()).add(key)
        for key, ups in self.upstream.items():
            for up in ups:
                if up in self.by_key:
                    mapping = self.partition_mapping(key, up)  # refuses incompatible ones now
                    if up == key and not _reads_earlier_partitions(mapping):
                        raise DagsterInvalidDefinitionError(
                            f"asset {key.to_user_string()!r} depends on itself; an asset may "
                            "only read its own earlier time partitions (a "
                            "TimeWindowPartitionMapping with a negative end_offset, or a "
                            "MultiPartitionMapping mapping its time dimension so)",
                            name=key.to_user_string(),
                        )
        for checks_def in self.checks_defs:
            for spec in checks_def.specs:
                if spec.asset_key not in self.by_key and spec.asset_key not in self.external_specs:
                    raise DefinitionError(
                        f"asset check {spec.name!r} ({checks_def.name!r}) checks asset "
                        f"{spec.asset_key.to_user_string()!r}, which is not defined",
                        name=checks_def.name,
                    )

    def check_keys_for(self, keys: set[AssetKey]) -> set[Any]:
        """The AssetCheckKeys of every check (standalone or in check_specs) of `keys`."""
        found: set[Any] = set()
        for checks_def in self.checks_defs:
            found.update(s.key for s in checks_def.specs if s.asset_key in keys)
        for assets_def in self.assets_defs:
            found.update(s.key for s in assets_def.check_specs if s.asset_key in keys)
        return found

    def partitions_def(self, key: AssetKey) -> Any:
        """The PartitionsDefinition of asset `key`, or None (unpartitioned or not here)."""
        assets_def = self.by_key.get(key)
        return None if assets_def is None else assets_def.partitions_def

    def partition_mapping(self, downstream: AssetKey, upstream: AssetKey) -> Any:
        """How `downstream`'s partitions read `upstream`'s (None: upstream unpartitioned).
        Raises DagsterInvalidDefinitionError naming both assets when the mapping given
        cannot relate their partitions definitions."""
        from dagloom.definitions.partition_mapping import infer_partition_mapping

        return infer_partition_mapping(
            self.by_key[downstream].partition_mappings.get(upstream),
            self.partitions_def(upstream),
            self.partitions_def(downstream),
            where=f"asset {downstream.to_user_string()!r} reading {upstream.to_user_string()!r}",
        )

    @property
    def keys(self) -> set[AssetKey]:
        return set(self.by_key)

    def io_manager_key_of(self, key: AssetKey) -> str:
        """The IO manager that stores asset `key` (an input reading it loads through it):
        its output's, or its external spec's, else `io_manager`."""
        assets_def = self.by_key.get(key)
        if assets_def is not None:
            for out_name, out_key in assets_def.keys_by_output.items():
                if out_key == key:
                    return assets_def.op.outs[out_name].io_manager_key
        spec = self.external_specs.get(key)
        if spec is not None and spec.io_manager_key:
            return spec.io_manager_key
        return "io_manager"

    def group_of(self, key: AssetKey) -> str:
        return self.by_key[key].spec_for(key).group_name

    def walk(self, start: set[AssetKey], direction: str, depth: int | None) -> set[AssetKey]:
        edges = self.upstream if direction == "up" else self.downstream
        seen = set(start)
        frontier = set(start)
        level = 0
        while frontier and (depth is None or level < depth):
            frontier = {n for f in frontier for n in edges.get(f, ()) if n in self.by_key} - seen
            seen |= frontier
            level += 1
        return seen


def _reads_earlier_partitions(mapping: Any) -> bool:
    """Whether a self-dependency through `mapping` reads only earlier time partitions."""
    from dagloom.definitions.partition_mapping import (
        MultiPartitionMapping,
        TimeWindowPartitionMapping,
    )

    if isinstance(mapping, TimeWindowPartitionMapping):
        return mapping.end_offset < 0 and mapping.start_offset <= mapping.end_offset
    if isinstance(mapping, MultiPartitionMapping):
        return any(
            _reads_earlier_partitions(d.partition_mapping)
            for d in mapping.downstream_mappings_by_upstream_dimension.values()
        )
    return False


class AssetSelection:
    """A set of assets, resolved against the assets a job or command can see."""

    def resolve(self, graph: AssetGraph | Iterable[AssetsDefinition]) -> set[AssetKey]:
        if not isinstance(graph, AssetGraph):
            graph = AssetGraph(graph)
        return self._resolve(graph)

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        raise DefinitionError(f"{type(self).__name__} cannot be resolved")

    def resolve_checks(self, graph: AssetGraph | Iterable[AssetsDefinition]) -> set[Any]:
        """The AssetCheckKeys selected: by default every check of the selected assets."""
        if not isinstance(graph, AssetGraph):
            graph = AssetGraph(graph)
        return self._resolve_checks(graph)

    def _resolve_checks(self, graph: AssetGraph) -> set[Any]:
        return graph.check_keys_for(self._resolve(graph))

    @staticmethod
    def checks_for_assets(*assets: AssetsDefinition | CoercibleToAssetKey) -> AssetSelection:
        """The checks of these assets, without the assets themselves."""
        return _ChecksOnly(AssetSelection.assets(*assets))

    @staticmethod
    def checks(*checks: Any) -> AssetSelection:
        """These checks (AssetChecksDefinitions or AssetCheckKeys), without their assets."""
        keys: list[Any] = []
        for item in checks:
            keys.extend(item.check_keys if hasattr(item, "check_keys") else [item])
        return _CheckKeys(tuple(keys))

    @staticmethod
    def all_asset_checks() -> AssetSelection:
        """Every asset check (standalone or in an asset's check_specs), no asset."""
        return _ChecksOnly(_All())

    def without_checks(self) -> AssetSelection:
        """This selection's assets, none of their checks."""
        return _WithoutChecks(self)

    # constructors, Dagster's names
    @staticmethod
    def all() -> AssetSelection:
        return _All()

    @staticmethod
    def groups(*group_strs: str) -> AssetSelection:
        return _Groups(tuple(group_strs))

    @staticmethod
    def keys(*keys: CoercibleToAssetKey) -> AssetSelection:
        return _Keys(tuple(AssetKey.from_coercible(k) for k in keys))

    @staticmethod
    def assets(*assets_defs: AssetsDefinition | CoercibleToAssetKey) -> AssetSelection:
        keys: list[AssetKey] = []
        for item in assets_defs:
            if isinstance(item, AssetsDefinition):
                keys.extend(item.keys_by_output.values())
            else:
                keys.append(AssetKey.from_coercible(item))
        return _Keys(tuple(keys))

    @staticmethod
    def key_prefixes(*prefixes: str | Sequence[str]) -> AssetSelection:
        return _Prefixes(tuple((p,) if isinstance(p, str) else tuple(p) for p in prefixes))

    @staticmethod
    def key_substring(key_substring: str) -> AssetSelection:
        """The assets whose key, as `a/b` text, contains `key_substring`."""
        return _Attribute("key_substring", key_substring)

    @staticmethod
    def tag(key: str, value: str, include_sources: bool = False) -> AssetSelection:
        """The assets tagged `key` with `value`; an asset's kinds count as its tags
        `dagster/kind/<kind>` with value `""`, as in Dagster."""
        return _Attribute("tag", key, value)

    @staticmethod
    def tag_string(string: str, include_sources: bool = False) -> AssetSelection:
        """`tag` from `key=value` text (`key` alone: the tag with an empty value)."""
        key, _, value = string.partition("=")
        return _Attribute("tag", key, value)

    @staticmethod
    def kind(kind: str, include_sources: bool = False) -> AssetSelection:
        """The assets of this kind (`@asset(kinds={"python"})`)."""
        return _Attribute("kind", kind)

    @staticmethod
    def owner(owner: str) -> AssetSelection:
        """The assets `owner` owns (an email address or `team:name`)."""
        return _Attribute("owner", owner)

    @staticmethod
    def from_string(text: str) -> AssetSelection:
        return parse_selection(text)

    def upstream(self, depth: int | None = None, include_self: bool = True) -> AssetSelection:
        return _Walk(self, "up", depth, include_self)

    def downstream(self, depth: int | None = None, include_self: bool = True) -> AssetSelection:
        return _Walk(self, "down", depth, include_self)

    def roots(self) -> AssetSelection:
        return _Ends(self, "up")

    def sinks(self) -> AssetSelection:
        return _Ends(self, "down")

    def __or__(self, other: AssetSelection) -> AssetSelection:
        return _Combine(self, other, "|")

    def __and__(self, other: AssetSelection) -> AssetSelection:
        return _Combine(self, other, "&")

    def __sub__(self, other: AssetSelection) -> AssetSelection:
        return _Combine(self, other, "-")


@dataclass(frozen=True)
class _All(AssetSelection):
    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return graph.keys


@dataclass(frozen=True)
class _Groups(AssetSelection):
    names: tuple[str, ...]

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        known = {graph.group_of(k) for k in graph.keys}
        unknown = [n for n in self.names if n not in known]
        if unknown:
            raise DagloomInvalidSelectionError(
                f"asset selection names unknown group(s) {unknown}; groups are {sorted(known)}"
            )
        return {k for k in graph.keys if graph.group_of(k) in self.names}


@dataclass(frozen=True)
class _Keys(AssetSelection):
    selected: tuple[AssetKey, ...]

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        external = [k for k in self.selected if k in graph.external_specs]
        if external:
            raise DagloomInvalidSelectionError(external_selection_message(graph, external))
        unknown = [k.to_user_string() for k in self.selected if k not in graph.by_key]
        if unknown:
            raise DagloomInvalidSelectionError(
                f"asset selection names unknown asset(s) {unknown}; assets are "
                f"{sorted(k.to_user_string() for k in graph.keys)}"
            )
        return set(self.selected)


def external_selection_message(graph: AssetGraph, keys: Iterable[AssetKey]) -> str:
    """Why a run cannot materialize the external assets `keys`, and what to do instead."""
    names = sorted(k.to_user_string() for k in keys)
    observable = [
        k for k in keys if getattr(graph.external_specs[k], "observe_fn", None) is not None
    ]
    hint = (
        "observe it with a job selecting only observable source assets "
        "(define_asset_job or observe())"
        if observable and len(observable) == len(names)
        else f"report its materializations instead (dagloom asset report-materialization "
        f"{names[0]})"
    )
    return (
        f"asset selection names external asset(s) {names}: they are made outside this code "
        f"location and never materialized by a run; {hint}"
    )


@dataclass(frozen=True)
class _Prefixes(AssetSelection):
    prefixes: tuple[tuple[str, ...], ...]

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return {k for k in graph.keys if any(k.path[: len(p)] == p for p in self.prefixes)}


_KIND_TAG_PREFIX = "dagster/kind/"


@dataclass(frozen=True)
class _Attribute(AssetSelection):
    """The assets whose spec has a tag, kind or owner, or whose key contains a text."""

    what: str  # "tag", "kind", "owner" or "key_substring"
    name: str
    value: str = ""

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return {k for k in graph.keys if self._matches(k, graph.by_key[k].spec_for(k))}

    def _matches(self, key: AssetKey, spec: AssetSpec) -> bool:
        if self.what == "key_substring":
            return self.name in key.to_user_string()
        if self.what == "kind":
            # A kind given as a tag (`tags={"dagster/kind/snowflake": ""}`) counts too.
            return self.name in spec.kinds or f"{_KIND_TAG_PREFIX}{self.name}" in (spec.tags or {})
        if self.what == "owner":
            return self.name in spec.owners
        is_kind = self.name.startswith(_KIND_TAG_PREFIX) and self.value == ""
        if is_kind and self.name[len(_KIND_TAG_PREFIX) :] in spec.kinds:
            return True
        return (spec.tags or {}).get(self.name) == self.value


@dataclass(frozen=True)
class _Walk(AssetSelection):
    inner: AssetSelection
    direction: str
    depth: int | None
    include_self: bool

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        start = self.inner._resolve(graph)
        found = graph.walk(start, self.direction, self.depth)
        return found if self.include_self else found - start


@dataclass(frozen=True)
class _Ends(AssetSelection):
    inner: AssetSelection
    direction: str

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        chosen = self.inner._resolve(graph)
        edges = graph.upstream if self.direction == "up" else graph.downstream
        return {k for k in chosen if not (edges.get(k, set()) & chosen)}


@dataclass(frozen=True)
class _Combine(AssetSelection):
    left: AssetSelection
    right: AssetSelection
    op: str

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return _apply(self.op, self.left._resolve(graph), self.right._resolve(graph))

    def _resolve_checks(self, graph: AssetGraph) -> set[Any]:
        return _apply(self.op, self.left._resolve_checks(graph), self.right._resolve_checks(graph))


def _apply(op: str, a: set[Any], b: set[Any]) -> set[Any]:
    if op == "|":
        return a | b
    if op == "&":
        return a & b
    return a - b


@dataclass(frozen=True)
class _ChecksOnly(AssetSelection):
    inner: AssetSelection

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return set()

    def _resolve_checks(self, graph: AssetGraph) -> set[Any]:
        if isinstance(self.inner, _Keys):
            # the checks of external assets run (reading what was reported of them), though
            # the assets themselves are never materialized
            keys = set(self.inner.selected)
            unknown = [
                k.to_user_string()
                for k in self.inner.selected
                if k not in graph.by_key and k not in graph.external_specs
            ]
            if unknown:
                raise DagloomInvalidSelectionError(
                    f"asset selection names unknown asset(s) {unknown}; assets are "
                    f"{sorted(k.to_user_string() for k in graph.keys)}"
                )
            return graph.check_keys_for(keys)
        if isinstance(self.inner, _All):
            return graph.check_keys_for(graph.keys | set(graph.external_specs))
        return graph.check_keys_for(self.inner._resolve(graph))


@dataclass(frozen=True)
class _CheckKeys(AssetSelection):
    selected: tuple[Any, ...]

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return set()

    def _resolve_checks(self, graph: AssetGraph) -> set[Any]:
        known = graph.check_keys_for(graph.keys | set(graph.external_specs))
        unknown = [k.to_user_string() for k in self.selected if k not in known]
        if unknown:
            raise DagloomInvalidSelectionError(f"asset selection names unknown check(s) {unknown}")
        return set(self.selected)


@dataclass(frozen=True)
class _WithoutChecks(AssetSelection):
    inner: AssetSelection

    def _resolve(self, graph: AssetGraph) -> set[AssetKey]:
        return self.inner._resolve(graph)

    def _resolve_checks(self, graph: AssetGraph) -> set[Any]:
        return set()


def parse_selection(text: str) -> AssetSelection:
    """Parse a selection string: Dagster's selection syntax (`key:"a"+ and not
    tag:"pii"`, see `asset_selection_syntax`), else the older form: `group:name`,
    `tag:k=v`, `kind:k`, `owner:o`, `key`, `a/b` (a key path), `key+` (one layer
    downstream), `+key` (upstream), `*`, and comma-separated unions of these.
    DagloomInvalidSelectionError (or DefinitionError for a malformed key) when it is
    neither."""
    from dagloom.definitions.asset_selection_syntax import (
        SelectionSyntaxError,
        parse_selection_syntax,
    )

    try:
        return parse_selection_syntax(text)
    except SelectionSyntaxError as exc:
        try:
            return _parse_older_form(text)
        except DefinitionError:
            raise exc from None


def _parse_older_form(text: str) -> AssetSelection:
    clauses = [c.strip() for c in text.split(",") if c.strip()]
    if not clauses:
        raise DagloomInvalidSelectionError(f"empty asset selection {text!r}")
    result: AssetSelection | None = None
    for clause in clauses:
        part = _parse_clause(clause)
        result = part if result is None else result | part
    assert result is not None
    return result


def _parse_clause(clause: str) -> AssetSelection:
    if clause == "*":
        return AssetSelection.all()
    up = down = 0
    up_all = down_all = False
    body = clause
    if body.startswith("*"):
        up_all, body = True, body[1:]
    else:
        while body.startswith("+"):
            up, body = up + 1, body[1:]
    if body.endswith("*"):
        down_all, body = True, body[:-1]
    else:
        while body.endswith("+"):
            down, body = down + 1, body[:-1]
    if not body:
        raise DagloomInvalidSelectionError(f"asset selection clause {clause!r} names nothing")
    if body.startswith("group:"):
        base: AssetSelection = AssetSelection.groups(body[len("group:") :])
    elif body.startswith("tag:"):
        base = AssetSelection.tag_string(body[len("tag:") :])
    elif body.startswith("kind:"):
        base = AssetSelection.kind(body[len("kind:") :])
    elif body.startswith("owner:"):
        base = AssetSelection.owner(body[len("owner:") :])
    elif body.startswith("key:"):
        base = AssetSelection.keys(AssetKey.from_user_string(body[len("key:") :]))
    else:
        base = AssetSelection.keys(AssetKey.from_user_string(body))
    if up_all or up:
        base = base.upstream(None if up_all else up)
    if down_all or down:
        base = base | base.downstream(None if down_all else down)
    return base


CoercibleToAssetSelection = AssetSelection | str | Sequence[Any]


def coerce_selection(value: Any) -> AssetSelection:
    """A selection from an AssetSelection, a selection string, or a list of keys/assets."""
    if isinstance(value, AssetSelection):
        return value
    if value is None:
        return AssetSelection.all()
    if isinstance(value, str):
        return parse_selection(value)
    if isinstance(value, AssetsDefinition | AssetKey):
        return AssetSelection.assets(value)
    if isinstance(value, Sequence | set | frozenset):
        items = list(value)
        if all(isinstance(i, str) for i in items):
            return AssetSelection.keys(*(AssetKey.from_user_string(i) for i in items))
        return AssetSelection.assets(*items)
    if isinstance(value, Mapping):
        raise DefinitionError("asset selection cannot be a mapping")
    raise DefinitionError(f"cannot use {value!r} as an asset selection")


__all__ = ["AssetGraph", "AssetSelection", "coerce_selection", "parse_selection"]
