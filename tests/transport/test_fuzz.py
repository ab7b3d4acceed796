"""Fuzz, with a fixed seed and a bounded number of cases: random and mutated bytes sent as
gRPC requests to a running server are answered with a status (or a reply), and the server
keeps serving; the codec alone never raises anything but `GRPCError`."""

from __future__ import annotations

import random

import anyio
import grpc
from grpclib.exceptions import GRPCError

from dagloom.messages.rpc import ApiLaunchRunRequest, SubmitRunRequest
from dagloom.transport import BoundedProtoCodec

from ._echo import EchoRequest, serving

SEED = 18
CASES = 300
ECHO_ROUTE = "/dagloomtest.v1.Echo/Echo"


def _mutations(rng: random.Random, seed_message: bytes, n: int) -> list[bytes]:
    out = []
    for _ in range(n):
        data = bytearray(seed_message)
        match rng.randrange(4):
            case 0:
                data = bytearray(rng.randbytes(rng.randrange(64)))
            case 1 if data:
                for _ in range(rng.randrange(1, 4)):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            case 2:
                data = data[: rng.randrange(len(data) + 1)]
            case _:
                data += rng.randbytes(rng.randrange(1, 16))
        out.append(bytes(data))
    return out


def test_the_codec_refuses_fuzzed_bytes_with_a_status_only() -> None:
    rng = random.Random(SEED)
    codec = BoundedProtoCodec(max_message_size=4096)
    good = bytes(ApiLaunchRunRequest(job_name="j", tags={"a": "b"}, run_config_json='{"ops": {}}'))
    outcomes = {"parsed": 0, "refused": 0}
    for message_type in (ApiLaunchRunRequest, SubmitRunRequest):
        for data in _mutations(rng, good, CASES):
            try:
                codec.decode(data, message_type)
                outcomes["parsed"] += 1
            except GRPCError:
                outcomes["refused"] += 1
    assert outcomes["parsed"] and outcomes["refused"]


async def test_a_server_answers_fuzzed_requests_and_keeps_serving() -> None:
    rng = random.Random(SEED)
    cases = _mutations(rng, bytes(EchoRequest(text="hello")), 60)
    async with serving("grpc") as (_, ref):
        address = ref.address  # type: ignore[attr-defined]

        def send_all() -> list[str]:
            codes = []
            with grpc.insecure_channel(address) as channel:
                call = channel.unary_unary(ECHO_ROUTE)
                for data in cases:
                    try:
                        call(data, timeout=5)
                        codes.append("OK")
                    except grpc.RpcError as exc:
                        codes.append(exc.code().name)
            return codes

        with anyio.fail_after(120):
            codes = await anyio.to_thread.run_sync(send_all)
            assert set(codes) <= {"OK", "INVALID_ARGUMENT"}, set(codes)
            reply = await ref.ask(EchoRequest(text="still here"), timeout=5)
        assert reply.text == "still here"
