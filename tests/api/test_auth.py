"""The public gRPC API with auth enabled: every method tried with no token, a malformed, an
unknown, an expired and a revoked token, and with each role, against a running node; the
answers must be the permission table's. Also: runs record who launched them, clients cannot
set reserved tags, and a cancel leaves an audit event."""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from grpclib.client import Channel

from dagloom.api import AsyncClient
from dagloom.auth import Role, new_token, route_allows
from dagloom.auth._permissions import API_SERVICE, HEALTH_SERVICE
from dagloom.auth.audit import AuditStorage
from dagloom.errors import (
    AuthenticationError,
    ConfigError,
    DagloomError,
    PermissionDeniedError,
)
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, InstigatorType, Run, RunStatus
from dagloom.messages.rpc import DagloomApiBase, HealthStub, PingRequest
from dagloom.topology import parse_topology
from dagloom.topology.security import token_storage
from dagloom.topology.wiring import RunningNode, run_node
from dagloom.transport import split_address

DEFS = Path(__file__).resolve().parents[1] / "integration" / "defs.py"


@dataclass
class Secured:
    node: RunningNode
    tokens: dict[str, str]
    """Credential name -> token text: each role's, and the refused kinds."""
    run: Run
    """A finished run of `failing_job`, launched by the admin."""


@asynccontextmanager
async def secured_node(tmp_path: Path) -> AsyncIterator[Secured]:
    topology = parse_topology(
        {
            "locations": {"suite": {"python_file": str(DEFS)}},
            "nodes": {
                "one": {
                    "api": {"port": 0},
                    "coordinator": {},
                    "launcher": {"kind": "in_process"},
                    "code_locations": ["suite"],
                }
            },
        }
    )
    config = {"storage": {"sqlite": {}}, "auth": {"enabled": True}}
    now = time.time()
    async with (
        DagloomInstance.from_config(config, home=tmp_path) as instance,
        anyio.create_task_group() as tg,
    ):
        store = token_storage(instance)
        tokens: dict[str, str] = {}
        for role in Role:
            stored, tokens[role.label] = new_token(role.label, role, now=now)
            await store.add_api_token(stored)
        stored, tokens["expired"] = new_token("old", Role.ADMIN, now=now - 100, expires_at=now - 1)
        await store.add_api_token(stored)
        stored, tokens["revoked"] = new_token("gone", Role.ADMIN, now=now)
        await store.add_api_token(stored.revoked(now))
        _, tokens["unknown"] = new_token("never-stored", Role.ADMIN, now=now)
        tokens["malformed"] = "not-a-token"
        node = await tg.start(functools.partial(run_node, topology, "one", instance=instance))
        async with AsyncClient.connect(node.api_address, token=tokens["admin"]) as admin:
            with anyio.fail_after(60):
                run = await admin.launch_run("failing_job")
                run = await admin.wait_for_run(run.run_id)
        yield Secured(node, tokens, run)
        tg.cancel_scope.cancel()


Call = Callable[[AsyncClient, Run], Awaitable[Any]]


async def _first_event(client: AsyncClient, run: Run) -> Any:
    async for record in client.stream_events(run.run_id):
        return record


async def _first_log_chunk(client: AsyncClient, run: Run) -> Any:
    async for chunk in client.tail_compute_log(run.run_id, "fail"):
        return chunk


CALLS: dict[str, Call] = {
    "LaunchRun": lambda c, r: c.launch_run("failing_job"),
    "ReexecuteRun": lambda c, r: c.reexecute_run(r.run_id),
    "GetRun": lambda c, r: c.get_run(r.run_id),
    "StreamRunEvents": _first_event,
    "CancelRun": lambda c, r: c.cancel_run(r.run_id),
    "ListJobs": lambda c, r: c.list_jobs(),
    "ReloadLocation": lambda c, r: c.reload_location("suite"),
    "ListInstigators": lambda c, r: c.list_instigators(),
    "SetInstigatorRunning": lambda c, r: c.stop_instigator(InstigatorType.SCHEDULE, "none_such"),
    "GetTicks": lambda c, r: c.get_ticks(InstigatorType.SCHEDULE, "none_such"),
    "DaemonStatus": lambda c, r: c.daemon_status(),
    "ReadComputeLog": lambda c, r: c.read_compute_log(r.run_id, "fail"),
    "TailComputeLog": _first_log_chunk,
}
"""One call per method of the public API (an unknown schedule is answered NOT_FOUND once the
caller is let through, which counts as allowed)."""

CREDENTIALS = [None, "malformed", "unknown", "expired", "revoked", *(r.label for r in Role)]


def _expected(credential: str | None, route: str) -> str:
    role = Role.parse(credential) if credential in {r.label for r in Role} else None
    if route_allows(role, route):
        return "allowed"
    return "denied" if role is not None else "unauthenticated"


