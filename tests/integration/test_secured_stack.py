"""Three `dagloom serve` processes with tokens, a cluster secret and mutual TLS, as
`configs/prod/postgres.dagloom.yaml` sets them up (here on SQLite): a client with a token
and a certificate runs the seed job; without a token it is refused; a process holding the
certificate but not the cluster secret cannot call any actor."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import anyio
import pytest
import trustme
import yaml

from dagloom.actors import HealthReporter
from dagloom.api import AsyncClient
from dagloom.auth import Role, new_token
from dagloom.errors import ActorUnavailableError, AuthenticationError, PermissionDeniedError
from dagloom.instance import DagloomInstance
from dagloom.messages import RunStatus
from dagloom.messages.rpc import PingRequest
from dagloom.topology.security import token_storage
from dagloom.transport import ClusterSecurity, GrpcTransport
from tests.integration._stacks import process_stack

pytestmark = pytest.mark.slow


async def test_a_secured_three_node_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ca = trustme.CA()
    leaf = ca.issue_cert("127.0.0.1")
    leaf.private_key_pem.write_to_path(str(tmp_path / "node.key"))
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "node.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagloom.yaml").write_text(
        yaml.safe_dump(
            {
                "storage": {"sqlite": {"poll_interval_seconds": 0.02}},
                "auth": {"enabled": True, "cluster_secret": {"env": "DAGLOOM_CLUSTER_SECRET"}},
                "tls": {
                    "cert": {"env": "DAGLOOM_TLS_CERT"},
                    "key": {"env": "DAGLOOM_TLS_KEY"},
                    "ca": {"env": "DAGLOOM_TLS_CA"},
                },
            }
        )
    )
    # The nodes, this test's health checks and its clients all read these.
    monkeypatch.setenv("DAGLOOM_CLUSTER_SECRET", secrets.token_hex(32))
    monkeypatch.setenv("DAGLOOM_TLS_CERT", str(tmp_path / "node.pem"))
    monkeypatch.setenv("DAGLOOM_TLS_KEY", str(tmp_path / "node.key"))
    monkeypatch.setenv("DAGLOOM_TLS_CA", str(tmp_path / "ca.pem"))
    now = time.time()
    async with DagloomInstance.open(home) as instance:
        launcher, launcher_token = new_token("ci", Role.LAUNCHER, now=now)
        viewer, viewer_token = new_token("dashboard", Role.VIEWER, now=now)
        await token_storage(instance).add_api_token(launcher)
        await token_storage(instance).add_api_token(viewer)
    monkeypatch.setenv("DAGLOOM_TOKEN", launcher_token)

    async with process_stack(tmp_path, {"home": str(home)}) as stack:
        api = stack.client.address
        with anyio.fail_after(120):
            run = await stack.client.launch_run("process_numbers", location_name="numbers")
            done = await stack.client.wait_for_run(run.run_id)
        assert done.status == RunStatus.SUCCESS and done.tags["dagloom/user"] == "ci"

        async with AsyncClient.connect(api, token="") as anonymous:
            with pytest.raises(AuthenticationError):
                await anonymous.get_run(run.run_id)
        async with AsyncClient.connect(api, token=viewer_token) as viewer_client:
            assert (await viewer_client.get_run(run.run_id)).run_id == run.run_id
            with pytest.raises(PermissionDeniedError):
                await viewer_client.cancel_run(run.run_id)

        control = stack.processes["control"].grpc_address
        security = ClusterSecurity.from_env()
        strangers = (ClusterSecurity(tls=security.tls), ClusterSecurity(secret=security.secret))
        for stranger in strangers:
            transport = GrpcTransport(security=stranger)
            try:
                with pytest.raises(ActorUnavailableError):
                    await transport.ref(HealthReporter, name="health", address=control).ask(
                        PingRequest(), timeout=5
                    )
            finally:
                transport.close()
