"""A node's security from dagloom.yaml: it refuses to listen beyond loopback without auth
(unless insecure), and a node with TLS and tokens serves the API to a client presenting both."""

from __future__ import annotations

import functools
import time
from pathlib import Path

import anyio
import pytest
import trustme

from dagloom.api import AsyncClient
from dagloom.auth import Role, TlsConfig, new_token
from dagloom.errors import ActorUnavailableError, AuthenticationError, ConfigError
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.topology import parse_topology
from dagloom.topology.security import check_exposure, is_loopback, token_storage
from dagloom.topology.wiring import run_node

DEFS = Path(__file__).resolve().parents[1] / "integration" / "defs.py"


def test_loopback_hosts() -> None:
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "127.0.0.2"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "10.1.2.3", "192.168.0.1"))


@pytest.mark.parametrize(
    ("what", "auth", "secured", "insecure", "refused"),
    [
        ("api", False, False, False, True),
        ("api", True, False, False, False),
        ("api", False, False, True, False),
        ("actors", True, False, False, True),
        ("actors", False, True, False, False),
        ("actors", False, False, True, False),
    ],
)
def test_listening_beyond_loopback_needs_auth(
    what: str, auth: bool, secured: bool, insecure: bool, refused: bool
) -> None:
    def check() -> None:
        check_exposure(
            [(what, "0.0.0.0")], auth_enabled=auth, secured_actors=secured, insecure=insecure
        )

    if refused:
        with pytest.raises(ConfigError, match="--insecure"):
            check()
    else:
        check()
    check_exposure([(what, "127.0.0.1")], auth_enabled=False, secured_actors=False, insecure=False)


async def test_a_node_on_all_addresses_without_auth_refuses_to_start(tmp_path: Path) -> None:
    topology = parse_topology(
        {
            "locations": {"suite": {"python_file": str(DEFS)}},
            "nodes": {
                "one": {
                    "host": "0.0.0.0",
                    "api": {"port": 0},
                    "coordinator": {},
                    "launcher": {"kind": "in_process"},
                    "code_locations": ["suite"],
                }
            },
        }
    )
    async with DagloomInstance.from_config({"storage": {"memory": {}}}, home=tmp_path) as inst:
        with anyio.fail_after(30), pytest.raises(ConfigError, match="auth disabled"):
            await run_node(topology, "one", instance=inst)


async def test_a_node_with_tls_and_tokens_serves_a_client_presenting_both(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    config = {
        "storage": {"sqlite": {}},
        "auth": {"enabled": True, "cluster_secret": "s3cret-s3cret-s3cret"},
        # Relative: under the instance home.
        "tls": {"cert": "cert.pem", "key": "key.pem", "ca": "ca.pem"},
    }
    topology = parse_topology(
        {
            "locations": {"suite": {"python_file": str(DEFS)}},
            "nodes": {
                "one": {
                    "grpc_port": 0,
                    "api": {"port": 0},
                    "coordinator": {},
                    "launcher": {"kind": "in_process"},
                    "code_locations": ["suite"],
                }
            },
        }
    )
    client_tls = TlsConfig(
        cert=str(tmp_path / "cert.pem"), key=str(tmp_path / "key.pem"), ca=str(tmp_path / "ca.pem")
    )
    async with (
        DagloomInstance.from_config(config, home=tmp_path) as instance,
        anyio.create_task_group() as tg,
    ):
        stored, token = new_token("ci", Role.LAUNCHER, now=time.time())
        await token_storage(instance).add_api_token(stored)
        node = await tg.start(functools.partial(run_node, topology, "one", instance=instance))
        with anyio.fail_after(60):
            async with AsyncClient.connect(node.api_address, token=token, tls=client_tls) as c:
                run = await c.wait_for_run((await c.launch_run("failing_job")).run_id)
                assert run.status == RunStatus.FAILURE and run.tags["dagloom/user"] == "ci"
            async with AsyncClient.connect(node.api_address, tls=client_tls) as c:
                with pytest.raises(AuthenticationError):
                    await c.list_jobs()
            async with AsyncClient.connect(node.api_address, token=token) as c:
                with pytest.raises(ActorUnavailableError):
                    await c.list_jobs()
        tg.cancel_scope.cancel()