API_METHODS = {
    name.removeprefix("_DagloomApiBase__rpc_").title().replace("_", "")
    for name in dir(DagloomApiBase)
    if name.startswith("_DagloomApiBase__rpc_")
}
"""The public API's methods, as the generated service declares them."""


def test_the_table_calls_every_method_of_the_api() -> None:
    assert set(CALLS) == API_METHODS


async def test_every_api_method_answers_each_credential_as_the_permission_table_says(
    tmp_path: Path,
) -> None:
    async with secured_node(tmp_path) as secured:
        await _check_table(secured)


async def _check_table(secured: Secured) -> None:
    table: dict[tuple[str | None, str], str] = {}
    for credential in CREDENTIALS:
        token = secured.tokens[credential] if credential is not None else ""
        async with AsyncClient.connect(secured.node.api_address, token=token) as client:
            for method, call in CALLS.items():
                try:
                    with anyio.fail_after(30):
                        await call(client, secured.run)
                    got = "allowed"
                except AuthenticationError:
                    got = "unauthenticated"
                except PermissionDeniedError:
                    got = "denied"
                except DagloomError:  # let through, then answered (an unknown name, say)
                    got = "allowed"
                table[credential, method] = got
    expected = {
        (credential, method): _expected(credential, API_SERVICE + method)
        for credential in CREDENTIALS
        for method in CALLS
    }
    assert table == expected
    assert len(table) == len(CREDENTIALS) * len(API_METHODS) == 117
    # Each role is allowed something and denied something else, except admin.
    assert {v for (c, _), v in table.items() if c == "viewer"} == {"allowed", "denied"}
    assert {v for (c, _), v in table.items() if c == "admin"} == {"allowed"}


async def test_health_needs_no_token(tmp_path: Path) -> None:
    async with secured_node(tmp_path) as secured:
        await _check_health(secured)


async def _check_health(secured: Secured) -> None:
    host, port = split_address(secured.node.api_address)
    channel = Channel(host, port)
    try:
        with anyio.fail_after(10):
            reply = await HealthStub(channel).ping(PingRequest())
        assert reply is not None
        assert route_allows(None, HEALTH_SERVICE + "Ping")
    finally:
        channel.close()


async def test_runs_record_who_launched_them_and_clients_cannot_set_reserved_tags(
    tmp_path: Path,
) -> None:
    async with secured_node(tmp_path) as secured:
        await _check_tags(secured)


async def _check_tags(secured: Secured) -> None:
    assert secured.run.tags["dagloom/user"] == "admin"
    async with AsyncClient.connect(
        secured.node.api_address, token=secured.tokens["launcher"]
    ) as client:
        with anyio.fail_after(30):
            run = await client.launch_run("failing_job", tags={"dagloom/priority": "3"})
            assert run.tags["dagloom/user"] == "launcher"
            again = await client.reexecute_run(secured.run.run_id)
            assert again.tags["dagloom/user"] == "launcher"
            for reserved in ("dagloom/user", "dagloom/run_worker", "dagloom/parent_run_id"):
                with pytest.raises(ConfigError, match="reserved"):
                    await client.launch_run("failing_job", tags={reserved: "x"})


async def test_a_cancel_is_recorded_in_the_runs_log_with_who_asked(tmp_path: Path) -> None:
    async with secured_node(tmp_path) as secured:
        await _check_audit(secured)


async def _check_audit(secured: Secured) -> None:
    async with AsyncClient.connect(
        secured.node.api_address, token=secured.tokens["editor"]
    ) as client:
        with anyio.fail_after(60):
            run = await client.launch_run("endless_job")
            await client.cancel_run(run.run_id)
            done = await client.wait_for_run(run.run_id)
    assert done.status in (RunStatus.CANCELED, RunStatus.CANCELING)
    events = await secured.node.instance.get_events(run.run_id)
    audits = [
        e.event
        for e in events
        if e.event is not None
        and e.event.event_type == EventType.ENGINE_EVENT
        and e.event.message == "cancel_run requested by editor"
    ]
    assert len(audits) == 1
    assert audits[0].engine_event is not None
    assert audits[0].engine_event.metadata["dagloom/user"].text == "editor"
    async with AsyncClient.connect(
        secured.node.api_address, token=secured.tokens["editor"]
    ) as client:
        with anyio.fail_after(60):
            await client.reload_location("suite")
    storage = secured.node.instance.schedule_storage
    assert isinstance(storage, AuditStorage)
    entries = [(e.user, e.action, e.target, e.via) for e in await storage.get_audit_entries()]
    assert entries == [
        ("editor", "reload_location", "location:suite", "grpc"),
        ("editor", "cancel_run", f"run:{run.run_id}", "grpc"),
    ]
