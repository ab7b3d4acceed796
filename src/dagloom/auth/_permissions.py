"""Roles, operations and the one table that decides which role may do what."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType


class Role(enum.IntEnum):
    """What a token may do, each role including the ones below it.

    `viewer` reads; `launcher` also launches, re-executes and cancels runs (its own and
    others'); `editor` also toggles schedules and sensors, reloads code, launches backfills
    and deletes runs; `admin` also manages tokens.
    """

    VIEWER = 1
    LAUNCHER = 2
    EDITOR = 3
    ADMIN = 4

    @classmethod
    def parse(cls, text: str) -> Role:
        """The role named `text` (any case); `ValueError` listing the roles otherwise."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(r.label for r in cls)
            raise ValueError(f"unknown role {text!r}; the roles are {names}") from None

    @property
    def label(self) -> str:
        """The role's name as users write it: `viewer`, `launcher`, ..."""
        return self.name.lower()


class Operation(enum.StrEnum):
    """Everything an entry point (gRPC API, HTTP, GraphQL) lets a caller do."""

    HEALTH = "health"
    READ = "read"
    READ_METRICS = "read_metrics"
    LAUNCH_RUN = "launch_run"
    REEXECUTE_RUN = "reexecute_run"
    CANCEL_RUN = "cancel_run"
    TOGGLE_INSTIGATOR = "toggle_instigator"
    RELOAD_LOCATION = "reload_location"
    LAUNCH_BACKFILL = "launch_backfill"
    DELETE_RUN = "delete_run"
    WIPE_ASSET = "wipe_asset"
    REPORT_ASSET_EVENT = "report_asset_event"
    MANAGE_TOKENS = "manage_tokens"


PERMISSIONS: Mapping[Operation, Role | None] = MappingProxyType(
    {
        Operation.HEALTH: None,
        Operation.READ: Role.VIEWER,
        Operation.READ_METRICS: Role.VIEWER,
        Operation.LAUNCH_RUN: Role.LAUNCHER,
        Operation.REEXECUTE_RUN: Role.LAUNCHER,
        Operation.CANCEL_RUN: Role.LAUNCHER,
        Operation.TOGGLE_INSTIGATOR: Role.EDITOR,
        Operation.RELOAD_LOCATION: Role.EDITOR,
        Operation.LAUNCH_BACKFILL: Role.EDITOR,
        Operation.DELETE_RUN: Role.EDITOR,
        Operation.WIPE_ASSET: Role.EDITOR,
        Operation.REPORT_ASSET_EVENT: Role.EDITOR,
        Operation.MANAGE_TOKENS: Role.ADMIN,
    }
)
"""The least role each operation needs; None: anyone, even without a token (health checks
only, which reveal nothing about runs or code)."""

UNLISTED_ROLE = Role.ADMIN
"""An entry point's method missing from its operation map needs this role: a method added
without a rule is closed to everyone but admins rather than open to all."""


def required_role(operation: Operation) -> Role | None:
    """The least role `operation` needs; None when it needs no token."""
    return PERMISSIONS[operation]


def allows(role: Role | None, operation: Operation) -> bool:
    """Whether a caller with `role` (None: not identified) may perform `operation`."""
    needed = PERMISSIONS[operation]
    if needed is None:
        return True
    return role is not None and role >= needed


def permission_table() -> list[tuple[Operation, dict[Role, bool]]]:
    """Each operation with, for each role, whether it is allowed: the table the docs print
    and the security tests check every entry point against."""
    return [(op, {role: allows(role, op) for role in Role}) for op in Operation]


API_SERVICE = "/dagloom.v1.rpc.DagloomApi/"
HEALTH_SERVICE = "/dagloom.v1.rpc.Health/"
API_EVENTS_SERVICE = "/dagloom.v1.rpc.DagloomApiEvents/"

GRPC_API_OPERATIONS: Mapping[str, Operation] = MappingProxyType(
    {
        f"{API_SERVICE}LaunchRun": Operation.LAUNCH_RUN,
        f"{API_SERVICE}ReexecuteRun": Operation.REEXECUTE_RUN,
        f"{API_SERVICE}GetRun": Operation.READ,
        f"{API_SERVICE}StreamRunEvents": Operation.READ,
        f"{API_SERVICE}ListJobs": Operation.READ,
        f"{API_SERVICE}CancelRun": Operation.CANCEL_RUN,
        f"{API_SERVICE}ReloadLocation": Operation.RELOAD_LOCATION,
        f"{API_SERVICE}ListInstigators": Operation.READ,
        f"{API_SERVICE}GetTicks": Operation.READ,
        f"{API_SERVICE}DaemonStatus": Operation.READ,
        f"{API_SERVICE}SetInstigatorRunning": Operation.TOGGLE_INSTIGATOR,
        f"{API_SERVICE}ReadComputeLog": Operation.READ,
        f"{API_SERVICE}TailComputeLog": Operation.READ,
        f"{API_EVENTS_SERVICE}StreamRunEventBatches": Operation.READ,
        f"{HEALTH_SERVICE}Ping": Operation.HEALTH,
    }
)
"""The public gRPC API's methods (grpclib `:path`) and the operation each performs."""


def grpc_operation(route: str) -> Operation | None:
    """The operation a public-API gRPC method performs; None for a method with no rule,
    which then needs `UNLISTED_ROLE`. Methods whose name says they only read (`Get…`,
    `List…`, `Stream…`, `Watch…`) are `READ`."""
    known = GRPC_API_OPERATIONS.get(route)
    if known is not None:
        return known
    if route.startswith(API_SERVICE):
        method = route.removeprefix(API_SERVICE)
        if method.startswith(("Get", "List", "Stream", "Watch")):
            return Operation.READ
    return None


def route_allows(role: Role | None, route: str) -> bool:
    """Whether a caller with `role` may call the public-API gRPC method `route`."""
    operation = grpc_operation(route)
    if operation is None:
        return role is not None and role >= UNLISTED_ROLE
    return allows(role, operation)
