"""The webserver with auth enabled: every guarded GraphQL root field (query, mutation and
subscription) and every HTTP route tried with no token, a malformed, an unknown, an expired
and a revoked token, and with each role, against a running node; the answers must be the
permission table's. Also the login page, the user tag and reserved tags, the audit trail,
TLS, and the refusal to listen beyond loopback without auth."""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import aiohttp
import anyio
import pytest
import trustme
from graphql import (
    GraphQLEnumType,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLScalarType,
    GraphQLType,
    Undefined,
    get_named_type,
)

from dagloom.auth import UNLISTED_ROLE, Operation, Role, allows, new_token
from dagloom.auth.audit import AuditStorage
from dagloom.auth.tags import USER_TAG
from dagloom.errors import ConfigError
from dagloom.execution.origin import CodeOrigin
from dagloom.instance import DagloomInstance
from dagloom.messages import EventType, Run
from dagloom.topology import dev_topology
from dagloom.topology.security import token_storage
from dagloom.topology.wiring import RunningNode, run_node
from dagloom.webserver import build_schema, graphql_operation
from dagloom.webserver._auth import http_operation
from dagloom.webserver._operations import UNAUTHORIZED_CODE

NUMBERS = Path(__file__).resolve().parents[2] / "examples" / "numbers.py"
REPO = {"repositoryLocationName": "numbers", "repositoryName": "__repository__"}
CLUSTER_SECRET = "cluster-secret-never-shown-0123"
CREDENTIALS = [None, "malformed", "unknown", "expired", "revoked", *(r.label for r in Role)]


