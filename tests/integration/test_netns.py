"""The suite's three processes as separate hosts: each in its own network namespace with its
own address, joined by veth pairs on a bridge. Needs root and `ip netns`; skipped otherwise."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest

from dagloom.errors import ConfigError
from dagloom.messages import RunStatus
from tests.integration._stacks import Hosts, process_stack, sqlite_instance, wait_healthy

pytestmark = pytest.mark.slow

NODES = ("control", "code", "workers")


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)


def _why_not() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    probe = f"dgprobe-{uuid.uuid4().hex[:6]}"
    try:
        _ip("netns", "add", probe)
    except (subprocess.CalledProcessError, OSError) as exc:
        return f"`ip netns add` does not work here: {exc}"
    _ip("netns", "del", probe)
    return None


@contextmanager
def separate_hosts() -> Iterator[Hosts]:
    """A bridge in this namespace and one namespace per node, each with its own address on
    10.77.N.0/24; everything is deleted on the way out, whatever happened."""
    tag = uuid.uuid4().hex[:4]
    subnet = f"10.77.{int(tag, 16) % 250 + 1}"
    bridge = f"dgbr{tag}"
    namespaces: list[str] = []
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{subnet}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        addresses: dict[str, str] = {}
        for i, node in enumerate(NODES):
            ns = f"dg{tag}-{node}"
            outside, inside = f"dgv{tag}{i}a", f"dgv{tag}{i}b"
            _ip("netns", "add", ns)
            namespaces.append(ns)
            _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            _ip("link", "set", outside, "master", bridge)
            _ip("link", "set", outside, "up")
            _ip("link", "set", inside, "netns", ns)
            addresses[node] = f"{subnet}.{i + 2}"
            _ip("-n", ns, "addr", "add", f"{addresses[node]}/24", "dev", inside)
            _ip("-n", ns, "link", "set", inside, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield Hosts(
            control=addresses["control"],
            code=addresses["code"],
            workers=addresses["workers"],
            prefix={node: ["ip", "netns", "exec", f"dg{tag}-{node}"] for node in NODES},
        )
    finally:
        for ns in namespaces:
            # Deleting a namespace deletes the veth end inside it, and with it the pair.
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=30)


async def test_the_suite_runs_across_network_namespaces(tmp_path: Path) -> None:
    reason = _why_not()
    if reason is not None:
        pytest.skip(reason)
    with separate_hosts() as hosts:
        async with process_stack(tmp_path, sqlite_instance(tmp_path), hosts) as stack:
            client = stack.client
            with anyio.fail_after(60):
                run = await client.launch_run("process_numbers", location_name="numbers")
                assert (await client.wait_for_run(run.run_id)).status == RunStatus.SUCCESS
                run = await client.launch_run("failing_job", location_name="suite")
                assert (await client.wait_for_run(run.run_id)).status == RunStatus.FAILURE
                run = await client.launch_run("endless_job", location_name="suite")
                assert (await client.cancel_run(run.run_id)).accepted
                assert (await client.wait_for_run(run.run_id)).status == RunStatus.CANCELED
                with pytest.raises(ConfigError):
                    await client.launch_run(
                        "configured_job", location_name="suite", run_config={"ops": {}}
                    )
            # The code location's host goes down and comes back; the others carry on.
            code = stack.processes["code"]
            code.kill()
            code.start()
            await wait_healthy(code)
            with anyio.fail_after(60):
                run = await client.launch_run("process_numbers_asset", location_name="numbers")
                assert (await client.wait_for_run(run.run_id)).status == RunStatus.SUCCESS