@dataclass
class Secured:
    url: str
    node: RunningNode
    tokens: dict[str, str]
    session: aiohttp.ClientSession

    def headers(self, credential: str | None) -> dict[str, str]:
        if credential is None:
            return {}
        return {"Authorization": f"Bearer {self.tokens[credential]}"}

    async def post(
        self, query: str, credential: str | None, variables: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body = {"query": query, "variables": variables or {}}
        async with self.session.post(
            f"{self.url}/graphql", json=body, headers=self.headers(credential)
        ) as response:
            assert response.status < 500, await response.text()
            result: dict[str, Any] = await response.json()
            return result


@asynccontextmanager
async def secured_node(
    home: Path, *, tls: dict[str, str] | None = None, metrics_public: bool = False
) -> AsyncIterator[tuple[RunningNode, dict[str, str]]]:
    topology = dev_topology(
        {"numbers": CodeOrigin(python_file=str(NUMBERS))},
        grpc_port=None,
        api_port=None,
        reload_on_change=False,
        daemon=False,
        webserver_port=0,
    )
    config: dict[str, Any] = {
        "storage": {"sqlite": {}},
        "auth": {
            "enabled": True,
            "metrics_public": metrics_public,
            "cluster_secret": CLUSTER_SECRET,
        },
    }
    if tls is not None:
        config["tls"] = tls
    now = time.time()
    async with (
        DagloomInstance.from_config(config, home=home) as instance,
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
        node = await tg.start(functools.partial(run_node, topology, "dev", instance=instance))
        yield node, tokens
        tg.cancel_scope.cancel()


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[Secured]:
    started: asyncio.Future[tuple[RunningNode, dict[str, str]]] = (
        asyncio.get_running_loop().create_future()
    )
    stop = asyncio.Event()

    async def serve() -> None:
        async with secured_node(tmp_path) as pair:
            started.set_result(pair)
            await stop.wait()

    task = asyncio.ensure_future(serve())
    with anyio.fail_after(60):
        await asyncio.wait({task, started}, return_when=asyncio.FIRST_COMPLETED)
    if not started.done():
        await task
    node, tokens = started.result()
    try:
        # `unsafe`: keep cookies from an IP address (127.0.0.1), as browsers do.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            yield Secured(f"http://{node.webserver_address}", node, tokens, session)
    finally:
        stop.set()
        await task


# -- documents generated from the schema ----------------------------------------------------


def _literal(kind: GraphQLType) -> str:
    """A GraphQL literal of type `kind`: the smallest value that type-checks."""
    if isinstance(kind, GraphQLNonNull):
        return _literal(kind.of_type)
    if isinstance(kind, GraphQLList):
        return "[]"
    if isinstance(kind, GraphQLEnumType):
        return next(iter(kind.values))
    if isinstance(kind, GraphQLInputObjectType):
        fields = ", ".join(
            f"{name}: {_literal(f.type)}"
            for name, f in kind.fields.items()
            if isinstance(f.type, GraphQLNonNull) and f.default_value is Undefined
        )
        return "{" + fields + "}"
    assert isinstance(kind, GraphQLScalarType), kind
    return {"Int": "1", "Float": "1.0", "Boolean": "false"}.get(kind.name, '"none-such"')


def _document(keyword: str, name: str, field: GraphQLField) -> str:
    args = [
        f"{arg_name}: {_literal(arg.type)}"
        for arg_name, arg in field.args.items()
        if isinstance(arg.type, GraphQLNonNull)
    ]
    call = f"{name}({', '.join(args)})" if args else name
    named = get_named_type(field.type)
    selection = "" if isinstance(named, GraphQLScalarType | GraphQLEnumType) else " { __typename }"
    return f"{keyword} {{ {call}{selection} }}"


def _guard_names() -> dict[tuple[str, str], str]:
    """(root type, field) -> the operation name its guard declares."""
    schema = build_schema()
    out = {}
    for root in (schema.query, schema.mutation, schema.subscription):
        definition = root.__strawberry_definition__  # type: ignore[union-attr]
        for field in definition.fields:
            (guard,) = [e.operation for e in field.extensions if hasattr(e, "operation")]
            out[(definition.name, field.graphql_name or field.name)] = guard
    return out


def _expected(credential: str | None, guard: str) -> bool:
    role = Role.parse(credential) if credential in {r.label for r in Role} else None
    operation = graphql_operation(guard)
    if operation is None:
        return role is not None and role >= UNLISTED_ROLE
    return allows(role, operation)


def _refused(result: dict[str, Any], field: str) -> bool:
    data = result.get("data") or {}
    value = data.get(field)
    if isinstance(value, dict) and value.get("__typename") == "UnauthorizedError":
        return True
    codes = [(e.get("extensions") or {}).get("code") for e in result.get("errors") or []]
    return UNAUTHORIZED_CODE in codes


def test_every_guard_name_maps_to_an_operation() -> None:
    unmapped = {g for g in _guard_names().values() if graphql_operation(g) is None}
    assert unmapped == set()


async def _subscribe(
    secured: Secured, document: str, credential: str | None, *, in_payload: bool
) -> dict[str, Any]:
    """The first answer to `document` over `graphql-transport-ws`, the token in the
    `connection_init` payload (or, with `in_payload` false, the upgrade request's header)."""
    payload = {} if credential is None or not in_payload else secured.headers(credential)
    headers = {} if in_payload else secured.headers(credential)
    async with secured.session.ws_connect(
        f"{secured.url}/graphql", protocols=["graphql-transport-ws"], headers=headers
    ) as ws:
        await ws.send_json({"type": "connection_init", "payload": payload})
        with anyio.fail_after(30):
            assert (await ws.receive_json())["type"] == "connection_ack"
            await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": document}})
            message: dict[str, Any] = await ws.receive_json()
    if message["type"] == "error":
        return {"errors": message["payload"]}
    result: dict[str, Any] = message["payload"]
    return result


async def test_the_operation_role_table_holds_for_every_field_and_route(
    secured: Secured,
) -> None:
    schema = build_schema()._schema
    guards = _guard_names()
    checked = 0
    mismatches = []
    for (root_name, name), guard in sorted(guards.items()):
        root = {"Query": schema.query_type, "Mutation": schema.mutation_type}.get(root_name)
        keyword = root_name.lower()
        graphql_root = root or schema.subscription_type
        assert graphql_root is not None
        document = _document(keyword, name, graphql_root.fields[name])
        for credential in CREDENTIALS:
            if root_name == "Subscription":
                result = await _subscribe(secured, document, credential, in_payload=True)
            else:
                result = await secured.post(document, credential)
            allowed = not _refused(result, name)
            if allowed != _expected(credential, guard):
                mismatches.append((root_name, name, credential, result))
            checked += 1
    operation_of = http_operation(metrics_public=False)
    routes = {"/health": None, "/login": None, "/metrics": Operation.READ_METRICS}
    routes["/some/page"] = Operation.READ
    routes["/logs/no-such-run/compute_logs/step/out"] = Operation.READ
    for path, operation in routes.items():
        request = type("R", (), {"path": path})()
        assert operation_of(request) == operation, path  # type: ignore[arg-type]
        for credential in CREDENTIALS:
            role = Role.parse(credential) if credential in {r.label for r in Role} else None
            expected = operation is None or allows(role, operation)
            async with secured.session.get(
                f"{secured.url}{path}", headers=secured.headers(credential), allow_redirects=False
            ) as response:
                assert response.status < 500
                if (response.status not in (401, 403)) != expected:
                    mismatches.append(("HTTP", path, credential, response.status))
            checked += 1
    assert [m[:3] for m in mismatches] == [], mismatches[:3]
    assert checked == (len(guards) + len(routes)) * len(CREDENTIALS)


async def test_a_refusal_says_why_and_names_the_role_needed(secured: Secured) -> None:
    launch = (
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
        " __typename ... on Error { message } } }"
    )
    params = {"p": {"selector": {**REPO, "jobName": "process_numbers"}}}
    refused = (await secured.post(launch, "viewer", params))["data"]["launchRun"]
    assert refused["__typename"] == "UnauthorizedError"
    assert "launcher" in refused["message"]
    expired = (await secured.post(launch, "expired", params))["data"]["launchRun"]
    assert expired["__typename"] == "UnauthorizedError"
    assert "expired" in expired["message"]
    plain = await secured.post("{ version }", None)
    assert plain["data"] is None
    assert plain["errors"][0]["extensions"]["code"] == UNAUTHORIZED_CODE
    assert await secured.node.instance.get_runs() == []


async def test_a_websocket_may_carry_the_token_in_its_upgrade_request(secured: Secured) -> None:
    document = 'subscription { pipelineRunLogs(runId: "none-such") { __typename } }'
    allowed = await _subscribe(secured, document, "viewer", in_payload=False)
    refused = await _subscribe(secured, document, None, in_payload=False)
    assert not _refused(allowed, "pipelineRunLogs")
    assert _refused(refused, "pipelineRunLogs")


async def test_runs_record_their_launcher_and_reserved_tags_are_refused(secured: Secured) -> None:
    launch = (
        "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {"
        " __typename ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }"
    )
    selector = {**REPO, "jobName": "process_numbers"}
    spoofed = {
        "selector": selector,
        "executionMetadata": {"tags": [{"key": USER_TAG, "value": "x"}]},
    }
    refused = (await secured.post(launch, "launcher", {"p": spoofed}))["data"]["launchRun"]
    assert refused["__typename"] == "PythonError"
    assert USER_TAG in refused["message"]
    allowed = {"selector": selector, "executionMetadata": {"tags": [{"key": "team", "value": "a"}]}}
    launched = (await secured.post(launch, "launcher", {"p": allowed}))["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run = await secured.node.instance.get_run(launched["run"]["runId"])
    assert run is not None
    assert run.tags[USER_TAG] == "launcher"
    assert run.tags["team"] == "a"


async def test_a_cancel_leaves_an_audit_event_naming_who(secured: Secured) -> None:
    run = await secured.node.instance.create_run(Run(job_name="process_numbers"))
    cancel = (
        "mutation($id: String!) { terminateRun(runId: $id, "
        "terminatePolicy: MARK_AS_CANCELED_IMMEDIATELY) { __typename } }"
    )
    answer = (await secured.post(cancel, "launcher", {"id": run.run_id}))["data"]
    assert answer["terminateRun"]["__typename"] == "TerminateRunSuccess"
    events = await secured.node.instance.get_events(run.run_id)
    audits = [
        e.event
        for e in events
        if e.event.event_type == EventType.ENGINE_EVENT
        and e.event.message == "cancel_run requested by launcher"
    ]
    assert len(audits) == 1
    assert audits[0].engine_event is not None
    assert audits[0].engine_event.metadata[USER_TAG].text == "launcher"


async def test_deletes_toggles_and_reloads_are_kept_in_the_audit_log(secured: Secured) -> None:
    run = await secured.node.instance.create_run(Run(job_name="process_numbers"))
    selector = {**REPO, "scheduleName": "process_numbers_schedule"}
    documents = [
        ("mutation($id: String!) { deleteRun(runId: $id) { __typename } }", {"id": run.run_id}),
        (
            "mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) {"
            " __typename } }",
            {"s": selector},
        ),
        (
            'mutation { reloadRepositoryLocation(repositoryLocationName: "numbers") {'
            " __typename } }",
            None,
        ),
    ]
    for document, variables in documents:
        answer = await secured.post(document, "editor", variables)
        (value,) = answer["data"].values()
        assert "Error" not in value["__typename"], answer
    storage = secured.node.instance.schedule_storage
    assert isinstance(storage, AuditStorage)
    entries = await storage.get_audit_entries()
    assert [(e.user, e.action, e.target, e.via) for e in entries] == [
        ("editor", "reload_location", "location:numbers", "graphql"),
        (
            "editor",
            "start_instigator",
            "instigator:numbers/process_numbers_schedule",
            "graphql",
        ),
        ("editor", "delete_run", f"run:{run.run_id}", "graphql"),
    ]


async def test_the_login_page_stores_the_token_in_an_http_only_cookie(secured: Secured) -> None:
    async with secured.session.get(
        f"{secured.url}/some/page", headers={"Accept": "text/html"}, allow_redirects=False
    ) as response:
        assert response.status == 303
        assert unquote(response.headers["Location"]) == "/login?next=/some/page"
    async with secured.session.get(f"{secured.url}/login?next=//evil.example") as response:
        page = await response.text()
        assert response.status == 200
        assert 'value="/"' in page
    form = {"token": secured.tokens["expired"], "next": "/runs"}
    async with secured.session.post(
        f"{secured.url}/login", data=form, allow_redirects=False
    ) as response:
        assert response.status == 401
        assert "expired" in await response.text()
        assert "dagloom_token" not in response.cookies
    form = {"token": secured.tokens["viewer"], "next": "/runs"}
    async with secured.session.post(
        f"{secured.url}/login", data=form, allow_redirects=False
    ) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/runs"
        cookie = response.cookies["dagloom_token"]
        assert cookie["httponly"]
        assert cookie["samesite"] == "Strict"
    async with secured.session.post(
        f"{secured.url}/graphql", json={"query": "{ version }"}
    ) as response:
        assert "errors" not in await response.json()
    async with secured.session.get(f"{secured.url}/logout", allow_redirects=False) as response:
        assert response.status == 303
    async with secured.session.post(
        f"{secured.url}/graphql", json={"query": "{ version }"}
    ) as response:
        assert (await response.json())["errors"][0]["extensions"]["code"] == UNAUTHORIZED_CODE


async def test_instance_info_carries_no_secrets(secured: Secured) -> None:
    result = await secured.post("{ instance { info } }", "admin")
    text = repr(result)
    assert "errors" not in result, result
    for token in secured.tokens.values():
        assert token not in text
    assert CLUSTER_SECRET not in text
    assert "cluster-secret" not in text


async def test_metrics_may_be_public_and_tls_serves_https(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "node.pem"))
    tls = {"cert": "node.pem", "key": "node.pem"}
    context = ssl.create_default_context()
    ca.configure_trust(context)
    async with secured_node(tmp_path, tls=tls, metrics_public=True) as (node, tokens):
        url = f"https://{node.webserver_address}"
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{url}/metrics", ssl=context) as response:
                assert response.status == 200
            async with session.post(
                f"{url}/graphql",
                json={"query": "{ version }"},
                headers={"Authorization": f"Bearer {tokens['viewer']}"},
                ssl=context,
            ) as response:
                assert "errors" not in await response.json()
            with pytest.raises(aiohttp.ClientError):
                async with session.get(f"http://{node.webserver_address}/health") as response:
                    await response.read()
        assert ("webserver (GraphQL at /graphql)", url) in node.addresses()


async def test_a_webserver_beyond_loopback_needs_auth_unless_insecure(tmp_path: Path) -> None:
    topology = dev_topology(
        {"numbers": CodeOrigin(python_file=str(NUMBERS))},
        host="0.0.0.0",
        grpc_port=None,
        api_port=None,
        reload_on_change=False,
        daemon=False,
        webserver_port=0,
    )
    async with DagloomInstance.ephemeral() as instance:
        with pytest.raises(ConfigError, match=r"the webserver would listen on 0\.0\.0\.0"):
            await run_node(topology, "dev", instance=instance)
